"""What a trained model does on the test set: the lab's test accuracy and loss, and the evidence kept to explain
them (output probabilities, what every unit does). The evaluate stage writes the evidence, explain reads it:
both sides of its file are here. Keras is imported by the functions that need a model, not by this module."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from denselab.core.cli import StageError
from denselab.core.exercise import NUM_CLASSES
from denselab.core.files import atomic_path

PREDICT_BATCH = 4096  # prediction needs no gradients: big batches mean fewer Python round trips
# A sigmoid whose output is below 0.01 or above 0.99 has a gradient under 1% of its peak: saturated.
SATURATION_Z = math.log(99)
WEIGHT_MAPS = 16  # first-layer units whose incoming weights the report draws
DISTRIBUTION_SAMPLE = 20_000  # pre-activations kept per layer for the distribution plots
SAMPLE_SEED = 0


def predict(model, x_test: np.ndarray, y_test: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """Predict the test set once; return (metrics, output probabilities, predicted classes). The test accuracy
    is the lab's: the share of test samples whose most probable class is their label."""
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


def write_evidence(path: Path, evidence: dict[str, np.ndarray]) -> None:
    """The evidence (the output `probabilities` and `unit_evidence`'s arrays) as one .npz: no pickles, every
    array is plain numbers or text."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        arrays: dict[str, Any] = dict(evidence)
        np.savez(f, **arrays)


def read_evidence(path: Path) -> dict[str, np.ndarray]:
    """What evaluate kept, as plain arrays (no pickles allowed)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise StageError(f"{path}: cannot read the evaluation's evidence ({exc}); run `dvc repro` to evaluate") from exc
