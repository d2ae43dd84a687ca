"""Load `params.yaml` and the files beside it once; validate them with pydantic models into typed, frozen objects.

Every stage calls `load_params()` first, before any heavy import, so a typo stops `dvc repro` in a fraction of a
second with one line per mistake, naming the file, the key and what is allowed. The models here say what is valid
(types, bounds, choices, the names one section takes from another); `denselab.core.schema` words pydantic's errors the
way a student reads them (`expected an integer >= 1, got str 'ten'`; `did you mean 'adam'?`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from denselab.core.cli import ParamsError
from denselab.core.exercise import (
    ACTIVATIONS,
    LOSSES,
    NUM_CLASSES,
    OPTIMIZERS,
    PRECISIONS,
    Exercise,
    Layer,
)
from denselab.core.schema import (
    URL_PATTERN,
    AnyExerciseName,
    ExerciseName,
    Name,
    NonEmpty,
    Sha256,
    Spec,
    Unique,
    describe,
    known,
    refuse,
    validated,
)

__all__ = [  # re-exported: what training reads lives in denselab.core.exercise, which never changes with validation
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
    "profiles.yaml": ("profiles",),
}

# What the code knows how to read; anything else is a typo (what it can build and train: denselab.core.exercise).
DATASETS = ("mnist", "cifar10")
LANGUAGES = ("en", "vi")
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


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

    url: Annotated[str, StringConstraints(pattern=URL_PATTERN)]
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


class StudyAdditions(Spec):
    """What a profile adds to the seeds study: exercises (params.yaml's or the profile's own) and seeds."""

    exercises: Unique[AnyExerciseName] = ()
    seeds: Unique[Annotated[int, Field(ge=0)]] = ()


class Profile(Spec):
    """Additions to params.yaml that `python -m denselab.tools.profile NAME` writes into it (profiles.yaml): exercises
    to define, as params.yaml defines them, and what the study adds."""

    exercises: dict[Name, ExerciseSpec] = Field(default_factory=dict)
    study: StudyAdditions = Field(default_factory=StudyAdditions)


class ReportSettings(Spec):
    """How the HTML report is rendered."""

    language: Literal[LANGUAGES] = "en"  # type: ignore[valid-type]


class ParamsFile(Spec):
    """params.yaml with datasets.yaml and descriptions.yaml merged in. claims.yaml's keys are validated by
    `denselab.study.claim_tests` (validate, judge and report), which judges them too: the stages that only train never
    run that code."""

    seed: int = Field(ge=0)
    datasets: Unique[Literal[DATASETS]] = Field(title="dataset name")  # type: ignore[valid-type]
    inputs: dict[Name, InputVariant] = Field(min_length=1)
    exercises: dict[Name, ExerciseSpec] = Field(min_length=1)
    study: Study
    report: ReportSettings
    # params.yaml lists the datasets (dvc.yaml runs a download per name); datasets.yaml says where each comes from.
    sources: dict[Annotated[str, known("datasets", "dataset (one of params.yaml's datasets)")], DatasetSource]
    descriptions: dict[AnyExerciseName, Texts] | None = None
    profiles: Any = None  # ProfilesFile, below
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
            if source.idx_sha256 is None and name == "mnist":  # a mirror's IDX files are decoded only once checked
                raise refuse("missing (required): the four IDX files' sha256", name, "idx_sha256")
        return sources


class ProfilesFile(Spec):
    """profiles.yaml. Checked on its own: what a profile names (inputs, exercises) is params.yaml's when it is
    applied, not necessarily now (a project that dropped CIFAR-10 keeps a valid params.yaml), so the names are
    checked by `denselab.tools.profile` against the params.yaml it writes."""

    profiles: dict[Name, Profile] = Field(default_factory=dict)


@dataclass(frozen=True)
class Params:
    """The whole validated params.yaml (and the files beside it)."""

    seed: int
    datasets: Mapping[str, DatasetSource]
    inputs: Mapping[str, InputVariant]
    exercises: Mapping[str, Exercise]
    study: Study
    report: ReportSettings
    profiles: Mapping[str, Profile] = dataclasses.field(default_factory=dict)
    factorials: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # denselab.study.claim_tests.Factorial
    claims: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # denselab.study.claim_tests.Claim


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
            raise ParamsError(f"{where}: expected a mapping of keys, got {describe(data)}")
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
    `denselab.study.claim_tests.parse_with_claims`."""
    spec = validated(ParamsFile, data, validation_context(data))
    profiles = validated(ProfilesFile, {"profiles": data.get("profiles") or {}}, {}).profiles
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
        profiles=profiles,
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
        # What claims.yaml and descriptions.yaml may name: params.yaml's exercises and those a profile defines.
        "any_exercises": keys("exercises") + tuple(_profiles_exercises(data.get("profiles"))),
    }


def _profiles_exercises(profiles: Any) -> list[str]:
    """The exercises profiles.yaml's profiles define, as far as they are mappings (their own errors say the rest)."""
    found: list[str] = []
    for profile in profiles.values() if isinstance(profiles, dict) else ():
        exercises = profile.get("exercises") if isinstance(profile, dict) else None
        found += [name for name in exercises if isinstance(name, str)] if isinstance(exercises, dict) else []
    return found
