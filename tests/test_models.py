"""The one model factory: layer shapes and the lab's parameter counts."""

from __future__ import annotations

import pytest

from denselab.core.config import Layer, load_params
from tests.conftest import ROOT

keras = pytest.importorskip("keras")

from denselab.training.models import compile_model, make_model, summarize


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
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0001)
    assert type(model.loss).__name__ == "BinaryCrossentropy"


def test_fused_adam_matches_keras_adam():
    import numpy as np

    from denselab.training.models import FusedAdam

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 64)]
    weights = []
    for optimizer in (keras.optimizers.Adam(0.01), FusedAdam(0.01)):
        keras.utils.set_random_seed(0)
        model = make_model(6, [Layer(8, "relu"), Layer(10, "sigmoid")])
        model.compile(optimizer=optimizer, loss=keras.losses.BinaryCrossentropy())
        model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_saved_model_is_plain_keras(tmp_path):
    import json
    import zipfile

    import numpy as np

    from denselab.training.models import portable

    spec = load_params(ROOT / "params.yaml").exercises["ex3"]
    model = compile_model(make_model(4, spec.layers[-1:]), spec)
    model.fit(np.zeros((8, 4), "float32"), np.zeros((8, 10), "float32"), verbose=0)
    portable(model).save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        config = json.loads(z.read("config.json"))
    optimizer = config["compile_config"]["optimizer"]
    assert (optimizer["module"], optimizer["class_name"]) == ("keras.optimizers", "Adam")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.01)
    assert int(loaded.optimizer.iterations) == 1


# --- precision ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cpuinfo, expected",
    [
        ("flags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n", "the CPU's avx512_bf16"),
        ("flags\t\t: fpu sse avx512f amx_bf16 amx_tile\n", "the CPU's amx_bf16"),
        ("flags\t\t: fpu sse avx512f avx512bw avx512_vnni\n", None),  # this workplace's KVM guests
    ],
)
def test_native_bfloat16_reads_the_cpu_flags(tmp_path, monkeypatch, cpuinfo, expected):
    from denselab.training import models

    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(models, "CPUINFO", tmp_path / "cpuinfo")
    assert models.native_bfloat16() == expected  # no GPU on the test machines
    monkeypatch.setattr(models, "CPUINFO", tmp_path / "absent")
    assert models.native_bfloat16() is None


def test_mixed_bfloat16_falls_back_to_float32_without_native_support(monkeypatch, capsys):
    from denselab.training import models

    monkeypatch.setattr(models, "native_bfloat16", lambda: None)
    assert models.resolve_precision("mixed_bfloat16") == "float32"
    assert "mixed_bfloat16 asked, but this machine computes bfloat16 only by emulation" in capsys.readouterr().err
    assert models.resolve_precision("float32") == "float32"
    monkeypatch.setattr(models, "native_bfloat16", lambda: "the CPU's avx512_bf16")
    assert models.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"


def test_mixed_bfloat16_model_multiplies_in_bfloat16_and_answers_in_float32():
    import numpy as np

    spec = load_params(ROOT / "params.yaml").exercises["ex5"]
    model = make_model(3072, spec.layers, "mixed_bfloat16")
    assert [layer.dtype_policy.name for layer in model.layers] == ["mixed_bfloat16", "mixed_bfloat16", "float32"]
    assert all(w.dtype == "float32" for w in model.weights)  # float32 master weights
    assert summarize(model)["precision"] == "mixed_bfloat16"
    assert model(np.zeros((2, 3072), dtype="float32")).dtype == "float32"


def test_a_model_whose_optimizer_cannot_change_class_saves_with_fused_adam(tmp_path, monkeypatch, capsys):
    """portable()'s class swap is a Python-level trick: where it is refused, the model keeps FusedAdam (registered
    with Keras, so it still saves and loads with denselab.training.models imported)."""
    import numpy as np

    from denselab.training import models

    class OtherLayout:  # a class the optimizer's layout cannot become: the assignment raises TypeError
        __slots__ = ("x",)

    spec = load_params(ROOT / "params.yaml").exercises["ex3"]
    model = compile_model(make_model(4, spec.layers[-1:]), spec)
    model.fit(np.zeros((8, 4), "float32"), np.zeros((8, 10), "float32"), verbose=0)
    monkeypatch.setattr(models.keras.optimizers, "Adam", OtherLayout)
    models.portable(model)
    monkeypatch.undo()
    assert type(model.optimizer) is models.FusedAdam
    assert "saving with DenseLab's FusedAdam" in capsys.readouterr().err
    model.save(tmp_path / "m.keras")
    assert type(keras.models.load_model(tmp_path / "m.keras").optimizer) is models.FusedAdam


def test_fused_adams_update_is_the_adam_the_fidelity_benchmark_tested():
    """The optimizer's update, pinned to Adam's formula with Keras' defaults (what the lab's `Adam(learning_rate)`
    gets and what the fidelity benchmark showed equivalent), worked out here in float64 for two steps."""
    import numpy as np
    import tensorflow as tf

    from denselab.training.models import FusedAdam

    optimizer = FusedAdam(learning_rate=0.01)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon, optimizer.amsgrad) == (0.9, 0.999, 1e-7, False)
    start = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    weight = tf.Variable(start)
    gradients = [np.array([0.1, -0.2, 0.3], dtype=np.float32), np.array([-0.4, 0.05, 0.3], dtype=np.float32)]
    w, m, v = start.astype(np.float64), np.zeros(3), np.zeros(3)
    for t, g in enumerate(gradients, start=1):
        optimizer.apply_gradients([(tf.constant(g), weight)])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
        step = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        w = w - step * m / (np.sqrt(v) + 1e-7)
        np.testing.assert_allclose(weight.numpy(), w, rtol=1e-6, err_msg=f"step {t}")
