"""The in-graph training loop computes what Keras' own `fit` computes on the same batches, and where the
Keras it leans on lacks something, training falls back to `fit` itself and finishes."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from denselab.core.config import InputVariant, Layer, load_params
from denselab.training.feed import epoch_order, split_point
from stages.prepare import prepare
from tests.conftest import ROOT
from tests.fixtures import mnist_arrays

keras = pytest.importorskip("keras")

from denselab.training import loop, models
from denselab.training.fit import fit_exercise, seed_everything
from denselab.training.loop import FitSettings, fit, keras_fit
from denselab.training.models import compile_model, make_model


@pytest.fixture(scope="module")
def data():
    arrays = prepare(mnist_arrays(n_train=230), InputVariant(dataset="mnist", divide_by_255=True))
    return arrays["x_train"], arrays["y_train"]


def _model(spec, features, seed=5):
    seed_everything(seed)
    return compile_model(make_model(features, [Layer(32, "relu"), Layer(10, "sigmoid")]), spec)


@pytest.mark.parametrize("batch_size", [16, 50])  # 184 training rows: a short last batch both times
def test_loop_matches_keras_fit_on_the_same_batches(data, batch_size):
    x, y = data
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], batch_size=batch_size, epochs=3)
    split = split_point(len(x), spec.validation_split)

    ours = _model(spec, x.shape[1])
    history, seconds = fit(ours, x, y, FitSettings(batch_size, spec.epochs, spec.validation_split, seed=9, verbose=0))

    # The fallback path: Keras' fit, one epoch per call, fed the rows in the loop's order (held-out rows last).
    keras_model = _model(spec, x.shape[1])
    expected, keras_seconds = keras_fit(
        keras_model, x, y, FitSettings(batch_size, spec.epochs, spec.validation_split, seed=9, verbose=0)
    )
    assert len(keras_seconds) == spec.epochs

    assert len(seconds) == spec.epochs and set(history) == set(expected) == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
    }
    for name in expected:
        np.testing.assert_allclose(history[name], expected[name], rtol=1e-5, err_msg=name)
    assert (
        int(ours.optimizer.iterations) == int(keras_model.optimizer.iterations) == spec.epochs * -(-split // batch_size)
    )
    for a, b in zip(ours.get_weights(), keras_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_keras_fit_feeds_the_loops_order():
    """keras_fit's rows, epoch by epoch, are the loop's: epoch_order over the training rows, held-out rows last."""
    seen = []

    class Recorder:
        stop_training = False

        def fit(self, x, y, **kwargs):
            seen.append((x[:, 0].copy(), kwargs["shuffle"], kwargs["validation_split"]))
            return type("H", (), {"history": {"loss": [0.5]}})()

    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    keras_fit(Recorder(), x, np.zeros((10, 10), np.float32), FitSettings(4, 2, 0.2, seed=3, verbose=0))
    for epoch, (rows, shuffle, split) in enumerate(seen):
        assert rows.tolist() == [*(2 * epoch_order(8, 4, 3, epoch)).tolist(), 16, 18] and not shuffle and split == 0.2


def test_training_falls_back_to_keras_fit_when_an_internal_is_missing(data, capsys, monkeypatch):
    x, y = data
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], batch_size=32, epochs=2)
    model = _model(spec, x.shape[1])
    assert loop.fast_path_missing(model) is None
    # A Keras without one of the methods the loop calls (Keras' own fit has its own way to them).
    monkeypatch.setattr(type(model), "get_metrics_result", None)
    assert loop.fast_path_missing(model) == "keras.Model.get_metrics_result is missing"
    monkeypatch.undo()
    # Another backend: the loop compiles TensorFlow graphs, Keras' fit runs on any backend.
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    model, history, seconds = fit_exercise(x, y, spec, seed=1, verbose=0)
    assert (
        "fast training loop unavailable (Keras runs on jax, the loop compiles TensorFlow graphs)"
        in capsys.readouterr().err
    )
    assert len(history["val_accuracy"]) == 2 and len(seconds) == 2 and int(model.optimizer.iterations) == 2 * 6


def test_training_falls_back_to_keras_adam_when_fused_adam_cannot_work(data, capsys, monkeypatch):
    x, y = data
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], batch_size=32, epochs=2)
    fused, _, _ = fit_exercise(x, y, spec, seed=1, verbose=0)
    assert type(fused.optimizer) is models.FusedAdam
    monkeypatch.setattr(models.FusedAdam, "_get_variable_index", None)
    plain, history, _ = fit_exercise(x, y, spec, seed=1, verbose=0)
    assert "fused Adam unavailable (the optimizer's _get_variable_index is missing)" in capsys.readouterr().err
    assert type(plain.optimizer) is keras.optimizers.Adam and len(history["loss"]) == 2
    for a, b in zip(fused.get_weights(), plain.get_weights()):  # the same arithmetic
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_each_epoch_reports_its_progress(data, capsys):
    x, y = data
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], epochs=3)
    seen = []
    on_epoch = lambda history, seconds: seen.append((len(history["loss"]), len(seconds)))
    fit(_model(spec, x.shape[1]), x, y, FitSettings(64, 3, spec.validation_split, seed=1, verbose=2, on_epoch=on_epoch))
    assert seen == [(1, 1), (2, 2), (3, 3)]
    lines = capsys.readouterr().out.splitlines()
    assert all(re.match(r"Epoch \d/3 - [\d.]+s - \d+s left - loss: ", line) for line in lines), lines
    assert lines[-1].split(" - ")[2] == "0s left"


def test_loop_stops_when_the_loss_is_not_finite(data, capsys):
    x, y = data
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], epochs=3)
    y = y.copy()
    y[7, 0] = np.nan  # one bad label poisons the first epoch's loss
    history, seconds = fit(
        _model(spec, x.shape[1]), x, y, FitSettings(32, spec.epochs, spec.validation_split, seed=1, verbose=0)
    )
    assert history == {} and seconds == []
    assert "invalid loss" in capsys.readouterr().err


def test_one_line_per_epoch(data, capsys):
    x, y = data
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], epochs=2)
    fit(_model(spec, x.shape[1]), x, y, FitSettings(64, spec.epochs, spec.validation_split, seed=1, verbose=2))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"]
    assert all("val_accuracy: " in line for line in lines) and "\r" not in "".join(lines)


def test_too_few_rows_to_train_on_is_an_error(data):
    x, y = data
    spec = load_params(ROOT / "params.yaml").exercises["ex3"]
    with pytest.raises(ValueError, match="no rows left to train on: 1 rows"):
        fit(_model(spec, x.shape[1]), x[:1], y[:1], FitSettings(32, 1, spec.validation_split, seed=1, verbose=0))


def test_the_training_step_compiles_as_the_fidelity_benchmark_tested_it(data):
    """The fidelity benchmark (benchmarks/fidelity.py, README "Fidelity") showed DenseLab's runs equivalent to the
    lab's with this step: a graph without XLA (as the lab's `fit` runs on a CPU; on a GPU it compiles with XLA, which
    `xla: true` selects), after op determinism is on. A change here needs the benchmark run again."""
    import tensorflow as tf

    x, y = data
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], epochs=1)
    model = _model(spec, x.shape[1])
    loop.build_state(model, x, y)
    for step in (model.train_step, model.test_step):
        compiled = loop._batch_loop(model, step, spec.batch_size, x.shape[1], y.shape[1])
        concrete = compiled.get_concrete_function()
        # XLA marks the function it compiles, or a call inside it (a step compiled on its own), with this attribute.
        assert "_XlaMustCompile" not in concrete.function_def.attr
        assert "_XlaMustCompile" not in str(concrete.graph.as_graph_def())
    # Op determinism on (seed_everything turned it on): TensorFlow then refuses a random op without a seed.
    tf.random.set_seed(None)
    try:
        with pytest.raises(RuntimeError, match="determinism is enabled"):
            tf.random.normal((1,))
    finally:
        seed_everything(5)


def test_xla_compiles_each_step_and_trains_reproducibly(data):
    """`xla: true` (the lab's `fit` compiles its step with XLA on a GPU): each step is marked for XLA, and two runs of one
    seed give identical numbers, as without it."""
    x, y = data
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], batch_size=32, epochs=2, xla=True)
    model = _model(spec, x.shape[1])
    loop.build_state(model, x, y)
    compiled = loop._batch_loop(model, model.train_step, 32, x.shape[1], y.shape[1], xla=True)
    assert "_XlaMustCompile" in str(compiled.get_concrete_function().graph.as_graph_def())
    runs = []
    for _ in range(2):
        model, history, _ = fit_exercise(x, y, spec, seed=3, verbose=0)
        runs.append((history, [w.copy() for w in model.get_weights()]))
    (first, first_weights), (second, second_weights) = runs
    assert first == second and len(first["loss"]) == 2
    for a, b in zip(first_weights, second_weights):
        np.testing.assert_array_equal(a, b)
    plain, _ = fit_exercise(x, y, dataclasses.replace(spec, xla=False), seed=3, verbose=0)[1:]
    assert plain["loss"] != first["loss"]  # XLA fuses and rounds otherwise: the switch changes what runs
