"""The one model factory every exercise uses, and its compile step. Imports Keras (TensorFlow)."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from denselab.core.exercise import Exercise, Layer


@keras.saving.register_keras_serializable(package="denselab")
class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam, with each update applied by TensorFlow's fused ApplyAdam kernel.

    Keras 3 updates the two moments and the weights with about ten separate element-wise
    passes over every weight; for ex5's eleven million weights that is a third of an
    epoch. ApplyAdam does the same arithmetic (same bias-corrected step size, same
    epsilon placement) in one pass. `portable()` turns it back into plain Adam before saving.
    """

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )


def fused_adam_missing(model: keras.Model) -> str | None:
    """Why FusedAdam cannot run in this installation, in a few words; None when all it needs is there.

    FusedAdam reads Adam's private state (`_get_variable_index`, `_momentums`, `_velocities`) and the
    variables' TensorFlow handles. Builds the optimizer's variables to look at them.
    """
    optimizer = model.optimizer
    if not isinstance(optimizer, FusedAdam):
        return None
    if keras.backend.backend() != "tensorflow":
        return f"Keras runs on {keras.backend.backend()}, not TensorFlow"
    if not callable(getattr(tf.raw_ops, "ResourceApplyAdam", None)):
        return "tf.raw_ops.ResourceApplyAdam is missing"
    if not callable(getattr(optimizer, "_get_variable_index", None)):
        return "the optimizer's _get_variable_index is missing"
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    for name in ("_momentums", "_velocities"):
        slots = getattr(optimizer, name, None)
        if not isinstance(slots, list) or len(slots) != len(model.trainable_variables):
            return f"Adam's {name} is missing"
    if not all(
        hasattr(v, "handle") for v in [*model.trainable_variables, *optimizer._momentums, *optimizer._velocities]
    ):
        return "the variables' .handle is missing"
    return None


def use_fast_adam(model: keras.Model, spec: Exercise) -> keras.Model:
    """Keep FusedAdam where this installation has what it needs; else recompile with Keras' Adam, saying why."""
    missing = fused_adam_missing(model)
    if missing:
        print(
            f"fused Adam unavailable ({missing}): training with Keras' Adam (same arithmetic, slower)",
            file=sys.stderr,
            flush=True,
        )
        return compile_model(model, spec, fused=False)
    return model


def portable(model: keras.Model) -> keras.Model:
    """Let the model save as plain Keras: a FusedAdam becomes the Adam it computes, state and all.

    The .keras file then loads anywhere, without DenseLab, and training can go on from it. FusedAdam
    adds no state of its own, so the class swap keeps every variable; where Python refuses it, the
    model keeps FusedAdam (registered with Keras: loading then needs denselab.training.models imported).
    """
    if type(model.optimizer) is FusedAdam:
        try:
            model.optimizer.__class__ = keras.optimizers.Adam
        except TypeError as exc:
            print(
                f"saving with DenseLab's FusedAdam ({exc}): import denselab.training.models before loading the model",
                file=sys.stderr,
            )
    return model


_OPTIMIZERS = {
    "adam": FusedAdam,
    "adamw": keras.optimizers.AdamW,
    "nadam": keras.optimizers.Nadam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}
_LOSSES = {
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
    "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
}


# CPU features that compute bfloat16 matrix products natively (AVX512-BF16: AMD Zen 4 and later, Intel
# Cooper Lake and later; AMX: Intel Sapphire Rapids and later). Elsewhere TensorFlow emulates bfloat16,
# which is slower than float32.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


def native_bfloat16() -> str | None:
    """What computes bfloat16 natively here (a GPU, or a CPU feature), or None where it would be emulated."""
    if tf.config.list_physical_devices("GPU"):
        return "a GPU"
    try:
        flags = CPUINFO.read_text()
    except OSError:  # not Linux: no way to tell, so do not bet on it
        return None
    return next((f"the CPU's {flag}" for flag in BF16_CPU_FLAGS if re.search(rf"\b{flag}\b", flags)), None)


def resolve_precision(asked: str) -> str:
    """The precision to train in: as asked, except mixed_bfloat16 where bfloat16 would be emulated."""
    if asked == "mixed_bfloat16" and native_bfloat16() is None:
        print(
            "mixed_bfloat16 asked, but this machine computes bfloat16 only by emulation (no GPU, none of "
            f"{', '.join(BF16_CPU_FLAGS)}), which is slower than float32: training in float32",
            file=sys.stderr,
        )
        return "float32"
    return asked


def make_model(
    input_dim: int, layers: Sequence[Layer], precision: str = "float32", name: str = "denselab"
) -> keras.Sequential:
    """A Sequential stack of Dense layers on flat inputs of `input_dim` features.

    Under mixed_bfloat16 the hidden layers multiply in bfloat16 with float32 weights; the output layer
    stays float32, so the probabilities and the loss keep full precision.
    """
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=(input_dim,)))
    for i, layer in enumerate(layers):
        dtype = "float32" if i == len(layers) - 1 else precision
        model.add(keras.layers.Dense(layer.units, activation=layer.activation, dtype=dtype))
    return model


def compile_model(model: keras.Model, spec: Exercise, fused: bool = True) -> keras.Model:
    """Compile with the exercise's optimizer, learning rate and loss, and the lab's `metrics=['accuracy']`.

    The test accuracy the lab reports is not this training metric but the argmax
    accuracy on the test set, which the evaluate stage computes.
    """
    optimizer = keras.optimizers.Adam if spec.optimizer == "adam" and not fused else _OPTIMIZERS[spec.optimizer]
    model.compile(
        optimizer=optimizer(learning_rate=spec.learning_rate),
        loss=_LOSSES[spec.loss](),
        metrics=["accuracy"],
    )
    return model


def precision_of(model: keras.Model) -> str:
    """The precision a model really computes in (mixed_bfloat16 falls back to float32 without native bfloat16)."""
    return model.layers[0].dtype_policy.name


def summarize(model: keras.Model) -> dict:
    """The model summary as data: one row per layer (name, type, output shape, params) and totals."""
    rows = [
        {
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": [None, *layer.output.shape[1:]],
            "params": int(layer.count_params()),
        }
        for layer in model.layers
    ]
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    total = sum(row["params"] for row in rows)
    return {
        "layers": rows,
        "total_params": total,
        "trainable_params": trainable,
        "non_trainable_params": total - trainable,
        "precision": precision_of(model),
    }
