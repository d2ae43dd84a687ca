"""Stage `evaluate@<exercise>`: test accuracy as the lab computes it, test loss, confusion matrix.

    python -m stages.evaluate ex3 data/models/ex3 data/prepared/mnist_scaled \
        reports/metrics/ex3.json reports/evaluation/ex3.json reports/predictions/ex3.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from stages.cli import StageError, load_tensorflow, stage_main, write_text
from stages.config import NUM_CLASSES
from stages.prepare import one_hot

PREDICT_BATCH = 4096  # prediction needs no gradients: big batches mean fewer Python round trips


def _ratio(num: np.ndarray, den: np.ndarray) -> list[float | None]:
    """Elementwise num/den rounded to 6 digits; None where den is 0 (undefined, not 0%)."""
    return [None if d == 0 else round(float(n) / float(d), 6) for n, d in zip(num, den)]


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = NUM_CLASSES) -> dict:
    """Accuracy, confusion matrix (rows: actual, columns: predicted) and per-class figures."""
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    y_pred = np.asarray(y_pred).reshape(-1).astype(np.int64)
    matrix = np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)
    correct = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    recall = _ratio(correct, support)
    per_class = [
        {
            "class": c,
            "support": int(support[c]),
            "correct": int(correct[c]),
            # The lab's per-class accuracy is the share of a class's samples predicted right.
            "accuracy": recall[c],
            "precision": p,
            "recall": recall[c],
        }
        for c, p in enumerate(_ratio(correct, predicted))
    ]
    return {
        "samples": int(len(y_true)),
        "correct": int(correct.sum()),
        "accuracy": round(float(correct.sum()) / max(len(y_true), 1), 6),
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class,
    }


def evaluate(model, x_test: np.ndarray, y_test: np.ndarray) -> tuple[dict, dict, np.ndarray]:
    """Predict the test set once; return (metrics, classification report, predicted classes)."""
    probabilities = model.predict(x_test, batch_size=PREDICT_BATCH, verbose=0)
    y_pred = np.argmax(probabilities, axis=-1)  # the lab: np.argmax(model.predict(X_test), axis=-1)
    loss = float(model.loss(one_hot(y_test), probabilities))
    report = classification_report(y_test, y_pred)
    metrics = {"test_accuracy": report["accuracy"], "test_loss": round(loss, 6)}
    return metrics, report, y_pred


def load_test_arrays(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The prepared test arrays of `folder`: x memory-mapped, the labels in memory."""
    try:
        return np.load(folder / "x_test.npy", mmap_mode="r"), np.load(folder / "y_test.npy")
    except (OSError, ValueError) as exc:
        raise StageError(f"{folder}: cannot read the test arrays ({exc})") from exc


def predictions_csv(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    """Per-sample actual/predicted classes, the input of DVC's confusion-matrix plot."""
    rows = "".join(f"{a},{p}\n" for a, p in zip(np.asarray(y_true).tolist(), np.asarray(y_pred).tolist()))
    return "actual,predicted\n" + rows


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.evaluate EXERCISE MODEL_DIR PREPARED_DIR METRICS EVALUATION PREDICTIONS`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exercise")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("prepared", type=Path)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("evaluation", type=Path)
    parser.add_argument("predictions", type=Path)
    args = parser.parse_args(argv)
    x_test, y_test = load_test_arrays(args.prepared)

    load_tensorflow()
    import keras

    try:
        model = keras.models.load_model(args.model_dir / "model.keras")
    except (OSError, ValueError) as exc:
        raise StageError(f"{args.model_dir / 'model.keras'}: cannot load the model ({exc})") from exc
    metrics, report, y_pred = evaluate(model, x_test, y_test)
    write_text(args.metrics, json.dumps(metrics, indent=2) + "\n")
    write_text(args.evaluation, json.dumps(report, indent=1) + "\n")
    write_text(args.predictions, predictions_csv(y_test, y_pred))
    print(
        f"{args.exercise}: test accuracy {metrics['test_accuracy']:.2%}, test loss {metrics['test_loss']:.4f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
