"""Stage `evaluate@<exercise>`: test accuracy as the lab computes it, test loss, and the evidence to explain them.

    python -m stages.evaluate --exercise ex3 --model-dir data/models/ex3 --prepared data/prepared/mnist_scaled \
        --metrics reports/metrics/ex3.json --predictions reports/predictions/ex3.csv --evidence data/evidence/ex3.npz

The only stage of the evaluation that needs TensorFlow: it predicts the test set once and runs it
through every layer once. What it keeps (`--evidence`): every test sample's output probabilities,
per layer and unit how often its pre-activation is positive or saturates a sigmoid, a sample of the
pre-activations, and the first layer's weights of `WEIGHT_MAPS` units. `explain` turns that into the
classification report, the mistakes and the hidden-unit diagnostics, without TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from stages.cli import StageError, atomic_path, load_tensorflow, stage_main, write_text
from stages.config import NUM_CLASSES
from stages.layout import MODEL_FILE, PREPARED

PREDICT_BATCH = 4096  # prediction needs no gradients: big batches mean fewer Python round trips
# A sigmoid whose output is below 0.01 or above 0.99 has a gradient under 1% of its peak: saturated.
SATURATION_Z = math.log(99)
WEIGHT_MAPS = 16  # first-layer units whose incoming weights the report draws
DISTRIBUTION_SAMPLE = 20_000  # pre-activations kept per layer for the distribution plots
SAMPLE_SEED = 0


def evaluate(model, x_test: np.ndarray, y_test: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """Predict the test set once; return (metrics, output probabilities, predicted classes)."""
    import keras

    probabilities = model.predict(x_test, batch_size=PREDICT_BATCH, verbose=0)
    y_pred = np.argmax(probabilities, axis=-1)  # the lab: np.argmax(model.predict(X_test), axis=-1)
    loss = float(model.loss(keras.utils.to_categorical(np.asarray(y_test).reshape(-1), NUM_CLASSES), probabilities))
    accuracy = float(np.mean(y_pred == np.asarray(y_test).reshape(-1))) if len(y_pred) else 0.0
    metrics = {"test_accuracy": round(accuracy, 6), "test_loss": round(loss, 6)}
    return metrics, probabilities.astype(np.float32), y_pred


def unit_evidence(model, x: np.ndarray) -> dict[str, np.ndarray]:
    """Per layer, what its units do on `x`: the raw material of the hidden-unit diagnostics.

    Keras computes every layer's output (a functional view of the model, public API); the
    pre-activations z = a·W + b are recomputed from the previous layer's output and the layer's
    weights. For layer i: `activation_i` (its name), `positive_i`, `low_i`, `high_i` (per unit, the
    share of samples with z > 0, z < -SATURATION_Z, z > SATURATION_Z), `median_abs_i` (median |z|),
    `silent_i` (the share of samples for which no unit of the layer has z > 0),
    `sample_i` (up to DISTRIBUTION_SAMPLE values of z, drawn with a fixed seed), and `weights`: the
    first layer's incoming weights of its first WEIGHT_MAPS units (features × units).
    """
    import keras

    layers = model.layers
    outputs = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in layers]).predict(
        x, batch_size=PREDICT_BATCH, verbose=0
    )
    if len(layers) == 1:
        outputs = [outputs]
    rng = np.random.default_rng(SAMPLE_SEED)
    evidence: dict[str, np.ndarray] = {"layers": np.array(len(layers))}
    previous = np.asarray(x, dtype=np.float32)
    for i, (layer, output) in enumerate(zip(layers, outputs)):
        weights = layer.get_weights()
        if len(weights) != 2:
            raise StageError(f"layer {layer.name}: expected a Dense layer with a kernel and a bias")
        kernel, bias = (np.asarray(w, dtype=np.float32) for w in weights)
        z = previous @ kernel + bias
        evidence |= {
            f"activation_{i}": np.array(str(layer.get_config().get("activation") or "linear")),
            f"positive_{i}": (z > 0).mean(axis=0, dtype=np.float64).astype(np.float32),
            f"low_{i}": (z < -SATURATION_Z).mean(axis=0, dtype=np.float64).astype(np.float32),
            f"high_{i}": (z > SATURATION_Z).mean(axis=0, dtype=np.float64).astype(np.float32),
            f"median_abs_{i}": np.array(np.median(np.abs(z)) if z.size else 0.0, dtype=np.float32),
            f"silent_{i}": np.array(np.mean(~(z > 0).any(axis=1)) if len(z) else 0.0, dtype=np.float32),
            f"sample_{i}": rng.choice(z.reshape(-1), size=min(DISTRIBUTION_SAMPLE, z.size), replace=False)
            if z.size
            else np.zeros(0, np.float32),
        }
        if i == 0:
            evidence["weights"] = kernel[:, :WEIGHT_MAPS].copy()
        previous = np.asarray(output, dtype=np.float32)
    return evidence


def load_test_arrays(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The prepared test arrays of `folder`: x memory-mapped, the labels in memory."""
    try:
        return np.load(folder / PREPARED["x_test"], mmap_mode="r"), np.load(folder / PREPARED["y_test"])
    except (OSError, ValueError) as exc:
        raise StageError(f"{folder}: cannot read the test arrays ({exc})") from exc


def predictions_csv(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    """Per-sample actual/predicted classes, the input of DVC's confusion-matrix plot."""
    rows = "".join(f"{a},{p}\n" for a, p in zip(np.asarray(y_true).tolist(), np.asarray(y_pred).tolist()))
    return "actual,predicted\n" + rows


def write_evidence(path: Path, probabilities: np.ndarray, evidence: dict[str, np.ndarray]) -> None:
    """The evidence as one .npz (no pickles: every array is plain numbers or text)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        arrays: dict[str, Any] = {"probabilities": probabilities, **evidence}
        np.savez(f, **arrays)


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.evaluate --exercise NAME --model-dir DIR --prepared DIR --metrics FILE.json
    --predictions FILE.csv --evidence FILE.npz`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", required=True)
    parser.add_argument("--model-dir", type=Path, required=True, help="the folder train saved model.keras in")
    parser.add_argument("--prepared", type=Path, required=True, help="the folder of x_test.npy and y_test.npy")
    parser.add_argument("--metrics", type=Path, required=True, help="test accuracy and loss (a DVC metrics file)")
    parser.add_argument("--predictions", type=Path, required=True, help="actual and predicted class per sample")
    parser.add_argument("--evidence", type=Path, required=True, help="probabilities and per-unit statistics (.npz)")
    args = parser.parse_args(argv)
    x_test, y_test = load_test_arrays(args.prepared)

    load_tensorflow()
    import keras

    try:
        model = keras.models.load_model(args.model_dir / MODEL_FILE)
    except (OSError, ValueError) as exc:
        raise StageError(f"{args.model_dir / MODEL_FILE}: cannot load the model ({exc})") from exc
    metrics, probabilities, y_pred = evaluate(model, x_test, y_test)
    write_evidence(args.evidence, probabilities, unit_evidence(model, x_test))
    write_text(args.metrics, json.dumps(metrics, indent=2) + "\n")
    write_text(args.predictions, predictions_csv(y_test, y_pred))
    print(
        f"{args.exercise}: test accuracy {metrics['test_accuracy']:.2%}, test loss {metrics['test_loss']:.4f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
