"""What every stage's `main()` shares: its errors as one clear line, and TensorFlow loaded the quiet way."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any, NoReturn, TypeVar

N = TypeVar("N", int, float)


class ParamsError(ValueError):
    """A value in params.yaml or claims.yaml is missing, unknown or out of range (`denselab.core.config`)."""


class StageError(RuntimeError):
    """A stage cannot go on; the message says why and what to do."""


class DataError(ValueError):
    """A data file is corrupt, hostile or not what it claims to be."""


def stage_main(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn the expected failures of a stage into one clear line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ParamsError, DataError, StageError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake is one line naming the option (`--help` still shows the usage)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def argument_parser(spec: ModuleSpec | None, doc: str | None) -> argparse.ArgumentParser:
    """The command line of an entry point run as `python -m <module>` (`spec`: the module's `__spec__`): its
    usage names that command, where argparse would name the file (`train.py`), and its description is the first
    line of the module's docstring. A mistake on it is one line, exit code 2, before any work starts."""
    prog = f"python -m {spec.name}" if spec is not None else None
    return _OneLineParser(prog=prog, description=(doc or "").splitlines()[0])


def bounded(kind: Callable[[str], N], low: N, high: N | None = None, above: bool = False) -> Callable[[str], N]:
    """An argparse type: `kind` (int or float) at least `low` (more than `low` with `above`), at most `high`."""

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_KIND_WORDS.get(kind, 'a value')}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
        if (above and value <= low) or value < low:
            floor = f"more than {low}" if above else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {floor}, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {text}")
        return value

    return parse


_KIND_WORDS: dict[Callable[[str], Any], str] = {int: "a whole number", float: "a number"}


# TensorFlow's C++ libraries log through absl before anything initialises it: each of its two shared libraries
# writes "WARNING: All log messages before absl::InitializeLog() ..." and oneDNN's info line while
# `import keras` loads them, whatever TF_CPP_MIN_LOG_LEVEL says (TensorFlow 2.21, measured: four lines per
# stage, about 100 in a full build). These two, and only these, are dropped; any other line is passed on.
TENSORFLOW_IMPORT_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+\s+\d+ port\.cc:\d+\] oneDNN custom operations are on\..*)$"
)


@contextlib.contextmanager
def _filtered_stderr(noise: re.Pattern[str]) -> Iterator[None]:
    """Send what is written to file descriptor 2 (C++ code writes there, not to sys.stderr) to a temporary file,
    then pass on every line that `noise` does not match."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines() if not noise.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


# Keras imports these, if installed, for its scikit-learn wrappers, image plotting, notebook
# detection and DataFrame inputs, and falls back when the import fails. The stages use none of
# them; skipping them saves 1.5-2 s of every training or evaluating stage's 4.6 s start-up
# (measured), a third of a full run's overhead on top of the training itself.
KERAS_OPTIONAL = ("sklearn", "matplotlib", "IPython", "pandas")
# TensorFlow's lite converter imports JAX, if installed, for a conversion path the stages never take:
# 0.5 s and about 100 MB more per stage (measured). Skipped unless Keras itself runs on JAX.
TENSORFLOW_OPTIONAL = ("jax", "jaxlib")


def keras_backend() -> str:
    """The backend Keras will load: $KERAS_BACKEND, else keras.json's, else TensorFlow (Keras' own rule)."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "keras.json"
    try:
        return str(json.loads(config.read_text()).get("backend") or "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def load_tensorflow() -> None:
    """Import TensorFlow and Keras for a stage: without TensorFlow's C++ info lines (they drown the
    per-epoch log; `TENSORFLOW_IMPORT_NOISE` for those TF_CPP_MIN_LOG_LEVEL no longer reaches) and without Keras' optional integrations (`KERAS_OPTIONAL`; `TENSORFLOW_OPTIONAL` too
    when Keras runs on TensorFlow).

    Those packages stay importable afterwards; only the optional helpers that wanted them are off.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" in sys.modules:
        return
    optional = KERAS_OPTIONAL + (TENSORFLOW_OPTIONAL if keras_backend() == "tensorflow" else ())
    with optional_imports_off(optional), _filtered_stderr(TENSORFLOW_IMPORT_NOISE):
        import keras  # noqa: F401  (imports TensorFlow)


@contextlib.contextmanager
def optional_imports_off(names: Sequence[str]) -> Iterator[None]:
    """Within the block, importing any of `names` not imported yet raises ImportError, as if it were not installed:
    a package that imports it only for an optional feature falls back. Afterwards each is importable again."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        yield
    finally:
        for name in blocked:
            del sys.modules[name]
