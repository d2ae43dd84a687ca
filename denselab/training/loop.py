"""Keras' `fit`, with Python and tf.data taken out of the per-batch path. Imports TensorFlow.

`model.fit` fetches every batch through tf.data and Python. On two cores the feeding
thread competes with the matrix products, and epochs swing between 1.2 and 2.6 s on
MNIST. Here Python gathers a chunk of whole batches from the arrays while TensorFlow is
idle, then one compiled call runs Keras' own `train_step` on each batch of the chunk in
a graph loop. The arithmetic is `fit`'s: the same steps on the same batches, the same
loss and metric trackers; epochs, reshuffling, validation and history as `fit` has them.

The loop leans on Keras methods meant for subclasses (`train_step`, `test_step`, `compute_loss`,
`compute_metrics`, `get_metrics_result`) and on the TensorFlow backend. `fast_path_missing` checks
them before training; where one is missing, `train_epochs` runs Keras' own `model.fit` on the same
batches in the same order (`keras_fit`) and says so in one line.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from denselab.training.feed import VALIDATION_BATCH, chunk_rows, chunks, epoch_order, read_ahead, split_point

# What the fast loop calls on a compiled Keras model.
MODEL_METHODS = ("train_step", "test_step", "compute_loss", "compute_metrics", "get_metrics_result", "reset_metrics")

# Called after every epoch with the history so far (and the epoch's seconds): live progress.
EpochCallback = Callable[[dict, list], None] | None


@dataclass(frozen=True)
class FitSettings:
    """How to train, as `model.fit(x, y, batch_size, epochs, validation_split=...)` takes it, plus the seed that
    orders the rows of each epoch, the log's verbosity (0: silent, 2: a line per epoch), a progress callback and
    whether each step is compiled with XLA (as `fit` compiles it under Keras' default `jit_compile="auto"`)."""

    batch_size: int
    epochs: int
    validation_split: float
    seed: int
    verbose: int = 2
    on_epoch: EpochCallback = None
    xla: bool = False


def fast_path_missing(model) -> str | None:
    """Why the fast loop cannot run with this Keras, in a few words; None when everything it needs is there."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        return f"Keras runs on {backend}, the loop compiles TensorFlow graphs"
    for name in MODEL_METHODS:
        if not callable(getattr(model, name, None)):
            return f"keras.Model.{name} is missing"
    for name in ("build", "finalize_variable_values"):
        if not callable(getattr(model.optimizer, name, None)):
            return f"the optimizer's {name} is missing"
    return None


def _batch_loop(model, step: Callable, batch_size: int, features: int, classes: int, xla: bool = False) -> Callable:
    """A compiled function running `step((x, y))` on consecutive batches of a chunk; returns the model's metrics.
    With `xla`, each step is compiled by XLA on its own, as `fit` compiles its step (the whole loop under XLA
    recompiles for every chunk: tens of seconds an epoch)."""
    if xla:
        step = tf.function(step, jit_compile=True, autograph=False)

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


def fit(model, x: np.ndarray, y: np.ndarray, settings: FitSettings) -> tuple[dict[str, list[float]], list[float]]:
    """Train a compiled model as `model.fit(x, y, batch_size, epochs, validation_split=...)` does.

    Returns the history (loss and metrics per epoch, then `val_`-prefixed) and each
    epoch's wall time. Rows are reshuffled each epoch by `feed.epoch_order(seed)`.
    Training stops early, like `TerminateOnNaN`, when the loss stops being finite.
    """
    s = settings
    split = _split(x, s.validation_split)
    x_train, y_train, x_val, y_val = x[:split], y[:split], x[split:], y[split:]
    features, classes = x.shape[1], y.shape[1]
    read_ahead(x, y)
    build_state(model, x_train, y_train)
    train_batches = _batch_loop(model, model.train_step, s.batch_size, features, classes, s.xla)
    test_batches = _batch_loop(model, model.test_step, VALIDATION_BATCH, features, classes, s.xla)
    row_bytes = x.itemsize * features
    rows, val_rows = chunk_rows(s.batch_size, row_bytes), chunk_rows(VALIDATION_BATCH, row_bytes)
    history: dict[str, list[float]] = {}
    seconds: list[float] = []
    for epoch in range(s.epochs):
        start = time.perf_counter()
        model.reset_metrics()
        for x_chunk, y_chunk in chunks(x_train, y_train, epoch_order(split, s.batch_size, s.seed, epoch), rows):
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
        _epoch_done(history, seconds, logs, time.perf_counter() - start, s)
    model.optimizer.finalize_variable_values(model.trainable_weights)
    return history, seconds


def _split(x: np.ndarray, validation_split: float) -> int:
    split = split_point(len(x), validation_split)
    if split == 0:
        raise ValueError(f"no rows left to train on: {len(x)} rows, validation_split {validation_split}")
    return split


def _epoch_done(history: dict, seconds: list, logs: dict, took: float, settings: FitSettings) -> None:
    """Record an epoch, print its line (with the time left at the mean pace so far), report progress."""
    seconds.append(took)
    for name, value in logs.items():
        history.setdefault(name, []).append(float(value))
    if settings.verbose:
        done = len(seconds)
        left = (settings.epochs - done) * sum(seconds) / done
        figures = " - ".join(f"{name}: {value:.4f}" for name, value in logs.items())
        print(f"Epoch {done}/{settings.epochs} - {took:.2f}s - {left:.0f}s left - {figures}", flush=True)
    if settings.on_epoch:
        settings.on_epoch(history, seconds)


def keras_fit(model, x: np.ndarray, y: np.ndarray, settings: FitSettings) -> tuple[dict[str, list[float]], list[float]]:
    """What `fit` computes, by Keras' own `model.fit`: one call per epoch, on the rows in the order the
    fast loop uses (`feed.epoch_order`), the held-out rows last. Slower; needs only public Keras API."""
    import keras

    s = settings
    split = _split(x, s.validation_split)
    history: dict[str, list[float]] = {}
    seconds: list[float] = []
    for epoch in range(s.epochs):
        start = time.perf_counter()
        order = epoch_order(split, s.batch_size, s.seed, epoch)
        logs = model.fit(
            np.concatenate([x[:split][order], x[split:]]),
            np.concatenate([y[:split][order], y[split:]]),
            batch_size=s.batch_size,
            epochs=1,
            validation_split=s.validation_split,
            shuffle=False,
            verbose=0,
            callbacks=[keras.callbacks.TerminateOnNaN()],
        ).history
        if model.stop_training or not all(math.isfinite(v[-1]) for v in logs.values()):
            print(f"Epoch {epoch + 1}: invalid loss, terminating training", file=sys.stderr, flush=True)
            return history, seconds
        _epoch_done(history, seconds, {k: v[-1] for k, v in logs.items()}, time.perf_counter() - start, s)
    return history, seconds


def train_epochs(
    model, x: np.ndarray, y: np.ndarray, settings: FitSettings
) -> tuple[dict[str, list[float]], list[float]]:
    """Train with the fast loop where this Keras has what it needs, else with `keras_fit`, saying why."""
    missing = fast_path_missing(model)
    if missing:
        print(
            f"fast training loop unavailable ({missing}): training with Keras' model.fit, "
            "on the same batches in the same order",
            file=sys.stderr,
            flush=True,
        )
        return keras_fit(model, x, y, settings)
    return fit(model, x, y, settings)
