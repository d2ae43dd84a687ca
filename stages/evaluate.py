"""Stage `evaluate@<exercise>`: test accuracy as the lab computes it, test loss, and the evidence to explain them.

    python -m stages.evaluate --exercise ex3 --seed 42 --model-dir data/models/ex3 --prepared data/prepared/mnist_scaled \
        --history reports/history/ex3.csv --metrics reports/metrics/ex3.json --predictions reports/predictions/ex3.csv \
        --evidence data/evidence/ex3.npz --run reports/runs/ex3/seed-42.json

The only stage of the evaluation that needs TensorFlow: it predicts the test set once and runs it
through every layer once. What it keeps (`--evidence`, see `denselab.training.evaluation.unit_evidence`): every test
sample's output probabilities, per layer and unit how often its pre-activation is positive or saturates a
sigmoid, a sample of the pre-activations, and some first-layer weights. `explain` turns that into the
classification report, the mistakes and the hidden-unit diagnostics, without TensorFlow. It also writes the lab's
run's record (`--run`), in the shape replicate writes every other seed's: the seeds study reads them one way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from denselab.core.cli import StageError, argument_parser, load_tensorflow, stage_main
from denselab.core.files import write_text
from denselab.core.history import CURVES, read_history
from denselab.core.layout import MODEL_FILE
from denselab.core.records import RunRecord
from denselab.data.arrays import read_test
from denselab.training.evaluation import predict, unit_evidence, write_evidence


def evaluate(model, x_test: np.ndarray, y_test: np.ndarray) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    """Evaluate a trained model on the test set: (metrics, predicted classes, evidence: the output
    probabilities and what every unit does)."""
    metrics, probabilities, y_pred = predict(model, x_test, y_test)
    return metrics, y_pred, {"probabilities": probabilities, **unit_evidence(model, x_test)}


def predictions_csv(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    """Per-sample actual/predicted classes, the input of DVC's confusion-matrix plot."""
    rows = "".join(f"{a},{p}\n" for a, p in zip(np.asarray(y_true).tolist(), np.asarray(y_pred).tolist()))
    return "actual,predicted\n" + rows


def run_record(exercise: str, seed: int, metrics: dict, precision: str, history: dict[str, list[float]]) -> RunRecord:
    """The lab's run as the seeds study reads every run (replicate writes the others the same way)."""
    return {
        "exercise": exercise,
        "seed": seed,
        "test_accuracy": metrics["test_accuracy"],
        "test_loss": metrics["test_loss"],
        "precision": precision,
        "history": {curve: [float(f"{v:.6g}") for v in history[curve]] for curve in CURVES},
    }


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.evaluate --exercise NAME --seed N --model-dir DIR --prepared DIR --history
    FILE.csv --metrics FILE.json --predictions FILE.csv --evidence FILE.npz --run FILE.json`."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("--exercise", required=True)
    parser.add_argument("--seed", type=int, required=True, help="the lab's run's seed (params.yaml's `seed`)")
    parser.add_argument("--model-dir", type=Path, required=True, help="the folder train saved model.keras in")
    parser.add_argument("--prepared", type=Path, required=True, help="the folder of x_test.npy and y_test.npy")
    parser.add_argument("--history", type=Path, required=True, help="the learning curves train wrote (.csv)")
    parser.add_argument("--metrics", type=Path, required=True, help="test accuracy and loss (a DVC metrics file)")
    parser.add_argument("--predictions", type=Path, required=True, help="actual and predicted class per sample")
    parser.add_argument("--evidence", type=Path, required=True, help="probabilities and per-unit statistics (.npz)")
    parser.add_argument("--run", type=Path, required=True, help="the run's record for the seeds study (.json)")
    args = parser.parse_args(argv)
    x_test, y_test = read_test(args.prepared)

    load_tensorflow()
    import keras

    try:
        model = keras.models.load_model(args.model_dir / MODEL_FILE)
    except (OSError, ValueError) as exc:
        raise StageError(f"{args.model_dir / MODEL_FILE}: cannot load the model ({exc})") from exc
    metrics, y_pred, evidence = evaluate(model, x_test, y_test)
    write_evidence(args.evidence, evidence)
    write_text(args.metrics, json.dumps(metrics, indent=2) + "\n")
    write_text(args.predictions, predictions_csv(y_test, y_pred))
    from denselab.training.models import precision_of

    record = run_record(args.exercise, args.seed, metrics, precision_of(model), read_history(args.history))
    write_text(args.run, json.dumps(record, indent=1) + "\n")
    print(
        f"{args.exercise}: test accuracy {metrics['test_accuracy']:.2%}, test loss {metrics['test_loss']:.4f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
