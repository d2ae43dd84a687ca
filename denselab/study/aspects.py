"""What two exercises can differ in, aspect by aspect: what a factorial crosses, a claim names and the report
compares. Pure functions of validated params (`denselab.core.config`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from denselab.core.i18n import N_

if TYPE_CHECKING:
    from denselab.core.config import InputVariant, Params
    from denselab.core.exercise import Exercise

# The aspects, in the order the page lists them: `settings`' keys, what a factorial or a claim may name, and the
# message ids the page translates them by.
ASPECTS = (
    N_("dataset"),
    N_("layer sizes"),
    N_("hidden activations"),
    N_("output activation"),
    N_("input scaling"),
    N_("optimizer"),
    N_("learning rate"),
    N_("loss function"),
    N_("batch size"),
    N_("epochs"),
    N_("validation split"),
)


def settings(exercise: Exercise, variant: InputVariant) -> dict[str, Any]:
    """What defines an exercise's run, aspect by aspect (`ASPECTS`, in its order).

    The hidden layers' activations and the output's are two aspects: a hidden layer extracts features, the output
    turns them into what the loss reads, and a claim about one must not be confused with the other.
    """
    values = (
        variant.dataset,
        tuple(layer.units for layer in exercise.layers),
        tuple(layer.activation or "none" for layer in exercise.layers[:-1]),
        exercise.layers[-1].activation or "none",
        "x/255" if variant.divide_by_255 else "raw",
        exercise.optimizer,
        exercise.learning_rate,
        exercise.loss,
        exercise.batch_size,
        exercise.epochs,
        exercise.validation_split,
    )
    return dict(zip(ASPECTS, values, strict=True))


def level_text(value: Any) -> str:
    """An aspect's value as claims.yaml writes it: `sigmoid`, `x/255`, `relu, relu` (a tuple joined)."""
    return ", ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The aspects in which two exercises' `settings` differ, in `settings` order."""
    return [key for key in a if a[key] != b[key]]


def all_settings(params: Params) -> dict[str, dict[str, Any]]:
    """Every exercise's `settings`, by name."""
    return {name: settings(spec, params.inputs[spec.inputs]) for name, spec in params.exercises.items()}


def one_change_pairs(params: Params, names: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """Every pair (a, b, aspect) of exercises, in params order, that differ in exactly one aspect.

    These are the comparisons the lab draws conclusions from (ex1 -> ex2: activations).
    """
    names = list(params.exercises) if names is None else [n for n in params.exercises if n in names]
    aspects = all_settings(params)
    found = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            changed = differences(aspects[a], aspects[b])
            if len(changed) == 1:
                found.append((a, b, changed[0]))
    return found


@dataclass(frozen=True)
class Confound:
    """Why a comparison no longer tests only what it names: two of its exercises, which should differ in exactly
    `named`, differ in `found`. Valid params (a student's experiment), so reported, never refused: the claims
    that rest on the comparison are judged "not tested" until the exercises are set back."""

    a: str
    b: str
    named: tuple[str, ...]
    found: tuple[str, ...]

    @classmethod
    def between(cls, a: str, b: str, named: Sequence[str], aspects: Mapping[str, Mapping[str, Any]]) -> Confound | None:
        """The confound of comparing `a` with `b` (their `settings` in `aspects`) on `named`, or None if they
        differ in exactly those aspects."""
        found = differences(aspects[a], aspects[b])
        return None if sorted(found) == sorted(named) else cls(a, b, tuple(named), tuple(found))

    @property
    def extra(self) -> tuple[str, ...]:
        """The aspects in which they now differ as well."""
        return tuple(aspect for aspect in self.found if aspect not in self.named)

    @property
    def lacking(self) -> tuple[str, ...]:
        """The named aspects in which they no longer differ."""
        return tuple(aspect for aspect in self.named if aspect not in self.found)

    def sentence(self) -> str:
        """What changed, in English (validate's warning; the report words it per language)."""
        parts = [f"now differ in {', '.join(self.extra)} as well"] if self.extra else []
        parts += [f"no longer differ in {', '.join(self.lacking)}"] if self.lacking else []
        return f"{self.a} and {self.b} {' and '.join(parts)}"


@dataclass(frozen=True)
class Factorial:
    """A 2x2 design: two aspects (`denselab.study.aspects`), two values of each, one exercise per cell.

    `cells[r][c]` has the r-th value of `rows` and the c-th of `columns`; the exercises differ in nothing else.
    """

    rows: str
    columns: str
    cells: tuple[tuple[str, str], tuple[str, str]]
    row_levels: tuple[str, str]  # each aspect's two values, as `level_text` writes them
    column_levels: tuple[str, str]
    confounds: tuple[Confound, ...] = ()  # where the cells differ in more than the two aspects: not testable

    def exercises(self) -> tuple[str, ...]:
        """The four cells' exercises, row by row."""
        return (*self.cells[0], *self.cells[1])
