"""What every stage's `main()` shares: its errors as one clear line, and TensorFlow loaded the quiet way."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from denselab.config import ParamsError


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
    per-epoch log) and without Keras' optional integrations (`KERAS_OPTIONAL`; `TENSORFLOW_OPTIONAL` too
    when Keras runs on TensorFlow).

    Those packages stay importable afterwards; only the optional helpers that wanted them are off.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" in sys.modules:
        return
    optional = KERAS_OPTIONAL + (TENSORFLOW_OPTIONAL if keras_backend() == "tensorflow" else ())
    blocked = [name for name in optional if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        import keras  # noqa: F401  (imports TensorFlow)
    finally:
        for name in blocked:
            del sys.modules[name]
