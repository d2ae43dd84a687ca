"""Stage `train@<exercise>`: build, compile and fit one exercise's network exactly as the lab does.

    python -m stages.train --exercise ex3 --seed 42 --fingerprint data/fingerprints/ex3.json \
        --model-dir data/models/ex3 --history reports/history/ex3.csv --summary reports/summary/ex3.json

The exercise's settings and arrays come from its fingerprint (`denselab.training.fingerprints`), the seed from the command
line (dvc.yaml passes params.yaml's `seed`): the stage reads no params itself. Writes the model (`model.keras`)
with its resolved settings (`params.json`: the exercise's training settings, the seed and the arrays it read)
beside it, the per-epoch history as CSV
(a DVC plot, rewritten after every epoch) and the model summary as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from denselab.core.cli import argument_parser, load_tensorflow, stage_main
from denselab.core.exercise import Exercise, parameter_count
from denselab.core.files import atomic_path, require_free_space, write_text
from denselab.core.history import history_csv
from denselab.core.layout import MODEL_FILE, MODEL_SETTINGS
from denselab.data.arrays import read_training
from denselab.training.fingerprints import read_fingerprint
from denselab.training.fit import check_finished, configure_threads, fit_exercise, versions


def train(x: np.ndarray, y: np.ndarray, spec: Exercise, seed: int, on_epoch=None) -> tuple[Any, dict, dict]:
    """Fit a fresh model of `spec` on (x, y) the lab's way; return (model, history, summary: the model's layers
    and parameters, the training rows and features, the median seconds per epoch, the fit's wall time and the
    library versions). `on_epoch(history, seconds)` is called after every epoch with everything so far."""
    from denselab.training.loop import fast_path_missing
    from denselab.training.models import summarize

    start = time.perf_counter()
    model, history, seconds = fit_exercise(x, y, spec, seed, on_epoch=on_epoch)
    fit_seconds = time.perf_counter() - start
    summary = {
        **summarize(model),
        # What ran: only the fast loop compiles its steps with XLA (Keras' own fit, the fallback, does not).
        "xla": spec.xla and fast_path_missing(model) is None,
        "input_dim": int(x.shape[1]),
        "train_samples": int(x.shape[0]),
        "seconds_per_epoch": round(float(np.median(seconds)), 3) if seconds else None,
        "fit_seconds": round(fit_seconds, 2),
        "versions": versions(),
    }
    return model, history, summary


def model_bytes(parameters: int) -> int:
    """About what model.keras takes: float32 weights and Adam's two moments, plus the file's own overhead."""
    return 3 * 4 * parameters + 1_000_000


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.train --exercise NAME --seed N --fingerprint FILE.json --model-dir DIR
    --history FILE.csv --summary FILE.json`."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("--exercise", required=True, help="a key of `exercises` in params.yaml")
    parser.add_argument("--seed", type=int, required=True, help="the lab's run's seed (params.yaml's `seed`)")
    parser.add_argument("--fingerprint", type=Path, required=True, help="what the fingerprint stage wrote for it")
    parser.add_argument("--model-dir", type=Path, required=True, help="where model.keras and its settings go")
    parser.add_argument("--history", type=Path, required=True, help="the learning curves (.csv, a DVC plot)")
    parser.add_argument("--summary", type=Path, required=True, help="the model summary and timings (.json)")
    args = parser.parse_args(argv)
    spec, folder = read_fingerprint(args.fingerprint, args.exercise)
    x, y = read_training(folder)
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
    # The curves so far, rewritten after every epoch: `dvc plots show` follows a long run as it goes.
    model, history, summary = train(
        x, y, spec, args.seed, on_epoch=lambda h, _: write_text(args.history, history_csv(h))
    )
    check_finished(history, spec, args.exercise)

    from denselab.training.models import portable

    with atomic_path(args.model_dir / MODEL_FILE) as tmp:
        portable(model).save(tmp)
    settings = {"exercise": args.exercise, "seed": args.seed, "prepared": folder.as_posix()}
    write_text(args.model_dir / MODEL_SETTINGS, _json(settings | spec.training_settings()))
    write_text(args.history, history_csv(history))
    write_text(args.summary, _json(summary))
    print(f"{args.exercise}: {summary['seconds_per_epoch']:.2f} s per epoch, saved {args.model_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
