"""The kinds of test a claim can have, one class each: how claims.yaml writes it, the exercises it needs, what
makes it untestable, how judge tests it, its verdict, and the sentences the report gives as its evidence.

A claim's `test:` is one of the mappings below, told apart by the key only that kind has (`KEY`):

- FactorTest, `{factorial, aspect, better}`: one value of an aspect of a 2x2 factorial does better;
- PairTest, `{better, than, aspects}`: one exercise does better than another that differs in exactly `aspects`;
- PlateauTest, `{plateau, metric, from_epoch, margin}`: a validation curve stops improving from an epoch.

A new kind is a class here, added to KINDS, with a sentence for its evidence in the message catalogs; config,
judge and the report ask each test what they need and never branch on its kind. The statistics, the page's
sentences and the validation helpers are imported where a method needs them: validating params.yaml imports none
of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pandas as pd

    from denselab.config import Confound, Exercise, Factorial, Params, _Section
    from denselab.i18n import Language
    from denselab.observations import Observation

# The curves a plateau claim can read, and whether higher is better on each.
PLATEAU_METRICS = {"val_accuracy": True, "val_loss": False}


class ClaimTest:
    """What every kind of claim test answers. Subclasses are frozen dataclasses."""

    KEY: ClassVar[str]  # the key of claims.yaml's `test:` that marks this kind
    SHAPE: ClassVar[str]  # its keys, as an error message lists them
    KIND: ClassVar[str]  # the name claims.json gives it
    OWN_WARNING: ClassVar[bool] = True  # validate warns once per claim (False: its comparison warns for all)

    @classmethod
    def parse(
        cls,
        s: _Section,
        exercises: Mapping[str, Exercise],
        aspects: Mapping[str, Mapping[str, Any]],
        factorials: Mapping[str, Factorial],
    ) -> ClaimTest:
        """The test from its section of claims.yaml (every key checked; a bad one raises ParamsError)."""
        raise NotImplementedError

    def exercises(self, params: Params) -> tuple[str, ...]:
        """The exercises the study must run, two runs each at least, for the test to be made."""
        raise NotImplementedError

    def why_untestable(self, params: Params) -> list[str]:
        """What valid params changed so that the test no longer tests its claim, in English (empty: nothing)."""
        return []

    def held_back(self, params: Params, factorials: Mapping[str, Any]) -> dict[str, Any]:
        """What judge writes of what could keep the test from being made (its confounds, a curve too short): it is
        held back when any of these is non-empty."""
        return {}

    def run(self, runs: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Any]:
        """The test's own results before the adjustment: a `test` with a p_value (it joins the adjusted family),
        and what else its evidence needs. Empty for a test whose p-values live elsewhere (a factorial's)."""
        return {}

    def verdict(self, params: Params, entry: Mapping[str, Any], factorials: Mapping[str, Any]) -> dict[str, Any]:
        """The verdict, and what the page shows with it, from the adjusted results."""
        raise NotImplementedError

    def evidence(self, params: Params, found: Mapping[str, Any], lang: Language) -> list[Observation]:
        """The numbers behind the verdict, as sentences of the page."""
        raise NotImplementedError

    def compared(self, params: Params) -> list[tuple[str, str]]:
        """The pairs of exercises the test compares (worse first): the page explains each with its units."""
        return []


@dataclass(frozen=True)
class FactorTest(ClaimTest):
    """A claim that one value of an aspect of a factorial does better than the other."""

    KEY: ClassVar[str] = "factorial"
    SHAPE: ClassVar[str] = "{factorial, aspect, better}"
    KIND: ClassVar[str] = "factorial"
    OWN_WARNING: ClassVar[bool] = False

    factorial: str
    aspect: str  # the factorial's `rows` or `columns`
    better: str  # the value the claim says does better (as `level_text` writes it)

    @classmethod
    def parse(cls, s, exercises, aspects, factorials) -> FactorTest:
        name = s.choice("factorial", tuple(factorials), what="factorial (a key of factorials)")
        factorial = factorials[name]
        aspect = s.choice("aspect", (factorial.rows, factorial.columns), what=f"aspect of factorial {name}")
        levels = factorial.row_levels if aspect == factorial.rows else factorial.column_levels
        if factorial.confounds:  # its cells no longer hold one value each: the claim is not tested, only read
            better = s.string("better")
        else:
            better = s.choice("better", levels, what=f"{aspect} value")
        return cls(factorial=name, aspect=aspect, better=better)

    def exercises(self, params: Params) -> tuple[str, ...]:
        return params.factorials[self.factorial].exercises()

    def why_untestable(self, params: Params) -> list[str]:
        return [confound.sentence() for confound in params.factorials[self.factorial].confounds]

    def held_back(self, params: Params, factorials: Mapping[str, Any]) -> dict[str, Any]:
        return {"confounds": factorials[self.factorial]["confounds"]}

    def verdict(self, params: Params, entry: Mapping[str, Any], factorials: Mapping[str, Any]) -> dict[str, Any]:
        from denselab.claims import factor_verdict

        return factor_verdict(self, params.factorials[self.factorial], factorials[self.factorial]["effects"])

    def evidence(self, params: Params, found: Mapping[str, Any], lang: Language) -> list[Observation]:
        from denselab.observations import factor_evidence

        return factor_evidence(found, self.aspect, lang)

    def compared(self, params: Params) -> list[tuple[str, str]]:
        factorial = params.factorials[self.factorial]
        cells = factorial.cells
        if self.aspect == factorial.rows:
            return [(cells[0][c], cells[1][c]) for c in (0, 1)]
        return [(cells[r][0], cells[r][1]) for r in (0, 1)]


@dataclass(frozen=True)
class PairTest(ClaimTest):
    """A claim that exercise `better` does better than `than`; they differ in exactly `aspects`."""

    KEY: ClassVar[str] = "than"
    SHAPE: ClassVar[str] = "{better, than, aspects}"
    KIND: ClassVar[str] = "pair"

    better: str
    than: str
    aspects: tuple[str, ...]
    confounds: tuple[Confound, ...] = ()  # they no longer differ in exactly `aspects`: not testable

    @classmethod
    def parse(cls, s, exercises, aspects, factorials) -> PairTest:
        from denselab.config import ASPECTS, Confound, _choice, differences

        better = s.choice("better", tuple(exercises), what="exercise")
        than = s.choice("than", tuple(exercises), what="exercise")
        named = s.unique_list("aspects", lambda value, key: _choice(value, key, ASPECTS, "aspect"))
        changed = differences(aspects[than], aspects[better])
        confounds = () if sorted(changed) == sorted(named) else (Confound(than, better, tuple(named), tuple(changed)),)
        return cls(better=better, than=than, aspects=tuple(named), confounds=confounds)

    def exercises(self, params: Params) -> tuple[str, ...]:
        return (self.than, self.better)

    def why_untestable(self, params: Params) -> list[str]:
        return [confound.sentence() for confound in self.confounds]

    def held_back(self, params: Params, factorials: Mapping[str, Any]) -> dict[str, Any]:
        from denselab.claims import confounds_found

        return {"confounds": confounds_found(self.confounds)}

    def run(self, runs: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Any]:
        from denselab.statistics import welch

        accuracy = runs.set_index("exercise")["test_accuracy"]
        return {
            "test": welch(accuracy.loc[[self.than]], accuracy.loc[[self.better]]),
            "runs": {name: int((runs["exercise"] == name).sum()) for name in (self.than, self.better)},
        }

    def verdict(self, params: Params, entry: Mapping[str, Any], factorials: Mapping[str, Any]) -> dict[str, Any]:
        from denselab.claims import signed_verdict

        return {"verdict": signed_verdict(entry["test"])}

    def evidence(self, params: Params, found: Mapping[str, Any], lang: Language) -> list[Observation]:
        from denselab.observations import pair_evidence

        return pair_evidence(self.better, self.than, self.aspects, found, lang)

    def compared(self, params: Params) -> list[tuple[str, str]]:
        return [(self.than, self.better)]


@dataclass(frozen=True)
class PlateauTest(ClaimTest):
    """A claim that a validation curve stops improving from an epoch: across the exercise's runs, it gains less
    than `margin` from `from_epoch` to the last epoch."""

    KEY: ClassVar[str] = "plateau"
    SHAPE: ClassVar[str] = "{plateau, metric, from_epoch, margin}"
    KIND: ClassVar[str] = "plateau"

    exercise: str
    metric: str  # one of PLATEAU_METRICS
    from_epoch: int
    margin: float
    epochs: int = 0  # how many the exercise trains: a curve that ends by `from_epoch` cannot test the claim

    @classmethod
    def parse(cls, s, exercises, aspects, factorials) -> PlateauTest:
        exercise = s.choice("plateau", tuple(exercises), what="exercise")
        return cls(
            exercise=exercise,
            metric=s.choice("metric", tuple(PLATEAU_METRICS), what="curve"),
            from_epoch=s.integer("from_epoch", minimum=1),
            margin=s.number("margin", low=0.0, low_open=True),
            epochs=exercises[exercise].epochs,
        )

    @property
    def too_short(self) -> bool:
        """The exercise's curve ends by `from_epoch`: nothing after it to test."""
        return self.epochs <= self.from_epoch

    def exercises(self, params: Params) -> tuple[str, ...]:
        return (self.exercise,)

    def why_untestable(self, params: Params) -> list[str]:
        if not self.too_short:
            return []
        return [
            f"{self.exercise}'s curve now ends at epoch {self.epochs}, the claim reads it after epoch {self.from_epoch}"
        ]

    def held_back(self, params: Params, factorials: Mapping[str, Any]) -> dict[str, Any]:
        if not self.too_short:
            return {}
        return {"too_short": {"exercise": self.exercise, "epochs": self.epochs, "from_epoch": self.from_epoch}}

    def run(self, runs: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Any]:
        from denselab.claims import plateau_gains, plateau_test

        return {"test": plateau_test(self, plateau_gains(self, curves))}

    def verdict(self, params: Params, entry: Mapping[str, Any], factorials: Mapping[str, Any]) -> dict[str, Any]:
        from denselab.claims import signed_verdict

        # The gain after the epoch is significantly below the margin (levelled off) or above it.
        return {"verdict": signed_verdict(entry["test"], better_if_positive=False)}

    def evidence(self, params: Params, found: Mapping[str, Any], lang: Language) -> list[Observation]:
        from denselab.observations import plateau_evidence

        return plateau_evidence(self.exercise, self.metric, self.from_epoch, found, lang)


# Every kind, in the order an error message lists them.
KINDS: list[type[ClaimTest]] = [FactorTest, PairTest, PlateauTest]
