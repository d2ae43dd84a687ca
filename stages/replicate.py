"""Stage `replicate@<exercise>-<seed>`: one more run of an exercise with another seed, for the seeds study.

    python -m stages.replicate --exercise ex3 --seed 1 --fingerprint data/fingerprints/ex3.json \
        --out reports/runs/ex3/seed-1.json

Trains exactly as `train` does and evaluates exactly as `evaluate` does (the same functions of
`denselab.training.fit` and `denselab.training.evaluation`; only the seed differs), then keeps what the study needs:
the test accuracy and loss and the per-epoch history. The model itself is not kept: the lab's run keeps
its model. The settings and arrays come from the exercise's fingerprint (`denselab.training.fingerprints`), as they do for
`train`, so it reads no params itself.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from denselab.core.cli import argument_parser, load_tensorflow, stage_main
from denselab.core.exercise import Exercise
from denselab.core.files import write_text
from denselab.data.arrays import read_test, read_training
from denselab.training.fingerprints import read_fingerprint


def replicate(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, spec: Exercise, seed: int
) -> dict:
    """Train a fresh model of `spec` with `seed`, evaluate it on the test set; return the run's record."""
    from denselab.training.evaluation import predict
    from denselab.training.fit import check_finished, fit_exercise
    from denselab.training.models import precision_of

    model, history, _ = fit_exercise(x_train, y_train, spec, seed)
    check_finished(history, spec, f"seed {seed}")
    metrics, _, _ = predict(model, x_test, y_test)
    return {
        "seed": seed,
        **metrics,
        "precision": precision_of(model),
        # Six significant digits, as the lab's run's history CSV has them.
        "history": {name: [float(f"{v:.6g}") for v in values] for name, values in history.items()},
    }


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.replicate --exercise NAME --seed N --fingerprint FILE.json --out FILE.json`."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("--exercise", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--fingerprint", type=Path, required=True, help="what the fingerprint stage wrote for it")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    spec, folder = read_fingerprint(args.fingerprint, args.exercise)
    x_train, y_train = read_training(folder)
    x_test, y_test = read_test(folder)
    print(
        f"{args.exercise}, seed {args.seed}: training on {x_train.shape[0]} samples, {spec.epochs} epochs",
        file=sys.stderr,
    )

    load_tensorflow()
    from denselab.training.fit import configure_threads

    configure_threads()
    start = time.perf_counter()
    record = replicate(x_train, y_train, x_test, y_test, spec, args.seed)
    write_text(args.out, json.dumps({"exercise": args.exercise, **record}, indent=1) + "\n")
    print(
        f"{args.exercise}, seed {args.seed}: test accuracy {record['test_accuracy']:.2%} "
        f"({time.perf_counter() - start:.1f} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
