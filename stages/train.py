"""Stage `train@<exercise>`: build, compile and fit one exercise's network exactly as the lab does.

    python -m stages.train ex3 data/prepared/mnist_scaled data/models/ex3 reports/history/ex3.csv reports/summary/ex3.json

Writes the model (`model.keras`) with its resolved settings (`params.json`) beside it,
the per-epoch history as CSV (a DVC plot) and the model summary as JSON.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stages.cli import StageError, atomic_path, load_tensorflow, require_free_space, stage_main, write_text
from stages.config import Exercise, load_params, parameter_count
from stages.layout import MODEL_FILE, MODEL_SETTINGS, PREPARED

if TYPE_CHECKING:
    from stages.loop import EpochCallback

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def configure_threads() -> None:
    """One op at a time, each on every core: a dense network is a chain of ops, nothing runs beside.

    Must run before TensorFlow executes its first op (so: from main, not from tests).
    """
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)


def train(x: np.ndarray, y: np.ndarray, spec: Exercise, seed: int, verbose: int = 2, on_epoch: EpochCallback = None):
    """Fit a fresh model of `spec` on (x, y) the lab's way; return (model, history dict, seconds per epoch).

    `on_epoch(history, seconds)` is called after every epoch with everything so far.
    """
    from stages.loop import train_epochs
    from stages.models import compile_model, make_model, resolve_precision, use_fast_adam

    seed_everything(seed)
    model = compile_model(make_model(x.shape[1], spec.layers, resolve_precision(spec.precision)), spec)
    model = use_fast_adam(model, spec)
    # verbose=2: one line per epoch, no carriage-return progress bar in DVC's log.
    history, seconds = train_epochs(
        model, x, y, spec.batch_size, spec.epochs, spec.validation_split, seed, verbose, on_epoch
    )
    return model, history, seconds


def check_finished(history: dict[str, list[float]], spec: Exercise, run: str) -> None:
    """Stop the stage if training ended early (the loop stops when the loss stops being finite)."""
    epochs = len(history.get("loss", []))
    if epochs < spec.epochs:
        raise StageError(f"{run}: training stopped after {epochs} epochs (loss became NaN)")


def history_csv(history: dict[str, list[float]]) -> str:
    """The per-epoch history as CSV (epoch counted from 1), six significant digits."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for i in range(len(history["loss"])):
        writer.writerow([i + 1] + [f"{history[c][i]:.6g}" for c in HISTORY_COLUMNS[1:]])
    return out.getvalue()


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


def load_training_arrays(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The prepared training arrays of `folder`, memory-mapped, checked for shape and dtype."""
    try:
        x = np.load(folder / PREPARED["x_train"], mmap_mode="r")
        y = np.load(folder / PREPARED["y_train"], mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise StageError(f"{folder}: cannot read the prepared arrays ({exc}); run `dvc repro` to rebuild them") from exc
    if x.ndim != 2 or y.shape != (len(x), 10) or x.dtype != np.float32:
        raise StageError(
            f"{folder}: expected float32 x (n, d) and one-hot y (n, 10), got {x.shape} {x.dtype}, {y.shape}"
        )
    return x, y


def model_bytes(parameters: int) -> int:
    """About what model.keras takes: float32 weights and Adam's two moments, plus the file's own overhead."""
    return 3 * 4 * parameters + 1_000_000


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.train --exercise NAME --prepared DIR --model-dir DIR --history FILE.csv
    --summary FILE.json`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", required=True, help="a key of `exercises` in params.yaml")
    parser.add_argument("--prepared", type=Path, required=True, help="the folder of x_train.npy and y_train.npy")
    parser.add_argument("--model-dir", type=Path, required=True, help="where model.keras and its settings go")
    parser.add_argument("--history", type=Path, required=True, help="the learning curves (.csv, a DVC plot)")
    parser.add_argument("--summary", type=Path, required=True, help="the model summary and timings (.json)")
    args = parser.parse_args(argv)
    params = load_params()  # before TensorFlow is imported: a bad param fails in milliseconds
    if args.exercise not in params.exercises:
        raise StageError(f"no exercise {args.exercise!r} in params.yaml exercises")
    spec = params.exercises[args.exercise]
    x, y = load_training_arrays(args.prepared)
    # The saved model holds the weights and Adam's two moments: check the room for it before training.
    require_free_space(
        args.model_dir, model_bytes(parameter_count(x.shape[1], spec.layers)), f"{args.exercise}'s model"
    )
    print(
        f"{args.exercise}: training on {x.shape[0]} samples of {x.shape[1]} features, {spec.epochs} epochs",
        file=sys.stderr,
    )
    load_tensorflow()

    configure_threads()
    start = time.perf_counter()
    # The curves so far, rewritten after every epoch: `dvc plots show` follows a long run as it goes.
    model, history, seconds = train(
        x, y, spec, params.seed, on_epoch=lambda h, _: write_text(args.history, history_csv(h))
    )
    fit_seconds = time.perf_counter() - start
    check_finished(history, spec, args.exercise)

    from stages.models import portable, summarize

    with atomic_path(args.model_dir / MODEL_FILE) as tmp:
        portable(model).save(tmp)
    settings = {"exercise": args.exercise, "seed": params.seed, **dataclasses.asdict(spec)}
    write_text(args.model_dir / MODEL_SETTINGS, _json(settings))
    write_text(args.history, history_csv(history))
    summary = {
        **summarize(model),
        "input_dim": int(x.shape[1]),
        "train_samples": int(x.shape[0]),
        "seconds_per_epoch": round(float(np.median(seconds)), 3),
        "fit_seconds": round(fit_seconds, 2),
        "versions": versions(),
    }
    write_text(args.summary, _json(summary))
    print(f"{args.exercise}: {np.median(seconds):.2f} s per epoch, saved {args.model_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
