"""The in-graph training loop computes what Keras' own `fit` computes on the same batches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stages.config import InputVariant, Layer, load_params
from stages.feed import epoch_order, split_point
from stages.prepare import prepare
from tests.conftest import ROOT
from tests.fixtures import mnist_arrays

keras = pytest.importorskip("keras")

from stages.loop import fit  # noqa: E402
from stages.models import compile_model, make_model  # noqa: E402
from stages.train import seed_everything  # noqa: E402


@pytest.fixture(scope="module")
def data():
    arrays = prepare(mnist_arrays(n_train=230), InputVariant("mnist", divide_by_255=True))
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
    history, seconds = fit(ours, x, y, batch_size, spec.epochs, spec.validation_split, seed=9, verbose=0)

    # Keras' fit, one epoch per call, fed the rows in the loop's order; the held-out rows stay last.
    keras_model = _model(spec, x.shape[1])
    expected: dict[str, list[float]] = {}
    for epoch in range(spec.epochs):
        order = epoch_order(split, batch_size, seed=9, epoch=epoch)
        logs = keras_model.fit(
            np.concatenate([x[:split][order], x[split:]]),
            np.concatenate([y[:split][order], y[split:]]),
            batch_size=batch_size, epochs=1, validation_split=spec.validation_split, shuffle=False, verbose=0,
        ).history
        for name, values in logs.items():
            expected.setdefault(name, []).extend(values)

    assert len(seconds) == spec.epochs and set(history) == set(expected) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for name in expected:
        np.testing.assert_allclose(history[name], expected[name], rtol=1e-5, err_msg=name)
    assert int(ours.optimizer.iterations) == int(keras_model.optimizer.iterations) == spec.epochs * -(-split // batch_size)
    for a, b in zip(ours.get_weights(), keras_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_loop_stops_when_the_loss_is_not_finite(data, capsys):
    x, y = data
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], epochs=3)
    y = y.copy()
    y[7, 0] = np.nan  # one bad label poisons the first epoch's loss
    history, seconds = fit(_model(spec, x.shape[1]), x, y, 32, spec.epochs, spec.validation_split, seed=1, verbose=0)
    assert history == {} and seconds == []
    assert "invalid loss" in capsys.readouterr().err


def test_one_line_per_epoch(data, capsys):
    x, y = data
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], epochs=2)
    fit(_model(spec, x.shape[1]), x, y, 64, spec.epochs, spec.validation_split, seed=1, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"]
    assert all("val_accuracy: " in line for line in lines) and "\r" not in "".join(lines)


def test_too_few_rows_to_train_on_is_an_error(data):
    x, y = data
    spec = load_params(ROOT / "params.yaml").exercises["ex3"]
    with pytest.raises(ValueError, match="no rows left to train on: 1 rows"):
        fit(_model(spec, x.shape[1]), x[:1], y[:1], 32, 1, spec.validation_split, seed=1, verbose=0)
