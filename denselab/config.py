"""Load `params.yaml` once and validate it into typed, frozen objects.

Every stage calls `load_params()` first, before any heavy import, so a typo in
`params.yaml` stops `dvc repro` in a fraction of a second with a message that
names the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from denselab.cli import ParamsError
from denselab.exercise import (
    ACTIVATIONS,
    LOSSES,
    NUM_CLASSES,
    OPTIMIZERS,
    PRECISIONS,
    Exercise,
    Layer,
)

__all__ = [  # re-exported: what training reads lives in denselab.exercise, which never changes with validation
    "ACTIVATIONS",
    "LOSSES",
    "NUM_CLASSES",
    "OPTIMIZERS",
    "PRECISIONS",
    "Exercise",
    "Layer",
    "ParamsError",
]

PARAMS_FILE = Path("params.yaml")
# Beside params.yaml, validated with it: what DVC must not show as params (`dvc exp show` and `dvc params diff`
# list every key of a params file), read by the stages that need it as plain dependencies. File -> its top-level
# keys. The claims and the factorials they are tested on (judge and report); where the datasets come from, URLs
# and sha256 (download); each exercise's description, per language (report).
CLAIMS_FILE = "claims.yaml"
SIDE_FILES = {
    CLAIMS_FILE: ("factorials", "claims"),
    "datasets.yaml": ("sources",),
    "descriptions.yaml": ("descriptions",),
}

# What the code knows how to read; anything else is a typo (what it can build and train: denselab.exercise).
DATASETS = ("mnist", "cifar10")
LANGUAGES = ("en", "vi")
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset is downloaded from and the sha256 its file must have."""

    url: str
    sha256: str
    idx_sha256: Mapping[str, str] | None = None


@dataclass(frozen=True)
class InputVariant:
    """One prepared set of arrays: a dataset, flattened, optionally divided by 255."""

    dataset: str
    divide_by_255: bool


@dataclass(frozen=True)
class ReportSettings:
    """How the HTML report is rendered."""

    language: str


@dataclass(frozen=True)
class Study:
    """The seeds study: the exercises it covers and the seeds each is trained with besides the top-level seed."""

    seeds: tuple[int, ...]
    exercises: tuple[str, ...]

    def all_seeds(self, lab_seed: int) -> tuple[int, ...]:
        """Every run's seed, the lab's run (the top-level seed) first."""
        return (lab_seed, *self.seeds)


@dataclass(frozen=True)
class Confound:
    """Why a comparison no longer tests only what it names: two of its exercises, which should differ in exactly
    `named`, differ in `found`. Valid params (a student's experiment), so reported, never refused: the claims
    that rest on the comparison are judged "not tested" until the exercises are set back."""

    a: str
    b: str
    named: tuple[str, ...]
    found: tuple[str, ...]

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
    """A 2x2 design: two aspects (`config.settings` keys), two values of each, one exercise per cell.

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


@dataclass(frozen=True)
class Claim:
    """One conclusion, as its author wrote it, and the controlled comparison that tests it."""

    exercise: str | None  # the lab's exercise whose comments draw it; None: DenseLab's own explanation
    text: Mapping[str, str]  # language -> the claim (vi: the lab's own words)
    test: Any  # a denselab.claim_tests.ClaimTest, or None
    untested: Mapping[str, str]  # language -> why nothing tests it here, and what would (when test is None)

    def said(self, language: str) -> str:
        """The claim in `language`, else in the lab's Vietnamese, else in English."""
        return self.text.get(language) or self.text.get("vi") or self.text.get("en", "")


@dataclass(frozen=True)
class Params:
    """The whole validated params.yaml."""

    seed: int
    datasets: Mapping[str, DatasetSource]
    inputs: Mapping[str, InputVariant]
    exercises: Mapping[str, Exercise]
    study: Study
    report: ReportSettings
    factorials: Mapping[str, Factorial] = dataclasses.field(default_factory=dict)
    claims: Mapping[str, Claim] = dataclasses.field(default_factory=dict)


def load_params(path: str | Path = PARAMS_FILE, parse: Callable[[Any], Params] | None = None) -> Params:
    """Read and validate params.yaml and the files beside it (`SIDE_FILES`; a missing one is empty) with `parse`
    (default `parse_params`: all but the claims); raise ParamsError naming the file and the faulty key."""
    path = Path(path)
    found = {path: _read_yaml(path)}
    for name in SIDE_FILES:
        side = path.with_name(name)
        found[side] = _read_yaml(side) if side.is_file() else {}
    owner = {key: path.with_name(name) for name, keys in SIDE_FILES.items() for key in keys}
    merged: dict[Any, Any] = {}
    for where, data in found.items():
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ParamsError(f"{where}: expected a mapping of keys, got {_describe(data)}")
        for key in data:
            home = owner.get(key, path)
            if home != where:
                allowed = ", ".join(k for k, file in owner.items() if file == where)
                hint = f"belongs in {home.name}, beside it" if key in owner or where == path else "unknown key"
                raise ParamsError(f"{where}: {key}: {hint}" + (f"; allowed here: {allowed}" if where != path else ""))
        merged |= data
    try:
        return (parse or parse_params)(merged)
    except ParamsError as exc:
        first = str(exc).split(".", 1)[0].split(":", 1)[0].split("[", 1)[0]
        raise ParamsError(f"{owner.get(first, path)}: {exc}") from None


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read it ({exc.strerror})") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc


def parse_params(data: Any) -> Params:
    """Validate an already-parsed params mapping (the pure half of load_params). claims.yaml's keys are left to
    `denselab.claim_tests.parse_with_claims`."""
    top = _Section(data, "")
    # params.yaml lists the datasets (dvc.yaml runs a download per name); datasets.yaml says where each comes from.
    names = top.unique_list("datasets", lambda value, key: _choice(value, key, DATASETS, what="dataset name"))
    sources = top.mapping_of("sources", _dataset_source)
    for name in sources:
        _choice(name, f"sources.{name}", tuple(names), what="dataset (one of params.yaml's datasets)")
    unsourced = [name for name in names if name not in sources]
    if unsourced:
        raise ParamsError(
            f"sources: missing {', '.join(unsourced)} (params.yaml's datasets list it): its url and sha256"
        )
    datasets = {name: sources[name] for name in names}
    inputs = top.mapping_of("inputs", lambda s: _input_variant(s, datasets))
    exercises = top.mapping_of("exercises", lambda s: _exercise(s, inputs))
    descriptions = top.optional_mapping_of("descriptions", _description_of)
    for name, text in descriptions.items():
        _choice(name, f"descriptions.{name}", tuple(exercises), what="exercise")
        exercises[name] = dataclasses.replace(exercises[name], description=text)
    seed = top.integer("seed", minimum=0)
    # claims.yaml's factorials and claims: validated by denselab.claim_tests (validate, judge and report), which
    # judges them too; the stages that only train never run that code.
    top.seen.update(SIDE_FILES[CLAIMS_FILE])
    params = Params(
        seed=seed,
        datasets=datasets,
        inputs=inputs,
        exercises=exercises,
        study=_study(top.section("study"), seed, exercises),
        report=_report(top.section("report")),
    )
    top.done()
    return params


def settings(exercise: Exercise, variant: InputVariant) -> dict[str, Any]:
    """What defines an exercise's run, aspect by aspect (what two exercises can differ in, and a claim can name).

    The hidden layers' activations and the output's are two aspects: a hidden layer extracts features, the output
    turns them into what the loss reads, and a claim about one must not be confused with the other.
    """
    return {
        "dataset": variant.dataset,
        "layer sizes": tuple(layer.units for layer in exercise.layers),
        "hidden activations": tuple(layer.activation or "none" for layer in exercise.layers[:-1]),
        "output activation": exercise.layers[-1].activation or "none",
        "input scaling": "x/255" if variant.divide_by_255 else "raw",
        "optimizer": exercise.optimizer,
        "learning rate": exercise.learning_rate,
        "loss function": exercise.loss,
        "batch size": exercise.batch_size,
        "epochs": exercise.epochs,
        "validation split": exercise.validation_split,
    }


# The keys of `settings`, in its order: what a factorial or a claim may name.
ASPECTS = (
    "dataset",
    "layer sizes",
    "hidden activations",
    "output activation",
    "input scaling",
    "optimizer",
    "learning rate",
    "loss function",
    "batch size",
    "epochs",
    "validation split",
)


def level_text(value: Any) -> str:
    """An aspect's value as params.yaml's claims write it: `sigmoid`, `x/255`, `relu, relu` (a tuple joined)."""
    return ", ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The aspects in which two exercises' `settings` differ, in `settings` order."""
    return [key for key in a if a[key] != b[key]]


def one_change_pairs(params: Params, names: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """Every pair (a, b, aspect) of exercises, in params order, that differ in exactly one aspect.

    These are the comparisons the lab draws conclusions from (ex1 -> ex2: activations).
    """
    names = list(params.exercises) if names is None else [n for n in params.exercises if n in names]
    found = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            sa = settings(params.exercises[a], params.inputs[params.exercises[a].inputs])
            sb = settings(params.exercises[b], params.inputs[params.exercises[b].inputs])
            changed = differences(sa, sb)
            if len(changed) == 1:
                found.append((a, b, changed[0]))
    return found


def _dataset_source(s: _Section) -> DatasetSource:
    url = s.string("url")
    if not re.match(r"^(https?|file)://", url):
        raise ParamsError(f"{s.key('url')}: expected an http(s):// or file:// URL, got {url!r}")
    idx = None
    if "idx_sha256" in s.data:
        if s.name != "mnist":
            raise ParamsError(f"{s.key('idx_sha256')}: only mnist has IDX files")
        idx_section = s.section("idx_sha256")
        idx = {name: _sha256(idx_section, name) for name in IDX_FILES}
        idx_section.done()
    source = DatasetSource(url=url, sha256=_sha256(s, "sha256"), idx_sha256=idx)
    s.done()
    return source


def _input_variant(s: _Section, datasets: Mapping[str, DatasetSource]) -> InputVariant:
    variant = InputVariant(
        dataset=s.choice("dataset", tuple(datasets), what="dataset (a key of datasets)"),
        divide_by_255=s.boolean("divide_by_255"),
    )
    s.done()
    return variant


def _exercise(s: _Section, inputs: Mapping[str, InputVariant]) -> Exercise:
    if "description" in s.data:
        raise ParamsError(
            f"{s.key('description')}: belongs in descriptions.yaml, beside params.yaml "
            f"(descriptions: {{{s.name}: {{en: ..., vi: ...}}}}), so that `dvc exp show` does not list it"
        )
    layers = tuple(_layer(item) for item in s.list_of("layers"))
    if layers[-1].units != NUM_CLASSES:
        raise ParamsError(
            f"{s.key('layers')}: the last layer is the output and must have {NUM_CLASSES} units "
            f"(one per class), got {layers[-1].units}"
        )
    exercise = Exercise(
        description={},  # descriptions.yaml's (parse_params)
        inputs=s.choice("inputs", tuple(inputs), what="inputs (a key of inputs)"),
        layers=layers,
        optimizer=s.choice("optimizer", OPTIMIZERS),
        learning_rate=s.number("learning_rate", low=0.0, low_open=True),
        loss=s.choice("loss", LOSSES),
        batch_size=s.integer("batch_size", minimum=1),
        epochs=s.integer("epochs", minimum=1),
        validation_split=s.number("validation_split", low=0.0, high=1.0, low_open=True, high_open=True),
        precision=s.choice("precision", PRECISIONS),
        lab_test_accuracy=s.optional_number("lab_test_accuracy", low=0.0, high=1.0),
        control=s.boolean("control", default=False),
        xla=s.boolean("xla", default=False),
    )
    if exercise.control and exercise.lab_test_accuracy is not None:
        raise ParamsError(
            f"{s.key('lab_test_accuracy')}: a control is not one of the lab's exercises, so the lab reported no "
            "accuracy for it; remove the key (or `control: true`)"
        )
    s.done()
    return exercise


def _description_of(s: _Section) -> dict[str, str]:
    """An exercise's entry of descriptions.yaml: one text per language of the report (`{en: ..., vi: ...}`)."""
    found = {language: s.string(language) for language in LANGUAGES if language in s.data}
    s.seen.update(LANGUAGES)  # every language may be given, none must
    s.done()
    return found


def _description(s: _Section, key: str) -> dict[str, str]:
    """`description`: one text (English), or one per language of the report (`{en: ..., vi: ...}`)."""
    value = s.data.get(key)
    if value is None or isinstance(value, str):
        text = s.string(key, default="")
        return {"en": text} if text else {}
    texts = s.section(key)
    found = {language: texts.string(language) for language in LANGUAGES if language in texts.data}
    texts.seen.update(LANGUAGES)  # every language may be given, none must
    texts.done()
    return found


def _layer(s: _Section) -> Layer:
    layer = Layer(
        units=s.integer("units", minimum=1),
        activation=s.optional_choice("activation", ACTIVATIONS, what="activation (or null for none)"),
    )
    s.done()
    return layer


def _study(s: _Section, lab_seed: int, exercises: Mapping[str, Exercise]) -> Study:
    seeds = s.unique_list("seeds", lambda value, key: _Section.check_integer(value, key, minimum=0))
    if lab_seed in seeds:
        raise ParamsError(
            f"{s.key('seeds')}: {lab_seed} is the top-level seed; its run (the lab's run) is always part of "
            "the study, so list only the other seeds"
        )
    names = s.unique_list("exercises", lambda value, key: _choice(value, key, tuple(exercises), "exercise"))
    study = Study(seeds=tuple(seeds), exercises=tuple(names))
    s.done()
    return study


def _report(s: _Section) -> ReportSettings:
    settings = ReportSettings(language=s.choice("language", LANGUAGES, default="en"))
    s.done()
    return settings


def _sha256(s: _Section, key: str) -> str:
    value = s.string(key).lower()
    if not _SHA256.match(value):
        raise ParamsError(f"{s.key(key)}: expected 64 hexadecimal digits (a sha256), got {value!r}")
    return value


def _choice(value: Any, where: str, allowed: tuple[str, ...], what: str = "value") -> str:
    if isinstance(value, str) and value in allowed:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ParamsError(f"{where}: unknown {what} {value!r}; allowed: {', '.join(allowed)}{hint}")


_T = TypeVar("_T")
_MISSING = object()


class _Section:
    """A mapping under validation: typed getters that name the full key on error."""

    def __init__(self, data: Any, path: str):
        if not isinstance(data, dict):
            where = path or "the top level"
            raise ParamsError(f"{where}: expected a mapping of keys, got {_describe(data)}")
        self.data = data
        self.path = path
        self.name = path.rsplit(".", 1)[-1]
        self.seen: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, default: Any = _MISSING) -> Any:
        self.seen.add(key)
        if key in self.data:
            return self.data[key]
        if default is not _MISSING:
            return default
        # A misspelt key is both unknown and the reason a required one is missing: name it here.
        typo = difflib.get_close_matches(key, [str(k) for k in self.data if k not in self.seen], n=1, cutoff=0.75)
        hint = f"; is {self.key(typo[0])} a misspelling of it?" if typo else ""
        raise ParamsError(f"{self.key(key)}: missing (required){hint}")

    def section(self, key: str) -> _Section:
        return _Section(self._get(key), self.key(key))

    def optional_mapping_of(self, key: str, build: Callable[[_Section], _T]) -> dict[str, _T]:
        """`mapping_of`, or nothing where the key is absent or empty."""
        return self.mapping_of(key, build) if self._get(key, None) else {}

    def mapping_of(self, key: str, build: Callable[[_Section], _T]) -> dict[str, _T]:
        section = self.section(key)
        if not section.data:
            raise ParamsError(f"{section.path}: must not be empty")
        result = {}
        for name in section.data:
            if not isinstance(name, str) or not _NAME.match(name):
                raise ParamsError(
                    f"{section.path}: {name!r} is not a valid name (letters, digits and _; a letter first)"
                )
            result[name] = build(section.section(name))
        return result

    def list_of(self, key: str) -> list[_Section]:
        value = self._get(key)
        if not isinstance(value, list) or not value:
            raise ParamsError(f"{self.key(key)}: expected a non-empty list, got {_describe(value)}")
        return [_Section(item, f"{self.key(key)}[{i}]") for i, item in enumerate(value)]

    def unique_list(self, key: str, check: Callable[[Any, str], _T]) -> list[_T]:
        """A non-empty list without repeats, each item passed through `check(value, its key)`."""
        value = self._get(key)
        if not isinstance(value, list) or not value:
            raise ParamsError(f"{self.key(key)}: expected a non-empty list, got {_describe(value)}")
        items = [check(item, f"{self.key(key)}[{i}]") for i, item in enumerate(value)]
        for i, item in enumerate(items):
            if item in items[:i]:
                raise ParamsError(f"{self.key(key)}[{i}]: {item!r} is already in the list")
        return items

    def string(self, key: str, default: Any = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise ParamsError(f"{self.key(key)}: expected a string, got {_describe(value)}")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ParamsError(f"{self.key(key)}: expected true or false, got {_describe(value)}")
        return value

    def integer(self, key: str, minimum: int) -> int:
        return self.check_integer(self._get(key), self.key(key), minimum)

    @staticmethod
    def check_integer(value: Any, where: str, minimum: int) -> int:
        # bool is an int in Python; `epochs: yes` is a typo, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{where}: expected an integer >= {minimum}, got {_describe(value)}")
        if value < minimum:
            raise ParamsError(f"{where}: expected an integer >= {minimum}, got {value}")
        return value

    def number(
        self,
        key: str,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        default: Any = _MISSING,
    ) -> float:
        value = self._get(key, default)
        allowed = _interval(low, high, low_open, high_open)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = ""
            if isinstance(value, str) and re.match(r"^[-+]?\d+(\.\d*)?[eE][-+]?\d+$", value):
                hint = " (YAML reads 1e-4 as text: write 1.0e-4 or 0.0001)"
            raise ParamsError(f"{self.key(key)}: expected a number {allowed}, got {_describe(value)}{hint}")
        value = float(value)
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high or math.isnan(value):
            raise ParamsError(f"{self.key(key)}: expected a number {allowed}, got {value:g}")
        return value

    def optional_number(self, key: str, low: float | None = None, high: float | None = None) -> float | None:
        """A number in [low, high], or None where the key is absent or null."""
        return None if self._get(key, None) is None else self.number(key, low=low, high=high)

    def choice(self, key: str, allowed: tuple[str, ...], what: str | None = None, default: Any = _MISSING) -> str:
        return _choice(self._get(key, default), self.key(key), allowed, what or key.replace("_", " "))

    def optional_choice(self, key: str, allowed: tuple[str, ...], what: str | None = None) -> str | None:
        """One of `allowed`, or None where the key is absent or null."""
        return None if self._get(key, None) is None else self.choice(key, allowed, what)

    def done(self) -> None:
        """Fail on keys nobody asked for: a misspelt key must not be silently ignored."""
        unknown = [k for k in self.data if k not in self.seen]
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(str(key), sorted(self.seen), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            allowed = ", ".join(sorted(self.seen))
            raise ParamsError(f"{self.key(str(key))}: unknown key; allowed here: {allowed}{hint}")


def _interval(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    return ""


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return f"{type(value).__name__} {value!r}"
