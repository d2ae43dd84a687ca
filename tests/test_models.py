"""The one model factory: layer shapes and the lab's parameter counts."""

from __future__ import annotations

import pytest

from stages.config import Layer, load_params
from tests.conftest import ROOT

keras = pytest.importorskip("keras")

from stages.models import compile_model, make_model, summarize  # noqa: E402


@pytest.mark.parametrize(
    "exercise, input_dim, per_layer, total",
    [
        ("baseline", 784, [615_440, 7_850], 623_290),
        ("ex1", 784, [615_440, 7_850], 623_290),
        ("ex3", 784, [615_440, 7_850], 623_290),
        ("ex5", 3072, [9_440_256, 1_573_376, 5_130], 11_018_762),
    ],
)
def test_lab_models_have_the_labs_parameter_counts(exercise, input_dim, per_layer, total):
    spec = load_params(ROOT / "params.yaml").exercises[exercise]
    summary = summarize(make_model(input_dim, spec.layers))
    assert [row["params"] for row in summary["layers"]] == per_layer
    assert summary["total_params"] == summary["trainable_params"] == total
    assert summary["non_trainable_params"] == 0
    assert [row["output_shape"] for row in summary["layers"]] == [[None, layer.units] for layer in spec.layers]
    assert {row["type"] for row in summary["layers"]} == {"Dense"}


def test_activations_come_from_params():
    model = make_model(5, [Layer(4, "relu"), Layer(3, None), Layer(10, "sigmoid")])
    names = [layer.get_config()["activation"] for layer in model.layers]
    assert names == ["relu", "linear", "sigmoid"]


def test_compile_uses_the_exercises_optimizer_learning_rate_and_loss():
    spec = load_params(ROOT / "params.yaml").exercises["ex5"]
    model = compile_model(make_model(8, spec.layers[-1:]), spec)
    assert type(model.optimizer).__name__ == "Adam"
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0001)
    assert type(model.loss).__name__ == "BinaryCrossentropy"
