"""The kinds of test a claim can have, one class each: how claims.yaml writes it, the exercises it needs, what
makes it untestable, how judge tests it, and its verdict (the rules: `denselab.study.verdicts`).

A claim's `test:` is one of the mappings below, told apart by the key only that kind has (`KEY`):

- FactorTest, `{factorial, aspect, better}`: one value of an aspect of a 2x2 factorial does better;
- PairTest, `{better, than, aspects}`: one exercise does better than another that differs in exactly `aspects`;
- PlateauTest, `{plateau, metric, from_epoch, margin}`: a validation curve stops improving from an epoch.

A new kind is a class here, added to KINDS; the page words its evidence in a function of its own, added to
`denselab.report.observations.EVIDENCE` (the study says what was found, the page says it). validate, judge and the report
ask each test what they need and never branch on its kind.

claims.yaml is parsed here, not in `denselab.core.config`: the stages that download, prepare and train load params.yaml
without it, so the code that judges claims is none of theirs (`denselab.core.sources`: a stage reruns when code it
imports changes). The statistics are imported where a method needs them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationInfo,
    create_model,
    model_validator,
)

from denselab.core.config import (
    CLAIMS_FILE,
    PARAMS_FILE,
    Params,
    Texts,
    load_params,
    parse_params,
    validation_context,
)
from denselab.core.schema import AnyExerciseName, ExerciseName, Name, Spec, Unique, known, one_of, refuse, validated
from denselab.study.aspects import ASPECTS, Confound, Factorial, all_settings, level_text
from denselab.study.verdicts import (
    PLATEAU_METRICS,
    confounds_found,
    factor_verdict,
    plateau_gains,
    plateau_test,
    signed_verdict,
)

if TYPE_CHECKING:
    import pandas as pd


class ClaimTest(Spec):
    """What every kind of claim test answers. Each kind is a model of its mapping in claims.yaml: its fields are
    validated like params.yaml's (`denselab.core.config.Spec`), the names it takes from params.yaml against them."""

    model_config = ConfigDict(validate_by_name=True)

    KEY: ClassVar[str]  # the key of claims.yaml's `test:` that marks this kind
    SHAPE: ClassVar[str]  # its keys, as an error message lists them
    KIND: ClassVar[str]  # the name claims.json gives it
    OWN_WARNING: ClassVar[bool] = True  # validate warns once per claim (False: its comparison warns for all)

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

    def compared(self, params: Params) -> list[tuple[str, str]]:
        """The pairs of exercises the test compares (worse first): the page explains each with its units."""
        return []


class FactorTest(ClaimTest):
    """A claim that one value of an aspect of a factorial does better than the other."""

    KEY: ClassVar[str] = "factorial"
    SHAPE: ClassVar[str] = "{factorial, aspect, better}"
    KIND: ClassVar[str] = "factorial"
    OWN_WARNING: ClassVar[bool] = False

    factorial: Annotated[str, known("factorials", "factorial (a key of factorials)")]
    aspect: str  # the factorial's `rows` or `columns`
    better: str  # the value the claim says does better (as `level_text` writes it)

    @model_validator(mode="after")
    def _of_the_factorial(self, info: ValidationInfo) -> FactorTest:
        factorial = (info.context or {}).get("factorials", {}).get(self.factorial)
        if factorial is not None:
            one_of(self.aspect, (factorial.rows, factorial.columns), f"aspect of factorial {self.factorial}", "aspect")
            levels = factorial.row_levels if self.aspect == factorial.rows else factorial.column_levels
            if not factorial.confounds:  # else its cells no longer hold one value each: not tested, only read
                one_of(self.better, levels, f"{self.aspect} value", "better")
        return self

    def exercises(self, params: Params) -> tuple[str, ...]:
        return params.factorials[self.factorial].exercises()

    def why_untestable(self, params: Params) -> list[str]:
        return [confound.sentence() for confound in params.factorials[self.factorial].confounds]

    def held_back(self, params: Params, factorials: Mapping[str, Any]) -> dict[str, Any]:
        return {"confounds": factorials[self.factorial]["confounds"]}

    def verdict(self, params: Params, entry: Mapping[str, Any], factorials: Mapping[str, Any]) -> dict[str, Any]:
        effects = factorials[self.factorial]["effects"]
        return factor_verdict(self.aspect, self.better, params.factorials[self.factorial], effects)

    def compared(self, params: Params) -> list[tuple[str, str]]:
        factorial = params.factorials[self.factorial]
        cells = factorial.cells
        if self.aspect == factorial.rows:
            return [(cells[0][c], cells[1][c]) for c in (0, 1)]
        return [(cells[r][0], cells[r][1]) for r in (0, 1)]


class PairTest(ClaimTest):
    """A claim that exercise `better` does better than `than`; they differ in exactly `aspects`."""

    KEY: ClassVar[str] = "than"
    SHAPE: ClassVar[str] = "{better, than, aspects}"
    KIND: ClassVar[str] = "pair"

    better: AnyExerciseName
    than: AnyExerciseName
    aspects: Unique[Literal[ASPECTS]] = Field(title="aspect")  # type: ignore[valid-type]

    def confounds(self, params: Params) -> tuple[Confound, ...]:
        """Where valid params left the two differing in other aspects than `aspects`: not testable. An exercise
        only a profile defines is not compared yet (judge finds it missing from the study)."""
        if not {self.better, self.than} <= set(params.exercises):
            return ()
        confound = Confound.between(self.than, self.better, self.aspects, all_settings(params))
        return (confound,) if confound else ()

    def exercises(self, params: Params) -> tuple[str, ...]:
        return (self.than, self.better)

    def why_untestable(self, params: Params) -> list[str]:
        return [confound.sentence() for confound in self.confounds(params)]

    def held_back(self, params: Params, factorials: Mapping[str, Any]) -> dict[str, Any]:
        return {"confounds": confounds_found(self.confounds(params))}

    def run(self, runs: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Any]:
        from denselab.study.statistics import welch

        accuracy = runs.set_index("exercise")["test_accuracy"]
        return {
            "test": welch(accuracy.loc[[self.than]], accuracy.loc[[self.better]]),
            "runs": {name: int((runs["exercise"] == name).sum()) for name in (self.than, self.better)},
        }

    def verdict(self, params: Params, entry: Mapping[str, Any], factorials: Mapping[str, Any]) -> dict[str, Any]:
        return {"verdict": signed_verdict(entry["test"])}

    def compared(self, params: Params) -> list[tuple[str, str]]:
        return [(self.than, self.better)]


class PlateauTest(ClaimTest):
    """A claim that a validation curve stops improving from an epoch: across the exercise's runs, it gains less
    than `margin` from `from_epoch` to the last epoch."""

    KEY: ClassVar[str] = "plateau"
    SHAPE: ClassVar[str] = "{plateau, metric, from_epoch, margin}"
    KIND: ClassVar[str] = "plateau"

    exercise: AnyExerciseName = Field(alias="plateau")
    metric: Literal[tuple(PLATEAU_METRICS)] = Field(title="curve")  # type: ignore[valid-type]
    from_epoch: int = Field(ge=1)
    margin: float = Field(gt=0)

    def epochs(self, params: Params) -> int | None:
        """How many epochs the exercise trains, if its curve ends by `from_epoch` (nothing after it to test)."""
        if self.exercise not in params.exercises:  # a profile's, not applied: missing from the study
            return None
        epochs = params.exercises[self.exercise].epochs
        return epochs if epochs <= self.from_epoch else None

    def exercises(self, params: Params) -> tuple[str, ...]:
        return (self.exercise,)

    def why_untestable(self, params: Params) -> list[str]:
        epochs = self.epochs(params)
        if epochs is None:
            return []
        return [f"{self.exercise}'s curve now ends at epoch {epochs}, the claim reads it after epoch {self.from_epoch}"]

    def held_back(self, params: Params, factorials: Mapping[str, Any]) -> dict[str, Any]:
        epochs = self.epochs(params)
        if epochs is None:
            return {}
        return {"too_short": {"exercise": self.exercise, "epochs": epochs, "from_epoch": self.from_epoch}}

    def run(self, runs: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Any]:
        return {"test": plateau_test(self.margin, plateau_gains(self.exercise, self.metric, self.from_epoch, curves))}

    def verdict(self, params: Params, entry: Mapping[str, Any], factorials: Mapping[str, Any]) -> dict[str, Any]:
        # The gain after the epoch is significantly below the margin (levelled off) or above it.
        return {"verdict": signed_verdict(entry["test"], better_if_positive=False)}


# Every kind, in the order an error message lists them.
KINDS: list[type[ClaimTest]] = [FactorTest, PairTest, PlateauTest]


def _two_by_two(grid: Any) -> Any:
    if not (isinstance(grid, list) and len(grid) == 2 and all(isinstance(r, list) and len(r) == 2 for r in grid)):
        raise refuse(f"expected two rows of two exercises ([[a, b], [c, d]]), got {grid!r}")
    return grid


_Row = Annotated[tuple[ExerciseName, ExerciseName], Strict(False)]


class FactorialSpec(Spec):
    """A factorial of claims.yaml."""

    rows: Literal[ASPECTS] = Field(title="aspect")  # type: ignore[valid-type]
    columns: Literal[ASPECTS] = Field(title="aspect")  # type: ignore[valid-type]
    cells: Annotated[tuple[_Row, _Row], Strict(False), BeforeValidator(_two_by_two)]

    @model_validator(mode="after")
    def _two_aspects(self) -> FactorialSpec:
        if self.rows == self.columns:
            raise refuse(f"the same aspect as rows ({self.rows!r}); a factorial crosses two aspects", "columns")
        return self

    def factorial(self, aspects: Mapping[str, Mapping[str, Any]]) -> Factorial:
        """The factorial on exercises whose `settings` are `aspects`: its values, and where its cells differ in
        more than its two aspects."""
        cells, rows, columns = self.cells, self.rows, self.columns
        # Along a row only the columns' aspect may change; down a column only the rows'.
        pairs = [(cells[r][0], cells[r][1], columns) for r in (0, 1)] + [
            (cells[0][c], cells[1][c], rows) for c in (0, 1)
        ]
        confounds = [Confound.between(a, b, (aspect,), aspects) for a, b, aspect in pairs]
        return Factorial(
            rows=rows,
            columns=columns,
            cells=cells,
            row_levels=(level_text(aspects[cells[0][0]][rows]), level_text(aspects[cells[1][0]][rows])),
            column_levels=(level_text(aspects[cells[0][0]][columns]), level_text(aspects[cells[0][1]][columns])),
            confounds=tuple(c for c in confounds if c is not None),
        )


class Claim(Spec):
    """One conclusion, as its author wrote it, and the controlled comparison that tests it."""

    exercise: AnyExerciseName | None = None  # the lab's exercise whose comments draw it; None: DenseLab's own
    text: Texts = Texts()  # the claim (vi: the lab's own words)
    test: ClaimTest | None = None  # one of KINDS (`_claims_file`)
    untested: Texts = Texts()  # why nothing tests it here, and what would (when test is None)

    @model_validator(mode="after")
    def _tested_or_why_not(self) -> Claim:
        if not self.text.by_language():
            raise refuse("missing (the claim in the lab's words, vi, and in English, en)", "text")
        if self.test is None and not self.untested.by_language():
            raise refuse("missing; a claim without a test says why under `untested`", "test")
        return self

    def said(self, language: str) -> str:
        """The claim in `language`, else in the lab's Vietnamese, else in English."""
        return self.text.get(language) or self.text.vi or self.text.en or ""


class FactorialsFile(Spec):
    """claims.yaml's factorials (validated first: the claims' tests name them)."""

    factorials: dict[Name, FactorialSpec] = Field(default_factory=dict)


class ClaimsFile(Spec):
    """claims.yaml's claims (their tests' kinds: `_claims_file`)."""

    claims: dict[Name, Claim] = Field(default_factory=dict)


@functools.cache
def _claims_file(kinds: tuple[type[ClaimTest], ...]) -> type[ClaimsFile]:
    """claims.yaml's claims, their `test:` one of `kinds`, told apart by the key only that kind has."""
    shapes = [kind.SHAPE for kind in kinds]

    def kind_of(data: Any) -> str | None:
        found = [kind.KEY for kind in kinds if isinstance(data, dict) and kind.KEY in data]
        return found[0] if len(found) == 1 else None

    test: Any = Annotated[
        Union[tuple(Annotated[kind, Tag(kind.KEY)] for kind in kinds)],  # noqa: UP007
        Discriminator(
            kind_of,
            custom_error_type="denselab",
            custom_error_message=f"expected one kind of test: {', '.join(shapes[:-1])} or {shapes[-1]}",
        ),
    ]
    claim = create_model("Claim", __base__=Claim, test=(test | None, None))
    return create_model("ClaimsFile", __base__=ClaimsFile, claims=(dict[Name, claim], {}))  # type: ignore[valid-type]


def parse_with_claims(data: Any) -> Params:
    """`config.parse_params`, then claims.yaml's factorials and claims (already-parsed YAML, merged)."""
    params = parse_params(data)
    names = tuple(params.exercises)
    specs = validated(FactorialsFile, {"factorials": data.get("factorials") or {}}, {"exercises": names})
    aspects = all_settings(params)
    factorials = {name: spec.factorial(aspects) for name, spec in specs.factorials.items()}
    any_exercises = validation_context(data)["any_exercises"]  # params.yaml's and the profiles' (descriptions' too)
    context = {"exercises": names, "any_exercises": any_exercises, "factorials": factorials}
    claims = validated(_claims_file(tuple(KINDS)), {"claims": data.get("claims") or {}}, context).claims
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
