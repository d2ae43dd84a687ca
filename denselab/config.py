"""Load `params.yaml` and the files beside it once; validate them with pydantic models into typed, frozen objects.

Every stage calls `load_params()` first, before any heavy import, so a typo stops `dvc repro` in a fraction of a
second with one line per mistake, naming the file, the key and what is allowed. The models say what is valid
(types, bounds, choices, the names one section takes from another); `ParamsError` words pydantic's errors the way
a student reads them (`expected an integer >= 1, got str 'ten'`; `did you mean 'adam'?`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import annotated_types
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

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

# Each pattern a string must match, and how an error says it.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
PATTERNS = {
    NAME_PATTERN: "a name (letters, digits and _; a letter first)",
    r"^[0-9a-f]{64}$": "64 hexadecimal digits (a sha256)",
    r"^(https?|file)://": "an http(s):// or file:// URL",
}
_NAME, _SHA256, _URL = PATTERNS

_T = TypeVar("_T")


class Spec(BaseModel):
    """A mapping of params.yaml or a file beside it: a misspelt or unknown key, a value of the wrong type (`epochs:
    yes` is not 1, `seed: "42"` not 42) or out of range is an error."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def refuse(message: str, *at: str | int) -> PydanticCustomError:
    """A mistake a validator found, `at` the keys below the one it validates (`ParamsError` names them)."""
    return PydanticCustomError("denselab", message, {"at": at})


def one_of(value: Any, allowed: tuple[str, ...], what: str, *at: str | int) -> Any:
    """`value` if it is one of `allowed`, else the error naming them, and the one it was probably meant to be
    (`at`: as `refuse`)."""
    if value in allowed:
        return value
    close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6) if isinstance(value, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise refuse(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}{hint}", *at)


def known(section: str, what: str) -> AfterValidator:
    """A name that must be a key of another section (`validation_context`): an exercise's `inputs`, an exercise in
    the study or a claim. A section that itself failed lists no names; its own error says why."""

    def check(value: str, info: ValidationInfo) -> str:
        allowed = tuple((info.context or {}).get(section, ()))
        return one_of(value, allowed, what) if allowed else value

    return AfterValidator(check)


def _no_repeats(items: tuple[Any, ...]) -> tuple[Any, ...]:
    for i, item in enumerate(items):
        if item in items[:i]:
            raise refuse(f"{item!r} is already in the list", i)
    return items


Name = Annotated[str, StringConstraints(pattern=_NAME)]
# A YAML list, read as a tuple (strict mode would take only a tuple, which YAML cannot write).
NonEmpty = Annotated[tuple[_T, ...], Strict(False), Field(min_length=1)]
Unique = Annotated[tuple[_T, ...], Strict(False), Field(min_length=1), AfterValidator(_no_repeats)]
Sha256 = Annotated[str, StringConstraints(to_lower=True, pattern=_SHA256)]
ExerciseName = Annotated[str, known("exercises", "exercise")]


class Texts(Spec):
    """One text per language of the report (`{en: ..., vi: ...}`); every language may be given, none must."""

    en: str | None = None
    vi: str | None = None

    def by_language(self) -> dict[str, str]:
        """language -> text, for the languages given."""
        return {language: text for language, text in self.model_dump().items() if text}

    def get(self, language: str, default: str | None = None) -> str | None:
        """The text in `language`, if given."""
        return self.by_language().get(language, default)

    def __getitem__(self, language: str) -> str:
        return self.by_language()[language]


class DatasetSource(Spec):
    """Where a dataset is downloaded from and the sha256 its file must have (datasets.yaml)."""

    url: Annotated[str, StringConstraints(pattern=_URL)]
    sha256: Sha256
    idx_sha256: dict[Literal[IDX_FILES], Sha256] | None = Field(None, title="IDX file")  # type: ignore[valid-type]

    @field_validator("idx_sha256")
    @classmethod
    def _all_four(cls, digests: dict[str, str] | None) -> dict[str, str] | None:
        for name in IDX_FILES:
            if digests is not None and name not in digests:
                raise refuse("missing (required): the four IDX files' sha256", name)
        return digests


class InputVariant(Spec):
    """One prepared set of arrays: a dataset, flattened, optionally divided by 255."""

    dataset: Annotated[str, known("datasets", "dataset (one of datasets)")]
    divide_by_255: bool


class LayerSpec(Spec):
    """A dense layer of params.yaml."""

    units: int = Field(ge=1)
    activation: Literal[ACTIVATIONS] | None = Field(None, title="activation (or null for none)")  # type: ignore[valid-type]


class ExerciseSpec(Spec):
    """An exercise of params.yaml (its description is descriptions.yaml's)."""

    inputs: Annotated[str, known("inputs", "inputs (a key of inputs)")]
    layers: NonEmpty[LayerSpec]
    optimizer: Literal[OPTIMIZERS]  # type: ignore[valid-type]
    learning_rate: float = Field(gt=0)
    loss: Literal[LOSSES]  # type: ignore[valid-type]
    batch_size: int = Field(ge=1)
    epochs: int = Field(ge=1)
    validation_split: float = Field(gt=0, lt=1)
    precision: Literal[PRECISIONS]  # type: ignore[valid-type]
    lab_test_accuracy: float | None = Field(None, ge=0, le=1)
    control: bool = False
    xla: bool = False

    @field_validator("layers")
    @classmethod
    def _output_layer(cls, layers: tuple[LayerSpec, ...]) -> tuple[LayerSpec, ...]:
        if layers[-1].units != NUM_CLASSES:
            raise refuse(
                f"the last layer is the output and must have {NUM_CLASSES} units (one per class), got {layers[-1].units}"
            )
        return layers

    @model_validator(mode="after")
    def _control_has_no_lab_result(self) -> ExerciseSpec:
        if self.control and self.lab_test_accuracy is not None:
            raise refuse(
                "a control is not one of the lab's exercises, so the lab reported no accuracy for it; remove the key "
                "(or `control: true`)",
                "lab_test_accuracy",
            )
        return self

    def exercise(self, description: Mapping[str, str]) -> Exercise:
        """The exercise as training reads it."""
        fields = self.model_dump(exclude={"layers"})
        return Exercise(
            description=description, layers=tuple(Layer(**layer.model_dump()) for layer in self.layers), **fields
        )


class Study(Spec):
    """The seeds study: the exercises it covers and the seeds each is trained with besides the top-level seed."""

    seeds: Unique[Annotated[int, Field(ge=0)]]
    exercises: Unique[ExerciseName]

    @field_validator("seeds")
    @classmethod
    def _lab_seed_apart(cls, seeds: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        lab_seed = (info.context or {}).get("seed")
        if lab_seed in seeds:
            raise refuse(
                f"{lab_seed} is the top-level seed; its run (the lab's run) is always part of the study, so list "
                "only the other seeds"
            )
        return seeds

    def all_seeds(self, lab_seed: int) -> tuple[int, ...]:
        """Every run's seed, the lab's run (the top-level seed) first."""
        return (lab_seed, *self.seeds)


class ReportSettings(Spec):
    """How the HTML report is rendered."""

    language: Literal[LANGUAGES] = "en"  # type: ignore[valid-type]


class ParamsFile(Spec):
    """params.yaml with datasets.yaml and descriptions.yaml merged in. claims.yaml's keys are validated by
    `denselab.claim_tests` (validate, judge and report), which judges them too: the stages that only train never
    run that code."""

    seed: int = Field(ge=0)
    datasets: Unique[Literal[DATASETS]] = Field(title="dataset name")  # type: ignore[valid-type]
    inputs: dict[Name, InputVariant] = Field(min_length=1)
    exercises: dict[Name, ExerciseSpec] = Field(min_length=1)
    study: Study
    report: ReportSettings
    # params.yaml lists the datasets (dvc.yaml runs a download per name); datasets.yaml says where each comes from.
    sources: dict[Annotated[str, known("datasets", "dataset (one of params.yaml's datasets)")], DatasetSource]
    descriptions: dict[ExerciseName, Texts] | None = None
    factorials: Any = None
    claims: Any = None

    @field_validator("exercises", mode="before")
    @classmethod
    def _descriptions_apart(cls, exercises: Any) -> Any:
        for name, exercise in exercises.items() if isinstance(exercises, dict) else ():
            if isinstance(exercise, dict) and "description" in exercise:
                raise refuse(
                    f"belongs in descriptions.yaml, beside params.yaml (descriptions: {{{name}: {{en: ..., vi: ...}}}}),"
                    " so that `dvc exp show` does not list it",
                    name,
                    "description",
                )
        return exercises

    @field_validator("sources")
    @classmethod
    def _every_dataset_sourced(cls, sources: dict[str, DatasetSource], info: ValidationInfo) -> dict:
        missing = [name for name in info.data.get("datasets", ()) if name not in sources]
        if missing:
            raise refuse(f"missing {', '.join(missing)} (params.yaml's datasets list it): its url and sha256")
        for name, source in sources.items():
            if source.idx_sha256 is not None and name != "mnist":
                raise refuse("only mnist has IDX files", name, "idx_sha256")
        return sources


@dataclass(frozen=True)
class Params:
    """The whole validated params.yaml (and the files beside it)."""

    seed: int
    datasets: Mapping[str, DatasetSource]
    inputs: Mapping[str, InputVariant]
    exercises: Mapping[str, Exercise]
    study: Study
    report: ReportSettings
    factorials: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # denselab.claim_tests.Factorial
    claims: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # denselab.claim_tests.Claim


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
        # Each line names its file: the one that holds the line's top-level key.
        lines = [
            f"{owner.get(re.split(r'[.:[]', line, maxsplit=1)[0], path)}: {line}" for line in str(exc).splitlines()
        ]
        raise ParamsError("\n".join(lines)) from None


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
    spec = validated(ParamsFile, data, validation_context(data))
    descriptions = spec.descriptions or {}
    return Params(
        seed=spec.seed,
        datasets={name: spec.sources[name] for name in spec.datasets},
        inputs=spec.inputs,
        exercises={
            name: exercise.exercise(descriptions[name].by_language() if name in descriptions else {})
            for name, exercise in spec.exercises.items()
        },
        study=spec.study,
        report=spec.report,
    )


def validation_context(data: Any) -> dict[str, Any]:
    """The names one section of params.yaml takes from another, read before validation so that each reference is
    checked where it is written (an unknown exercise in the study names `study.exercises[1]`)."""
    data = data if isinstance(data, dict) else {}

    def keys(section: str) -> tuple[str, ...]:
        value = data.get(section)
        return tuple(key for key in value if isinstance(key, str)) if isinstance(value, dict) else ()

    datasets = data.get("datasets")
    return {
        "seed": data.get("seed"),
        "datasets": tuple(d for d in datasets if d in DATASETS) if isinstance(datasets, list) else (),
        "inputs": keys("inputs"),
        "exercises": keys("exercises"),
    }


_M = TypeVar("_M", bound=BaseModel)


def validated(model: type[_M], data: Any, context: Mapping[str, Any]) -> _M:
    """`model` validated from `data`; its mistakes raised as one ParamsError, one line each (`mistakes`)."""
    try:
        return model.model_validate(data, context=dict(context))
    except ValidationError as exc:
        raise ParamsError("\n".join(mistakes(model, exc))) from None


def mistakes(model: type[BaseModel], exc: ValidationError) -> list[str]:
    """pydantic's errors, each as a line naming the key as the YAML writes it (`exercises.ex2.layers[0].units`)
    and what is allowed there. A misspelt key is both unknown and the reason a required one is missing: only the
    missing one is said, with the misspelling."""
    errors = exc.errors()
    # A list's length is checked after its items: an unknown item also leaves it "empty". The item says more.
    locs = [tuple(error["loc"]) for error in errors]
    errors = [
        e for e in errors if not any(len(loc) > len(e["loc"]) and loc[: len(e["loc"])] == e["loc"] for loc in locs)
    ]
    misspelt = {(*error["loc"][:-1], _typo(model, error)) for error in errors if error["type"] == "missing"}
    lines = []
    for error in errors:
        if error["type"] == "extra_forbidden" and tuple(error["loc"]) in misspelt:
            continue
        line = _mistake(model, error)
        if line not in lines:
            lines.append(line)
    return lines


def _typo(model: type[BaseModel], error: Mapping[str, Any]) -> str | None:
    """The unknown key beside a missing one that is probably it, misspelt."""
    if not isinstance(error["input"], dict):
        return None
    fields = _Where.of(model, tuple(error["loc"])).parent_fields
    unknown = [str(k) for k in error["input"] if k not in fields]
    close = difflib.get_close_matches(str(error["loc"][-1]), unknown, n=1, cutoff=0.75)
    return close[0] if close else None


def _mistake(model: type[BaseModel], error: Mapping[str, Any]) -> str:
    kind, value, ctx = error["type"], error["input"], error.get("ctx") or {}
    loc = (*error["loc"], *ctx.get("at", ()))
    where = _Where.of(model, loc)
    if kind == "denselab":
        said = error["msg"]
    elif kind == "missing":
        typo = _typo(model, error)
        said = "missing (required)" + (
            f"; is {_Where.of(model, (*loc[:-1], typo)).path} a misspelling of it?" if typo else ""
        )
    elif kind == "extra_forbidden":
        allowed = sorted(where.parent_fields)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        said = f"unknown key; allowed here: {', '.join(allowed)}" + (f"; did you mean {close[0]!r}?" if close else "")
    elif kind == "literal_error":
        choices = typing.get_args(where.type)
        try:
            one_of(value, choices, where.what)
        except PydanticCustomError as unknown:
            said = unknown.message()
    elif kind == "string_pattern_mismatch":
        said = f"expected {PATTERNS[ctx['pattern']]}, got {value!r}"
    elif kind == "too_short" and where.origin is dict:
        said = "must not be empty"
    else:  # a wrong type, or a number out of range
        got = f"{value:g}" if kind in _BOUNDS and isinstance(value, (int, float)) else _describe(value)
        hint = " (YAML reads 1e-4 as text: write 1.0e-4 or 0.0001)" if _YAML_FLOAT.match(str(value)) else ""
        said = f"expected {where.expected()}, got {got}{hint}"
    return f"{where.path}: {said}" if where.path else said


_BOUNDS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}
_YAML_FLOAT = re.compile(r"^[-+]?\d+(\.\d*)?[eE][-+]?\d+$")  # YAML 1.1 reads 1e-4 as a string


@dataclass
class _Where:
    """What the models say about one of pydantic's locations: the key as the YAML writes it
    (`exercises.ex2.layers[0].units`), its type, what the field holds and the keys beside it."""

    path: str
    type: Any
    metadata: list[Any]
    what: str
    parent_fields: tuple[str, ...]

    @classmethod
    def of(cls, model: type[BaseModel], loc: tuple[Any, ...]) -> _Where:
        tp: Any = model
        path, metadata, what = "", [], "value"
        fields: tuple[str, ...] = ()
        for part in loc:
            tp, more = _bare(tp)
            metadata += more
            if part == "[key]":  # the error is the mapping's key itself
                tp, metadata = str, []
                continue
            if _members(tp):  # a tagged union names the member in the location: not a key of the YAML
                tp, metadata = _members(tp).get(part, Any), []
                continue
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                by_key = {field.alias or name: field for name, field in tp.model_fields.items()}
                fields, field = tuple(by_key), by_key.get(str(part))
                tp, metadata = (field.annotation, list(field.metadata)) if field else (Any, [])
                what = field.title or str(part).replace("_", " ") if field else what
            elif typing.get_origin(tp) is dict:
                tp, metadata = typing.get_args(tp)[1], []
            elif typing.get_origin(tp) in (tuple, list):
                args = typing.get_args(tp)
                tp, metadata = (args[0] if args[-1] is Ellipsis or typing.get_origin(tp) is list else args[part]), []
            else:
                tp, metadata = Any, []
        tp, more = _bare(tp)
        return cls(path.lstrip("."), tp, metadata + more, what, fields)

    @property
    def origin(self) -> Any:
        return typing.get_origin(self.type) or self.type

    def expected(self) -> str:
        """What a value here must be, as an error says it: `an integer >= 1`, `a number in (0, 1)`."""
        origin = self.origin
        if origin is bool:
            return "true or false"
        if origin in (int, float):
            return f"{'an integer' if origin is int else 'a number'}{_interval(self.metadata)}"
        if origin is str:
            return "a string"
        if origin in (tuple, list):
            return "a non-empty list" if any(isinstance(m, annotated_types.MinLen) for m in self.metadata) else "a list"
        return "a mapping of keys"


def _bare(tp: Any) -> tuple[Any, list[Any]]:
    """A type without Annotated and None (`float | None` -> float), and the metadata it carried."""
    metadata: list[Any] = []
    while True:
        if typing.get_origin(tp) is Annotated:
            tp, *more = typing.get_args(tp)
            for meta in more:  # a Field() inside Annotated carries its constraints as metadata of its own
                metadata += meta.metadata if isinstance(meta, FieldInfo) else [meta]
        elif typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp):
            rest = [arg for arg in typing.get_args(tp) if arg is not type(None)]
            tp = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
        else:
            return tp, metadata


def _members(tp: Any) -> dict[str, Any]:
    """A tagged union's members by tag (a claim's test: one model per kind)."""
    if typing.get_origin(tp) not in (Union, types.UnionType):
        return {}
    found = {}
    for arg in typing.get_args(tp):
        for meta in typing.get_args(arg)[1:] if typing.get_origin(arg) is Annotated else ():
            if hasattr(meta, "tag"):
                found[meta.tag] = arg
    return found


def _interval(metadata: list[Any]) -> str:
    """The bounds of a number, as an error says them: ` in (0, 1)`, ` >= 1`."""
    low = high = None
    for m in metadata:
        if isinstance(m, (annotated_types.Gt, annotated_types.Ge)):
            low = (m.gt, "(", ">") if isinstance(m, annotated_types.Gt) else (m.ge, "[", ">=")
        if isinstance(m, (annotated_types.Lt, annotated_types.Le)):
            high = (m.lt, ")") if isinstance(m, annotated_types.Lt) else (m.le, "]")
    if low and high:
        return f" in {low[1]}{low[0]:g}, {high[0]:g}{high[1]}"
    return f" {low[2]} {low[0]:g}" if low else ""


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (dict, list, tuple)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return f"{type(value).__name__} {value!r}"
