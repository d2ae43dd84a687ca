"""Keras' `fit`, with Python and tf.data taken out of the per-batch path. Imports TensorFlow.

`model.fit` fetches every batch through tf.data and Python. On two cores the feeding
thread competes with the matrix products, and epochs swing between 1.2 and 2.6 s on
MNIST. Here Python gathers a chunk of whole batches from the arrays while TensorFlow is
idle, then one compiled call runs Keras' own `train_step` on each batch of the chunk in
a graph loop. The arithmetic is `fit`'s: the same steps on the same batches, the same
loss and metric trackers; epochs, reshuffling, validation and history as `fit` has them.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Callable

import numpy as np
import tensorflow as tf

from stages.feed import chunk_rows, chunks, epoch_order, read_ahead, split_point

# Validation needs no gradients: large batches give the same mean with fewer steps.
VALIDATION_BATCH = 2048


def _batch_loop(model, step: Callable, batch_size: int, features: int, classes: int) -> Callable:
    """A compiled function running `step((x, y))` on consecutive batches of a chunk; returns the model's metrics."""

    def run(x, y):
        steps = (tf.shape(x)[0] + batch_size - 1) // batch_size

        def body(i):
            start = i * batch_size
            step((x[start : start + batch_size], y[start : start + batch_size]))
            return i + 1

        # One batch after the other: each step reads the weights the previous one wrote.
        tf.while_loop(lambda i: i < steps, body, [tf.constant(0)], parallel_iterations=1)
        return model.get_metrics_result()

    signature = [tf.TensorSpec((None, features), tf.float32), tf.TensorSpec((None, classes), tf.float32)]
    return tf.function(run, input_signature=signature, autograph=False)


def build_state(model, x: np.ndarray, y: np.ndarray) -> None:
    """Create the optimizer's and metrics' variables from one sample, so no compiled loop has to."""
    sample_x, sample_y = tf.constant(x[:1]), tf.constant(y[:1])
    y_pred = model(sample_x, training=False)
    model.compute_loss(x=sample_x, y=sample_y, y_pred=y_pred)
    model.compute_metrics(sample_x, sample_y, y_pred, sample_weight=None)
    model.optimizer.build(model.trainable_variables)
    model.reset_metrics()


def _results(metrics: dict) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()}


def fit(
    model,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    epochs: int,
    validation_split: float,
    seed: int,
    verbose: int = 2,
) -> tuple[dict[str, list[float]], list[float]]:
    """Train a compiled model as `model.fit(x, y, batch_size, epochs, validation_split=...)` does.

    Returns the history (loss and metrics per epoch, then `val_`-prefixed) and each
    epoch's wall time. Rows are reshuffled each epoch by `feed.epoch_order(seed)`.
    Training stops early, like `TerminateOnNaN`, when the loss stops being finite.
    """
    split = split_point(len(x), validation_split)
    if split == 0:
        raise ValueError(f"no rows left to train on: {len(x)} rows, validation_split {validation_split}")
    x_train, y_train, x_val, y_val = x[:split], y[:split], x[split:], y[split:]
    features, classes = x.shape[1], y.shape[1]
    read_ahead(x, y)
    build_state(model, x_train, y_train)
    train_batches = _batch_loop(model, model.train_step, batch_size, features, classes)
    test_batches = _batch_loop(model, model.test_step, VALIDATION_BATCH, features, classes)
    row_bytes = x.itemsize * features
    rows, val_rows = chunk_rows(batch_size, row_bytes), chunk_rows(VALIDATION_BATCH, row_bytes)
    history: dict[str, list[float]] = {}
    seconds: list[float] = []
    for epoch in range(epochs):
        start = time.perf_counter()
        model.reset_metrics()
        for x_chunk, y_chunk in chunks(x_train, y_train, epoch_order(split, batch_size, seed, epoch), rows):
            logs = train_batches(x_chunk, y_chunk)
            if not math.isfinite(float(logs["loss"])):
                print(f"Epoch {epoch + 1}: invalid loss, terminating training", file=sys.stderr, flush=True)
                return history, seconds
        logs = _results(logs)
        if len(x_val):
            model.reset_metrics()
            for x_chunk, y_chunk in chunks(x_val, y_val, np.arange(len(x_val)), val_rows):
                val_logs = test_batches(x_chunk, y_chunk)
            logs.update({f"val_{name}": value for name, value in _results(val_logs).items()})
        seconds.append(time.perf_counter() - start)
        for name, value in logs.items():
            history.setdefault(name, []).append(value)
        if verbose:
            figures = " - ".join(f"{name}: {value:.4f}" for name, value in logs.items())
            print(f"Epoch {epoch + 1}/{epochs} - {seconds[-1]:.2f}s - {figures}", flush=True)
    model.optimizer.finalize_variable_values(model.trainable_weights)
    return history, seconds
