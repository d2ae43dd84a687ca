"""evaluate() and the units' evidence on tiny models, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from denselab.training.evaluation import SATURATION_Z
from stages.evaluate import predictions_csv


def test_predictions_csv():
    assert predictions_csv(np.array([1, 2]), np.array([1, 0])) == "actual,predicted\n1,1\n2,0\n"


def test_evaluate_with_a_model():
    keras = pytest.importorskip("keras")
    from stages.evaluate import evaluate

    # A fixed linear model whose argmax is the index of the largest input feature.
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(10, activation="sigmoid")])
    model.layers[0].set_weights([np.eye(10, dtype=np.float32) * 5, np.zeros(10, np.float32)])
    model.compile(loss=keras.losses.BinaryCrossentropy())
    x = np.eye(10, dtype=np.float32)[[0, 1, 2, 3, 3]]
    y = np.array([0, 1, 2, 3, 4], dtype=np.uint8)
    metrics, y_pred, evidence = evaluate(model, x, y)
    probabilities = evidence["probabilities"]
    assert y_pred.tolist() == [0, 1, 2, 3, 3] and probabilities.shape == (5, 10) and int(evidence["layers"]) == 1
    assert metrics["test_accuracy"] == 0.8
    p = 1 / (1 + np.exp(-5.0))
    # Per sample: the hot output is p (or 0.5 off-target), the other nine 0.5.
    onehot = np.eye(10)[y]
    probs = np.where(x > 0, p, 0.5)
    expected = -np.mean(onehot * np.log(probs) + (1 - onehot) * np.log(1 - probs))
    assert metrics["test_loss"] == pytest.approx(expected, abs=1e-5)


def test_unit_evidence_by_hand():
    keras = pytest.importorskip("keras")
    from denselab.training.evaluation import unit_evidence

    # Hidden ReLU units: z0 = x0 - x1 (on for the first sample only), z1 = -x0 - x1 (never on: dead).
    # Output sigmoid units: 10·h0 saturates on the first sample, not on the second.
    model = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(2, activation="relu"), keras.layers.Dense(2, activation="sigmoid")]
    )
    model.layers[0].set_weights([np.array([[1.0, -1.0], [-1.0, -1.0]], np.float32), np.zeros(2, np.float32)])
    model.layers[1].set_weights([np.array([[10.0, 0.0], [0.0, 0.0]], np.float32), np.array([0.0, -6.0], np.float32)])
    x = np.array([[2.0, 1.0], [0.0, 3.0]], np.float32)
    e = unit_evidence(model, x)
    assert int(e["layers"]) == 2 and str(e["activation_0"]) == "relu" and str(e["activation_1"]) == "sigmoid"
    np.testing.assert_array_equal(e["positive_0"], [0.5, 0.0])
    assert float(e["silent_0"]) == 0.5  # the second sample switches on no hidden unit
    # Layer 2 sees the ReLU outputs (1, 0) and (0, 0): z = (10, -6) and (0, -6).
    np.testing.assert_array_equal(e["positive_1"], [0.5, 0.0])
    np.testing.assert_array_equal(e["high_1"], [0.5, 0.0])
    np.testing.assert_array_equal(e["low_1"], [0.0, 1.0])
    assert 4 < SATURATION_Z < 6 and float(e["median_abs_1"]) == 6.0
    np.testing.assert_array_equal(np.sort(e["sample_0"]), [-3.0, -3.0, -3.0, 1.0])
    np.testing.assert_array_equal(e["weights"], model.layers[0].get_weights()[0])


def test_the_labs_run_record_has_replicates_shape():
    from denselab.core.records import RunRecord
    from stages.evaluate import run_record

    history = {"epoch": [1.0, 2.0], "loss": [0.5, 0.25], "accuracy": [0.8, 0.9], "val_loss": [0.6, 0.4]}
    history["val_accuracy"] = [0.7, 0.123456789]
    record = run_record("ex3", 42, {"test_accuracy": 0.97, "test_loss": 0.1}, "float32", history)
    assert set(record) == set(RunRecord.__annotations__)
    assert record["history"] == {
        "loss": [0.5, 0.25],
        "accuracy": [0.8, 0.9],
        "val_loss": [0.6, 0.4],
        "val_accuracy": [0.7, 0.123457],  # six significant digits, as replicate keeps them
    }
    assert (record["seed"], record["test_accuracy"], record["precision"]) == (42, 0.97, "float32")
