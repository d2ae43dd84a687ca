"""The kinds of test a claim can have, one class each: how claims.yaml writes it, the exercises it needs, what
makes it untestable, how judge tests it, its verdict, and the sentences the report gives as its evidence.

A claim's `test:` is one of the mappings below, told apart by the key only that kind has (`KEY`):

- FactorTest, `{factorial, aspect, better}`: one value of an aspect of a 2x2 factorial does better;
- PairTest, `{better, than, aspects}`: one exercise does better than another that differs in exactly `aspects`;
- PlateauTest, `{plateau, metric, from_epoch, margin}`: a validation curve stops improving from an epoch.

A new kind is a class here, added to KINDS, with a sentence for its evidence in the message catalogs; validate,
judge and the report ask each test what they need and never branch on its kind.

claims.yaml is parsed here, not in `denselab.config`: the stages that download, prepare and train load params.yaml
without it, so the code that judges claims and words their evidence is none of theirs (`denselab.sources`: a
stage reruns when code it imports changes). The statistics and the page's sentences are imported where a method
needs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from denselab.cli import ParamsError
from denselab.config import (
    ASPECTS,
    CLAIMS_FILE,
    PARAMS_FILE,
    Claim,
    Confound,
    Exercise,
    Factorial,
    Params,
    _choice,
    _description,
    _Section,
    differences,
    level_text,
    load_params,
    parse_params,
    settings,
)

if TYPE_CHECKING:
    import pandas as pd

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


def parse_with_claims(data: Any) -> Params:
    """`config.parse_params`, then claims.yaml's factorials and claims (already-parsed YAML, merged)."""
    params = parse_params(data)
    top = _Section(data, "")
    aspects = {name: settings(spec, params.inputs[spec.inputs]) for name, spec in params.exercises.items()}
    factorials = top.optional_mapping_of("factorials", lambda s: _factorial(s, aspects))
    claims = top.optional_mapping_of("claims", lambda s: _claim(s, params.exercises, aspects, factorials))
    return dataclasses.replace(params, factorials=factorials, claims=claims)


def load_with_claims(path: str | Path = PARAMS_FILE) -> Params:
    """`config.load_params` with claims.yaml's factorials and claims: for the stages that judge or show them."""
    return load_params(path, parse=parse_with_claims)


def why_untestable(test: ClaimTest | None, params: Params) -> list[str]:
    """What valid params changed so that `test` no longer tests its claim, in English (empty: nothing)."""
    return test.why_untestable(params) if test is not None else []


def untestable(params: Params) -> list[str]:
    """One line per comparison that valid params leave untestable (`why_untestable`), naming the claims it holds
    back: one per factorial, one per pair or plateau claim. validate prints them as warnings; judge gives those
    claims the verdict "not tested"."""
    lines = []
    for name, factorial in params.factorials.items():
        if factorial.confounds:
            resting = [c for c, claim in params.claims.items() if getattr(claim.test, "factorial", None) == name]
            said = "; ".join(confound.sentence() for confound in factorial.confounds)
            lines.append(f"{CLAIMS_FILE}: factorials.{name}: {said}: {_held_back(resting)}")
    for name, claim in params.claims.items():
        why = why_untestable(claim.test, params) if claim.test is not None and claim.test.OWN_WARNING else []
        if why:
            lines.append(f"{CLAIMS_FILE}: claims.{name}.test: {'; '.join(why)}: {_held_back([name])}")
    return lines


def _held_back(claims: Sequence[str]) -> str:
    if not claims:
        return "no claim rests on it"
    return f"{', '.join(claims)} will be judged not tested (an experiment is fine; set them back to test the claim)"


def _factorial(s: _Section, aspects: Mapping[str, Mapping[str, Any]]) -> Factorial:
    rows = s.choice("rows", ASPECTS, what="aspect")
    columns = s.choice("columns", ASPECTS, what="aspect")
    if rows == columns:
        raise ParamsError(f"{s.key('columns')}: the same aspect as rows ({rows!r}); a factorial crosses two aspects")
    grid = s._get("cells")
    if not (isinstance(grid, list) and len(grid) == 2 and all(isinstance(r, list) and len(r) == 2 for r in grid)):
        raise ParamsError(f"{s.key('cells')}: expected two rows of two exercises ([[a, b], [c, d]]), got {grid!r}")
    cells = tuple(
        tuple(_choice(grid[r][c], f"{s.key('cells')}[{r}][{c}]", tuple(aspects), "exercise") for c in (0, 1))
        for r in (0, 1)
    )
    # Along a row only the columns' aspect may change; down a column only the rows'.
    confounds = []
    for (r1, c1), (r2, c2), aspect in (
        ((0, 0), (0, 1), columns),
        ((1, 0), (1, 1), columns),
        ((0, 0), (1, 0), rows),
        ((0, 1), (1, 1), rows),
    ):
        a, b = cells[r1][c1], cells[r2][c2]
        changed = differences(aspects[a], aspects[b])
        if changed != [aspect]:
            confounds.append(Confound(a=a, b=b, named=(aspect,), found=tuple(changed)))
    factorial = Factorial(
        rows=rows,
        columns=columns,
        cells=(cells[0], cells[1]),  # type: ignore[arg-type]  # two rows of two, checked above
        row_levels=(level_text(aspects[cells[0][0]][rows]), level_text(aspects[cells[1][0]][rows])),
        column_levels=(level_text(aspects[cells[0][0]][columns]), level_text(aspects[cells[0][1]][columns])),
        confounds=tuple(confounds),
    )
    s.done()
    return factorial


def _claim(
    s: _Section,
    exercises: Mapping[str, Exercise],
    aspects: Mapping[str, Mapping[str, Any]],
    factorials: Mapping[str, Factorial],
) -> Claim:
    exercise = s.optional_choice("exercise", tuple(exercises), what="exercise")
    text = _description(s, "text")
    if not text:
        raise ParamsError(f"{s.key('text')}: missing (the claim in the lab's words, vi, and in English, en)")
    test: ClaimTest | None = None
    untested: dict[str, str] = {}
    if s.data.get("test") is None:
        s.seen.add("test")
        untested = _description(s, "untested")
        if not untested:
            raise ParamsError(f"{s.key('test')}: missing; a claim without a test says why under `untested`")
    else:
        test = _claim_test(s.section("test"), exercises, aspects, factorials)
    s.done()
    return Claim(exercise=exercise, text=text, test=test, untested=untested)


def _claim_test(
    s: _Section,
    exercises: Mapping[str, Exercise],
    aspects: Mapping[str, Mapping[str, Any]],
    factorials: Mapping[str, Factorial],
) -> ClaimTest:
    kinds = [kind for kind in KINDS if kind.KEY in s.data]
    if len(kinds) != 1:
        shapes = [kind.SHAPE for kind in KINDS]
        raise ParamsError(f"{s.path}: expected one kind of test: {', '.join(shapes[:-1])} or {shapes[-1]}")
    test = kinds[0].parse(s, exercises, aspects, factorials)
    s.done()
    return test
