"""What every model of params.yaml and the files beside it is built from, and how their mistakes are said.

pydantic validates (types, bounds, choices); `mistakes` words its errors the way a student reads them, one line per
mistake naming the key as the YAML writes it: `exercises.ex2.epochs: expected an integer >= 1, got str 'ten'`,
`did you mean 'adam'?`, the YAML number hint. `denselab.core.config` (params.yaml) and `denselab.study.claim_tests`
(claims.yaml) hold the models.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, Union

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from denselab.core.cli import ParamsError

# Each pattern a string must match, and how an error says it.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
URL_PATTERN = r"^(https?|file)://"
PATTERNS = {
    NAME_PATTERN: "a name (letters, digits and _; a letter first)",
    SHA256_PATTERN: "64 hexadecimal digits (a sha256)",
    URL_PATTERN: "an http(s):// or file:// URL",
}

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


Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
# A YAML list, read as a tuple (strict mode would take only a tuple, which YAML cannot write).
NonEmpty = Annotated[tuple[_T, ...], Strict(False), Field(min_length=1)]
Unique = Annotated[tuple[_T, ...], Strict(False), Field(min_length=1), AfterValidator(_no_repeats)]
Sha256 = Annotated[str, StringConstraints(to_lower=True, pattern=SHA256_PATTERN)]
ExerciseName = Annotated[str, known("exercises", "exercise")]
# An exercise that params.yaml or a profile (profiles.yaml) defines: what claims and descriptions may name before
# the profile is applied.
AnyExerciseName = Annotated[str, known("any_exercises", "exercise")]


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
        got = f"{value:g}" if kind in _BOUNDS and isinstance(value, (int, float)) else describe(value)
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


def describe(value: Any) -> str:
    """A value as an error says what it got: `str 'ten'`, `a boolean (true)`, `nothing (null)`."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (dict, list, tuple)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return f"{type(value).__name__} {value!r}"
