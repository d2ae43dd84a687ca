"""One run of an exercise, as the lab trains it: seeded, built by the one model factory, fitted by the loop.
The train stage (the lab's run) and the replicate stage (the seeds study's runs) both train through here.
TensorFlow is imported by the functions, not by this module."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING

import numpy as np

from denselab.core.cli import StageError
from denselab.core.exercise import Exercise

if TYPE_CHECKING:
    from denselab.training.loop import EpochCallback


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def configure_threads() -> None:
    """One op at a time, each on every core: a dense network is a chain of ops, nothing runs beside.

    Must run before TensorFlow executes its first op (so: from a stage's main, not from tests).
    """
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)


def fit_exercise(
    x: np.ndarray, y: np.ndarray, spec: Exercise, seed: int, verbose: int = 2, on_epoch: EpochCallback = None
):
    """Fit a fresh model of `spec` on (x, y) the lab's way; return (model, history dict, seconds per epoch).

    `on_epoch(history, seconds)` is called after every epoch with everything so far; `verbose=2` logs one
    line per epoch (no carriage-return progress bar in DVC's log).
    """
    from denselab.training.loop import FitSettings, train_epochs
    from denselab.training.models import compile_model, make_model, resolve_precision, use_fast_adam

    seed_everything(seed)
    model = compile_model(make_model(x.shape[1], spec.layers, resolve_precision(spec.precision)), spec)
    model = use_fast_adam(model, spec)
    settings = FitSettings(spec.batch_size, spec.epochs, spec.validation_split, seed, verbose, on_epoch, spec.xla)
    history, seconds = train_epochs(model, x, y, settings)
    return model, history, seconds


def check_finished(history: dict[str, list[float]], spec: Exercise, run: str) -> None:
    """Stop the stage if training ended early (the loop stops when the loss stops being finite)."""
    epochs = len(history.get("loss", []))
    if epochs < spec.epochs:
        raise StageError(f"{run}: training stopped after {epochs} epochs (loss became NaN)")


def versions() -> dict[str, str]:
    """Versions of what trained the model, for the report's provenance."""
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
