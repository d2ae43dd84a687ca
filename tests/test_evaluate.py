"""Metrics against hand-computed values, and evaluate() on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from stages.evaluate import classification_report, predictions_csv


def test_classification_report_by_hand():
    # 3 classes. Actual 0: predicted 0,0,1; actual 1: 1,1; actual 2: 0.
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    report = classification_report(y_true, y_pred, num_classes=3)
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert report["accuracy"] == round(4 / 6, 6) and report["correct"] == 4 and report["samples"] == 6
    c0, c1, c2 = report["per_class"]
    assert (c0["support"], c0["correct"], c0["accuracy"], c0["precision"]) == (3, 2, round(2 / 3, 6), round(2 / 3, 6))
    assert (c1["accuracy"], c1["precision"], c1["recall"]) == (1.0, round(2 / 3, 6), 1.0)
    assert (c2["accuracy"], c2["precision"]) == (0.0, None)  # nothing predicted as 2: precision undefined


def test_lab_accuracy_is_argmax_accuracy_like_sklearn():
    from sklearn.metrics import accuracy_score, confusion_matrix

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 10, 500))
    report = classification_report(y_true, y_pred)
    assert report["accuracy"] == round(accuracy_score(y_true, y_pred), 6)
    assert report["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=range(10)).tolist()


def test_predictions_csv():
    assert predictions_csv(np.array([1, 2]), np.array([1, 0])) == "actual,predicted\n1,1\n2,0\n"


def test_evaluate_with_a_model():
    keras = pytest.importorskip("keras")
    from stages.evaluate import evaluate

    # A fixed linear model whose argmax is the index of the largest input feature.
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(10, activation="sigmoid", use_bias=False)])
    model.layers[0].set_weights([np.eye(10, dtype=np.float32) * 5])
    model.compile(loss=keras.losses.BinaryCrossentropy())
    x = np.eye(10, dtype=np.float32)[[0, 1, 2, 3, 3]]
    y = np.array([0, 1, 2, 3, 4], dtype=np.uint8)
    metrics, report, y_pred = evaluate(model, x, y)
    assert y_pred.tolist() == [0, 1, 2, 3, 3]
    assert metrics["test_accuracy"] == 0.8
    p = 1 / (1 + np.exp(-5.0))
    # Per sample: the hot output is p (or 0.5 off-target), the other nine 0.5.
    onehot = np.eye(10)[y]
    probs = np.where(x > 0, p, 0.5)
    expected = -np.mean(onehot * np.log(probs) + (1 - onehot) * np.log(1 - probs))
    assert metrics["test_loss"] == pytest.approx(expected, abs=1e-5)
    assert report["confusion_matrix"][4][3] == 1
