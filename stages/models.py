"""The one model factory every exercise uses, and its compile step. Imports Keras (TensorFlow)."""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from stages.config import Exercise, Layer


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


def portable(model: keras.Model) -> keras.Model:
    """Let the model save as plain Keras: a FusedAdam becomes the Adam it computes, state and all.

    The .keras file then loads anywhere, without DenseLab, and training can go on from it.
    """
    if type(model.optimizer) is FusedAdam:
        model.optimizer.__class__ = keras.optimizers.Adam
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


def make_model(input_dim: int, layers: Sequence[Layer], name: str = "denselab") -> keras.Sequential:
    """A Sequential stack of Dense layers on flat inputs of `input_dim` features."""
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=(input_dim,)))
    for layer in layers:
        model.add(keras.layers.Dense(layer.units, activation=layer.activation))
    return model


def compile_model(model: keras.Model, spec: Exercise) -> keras.Model:
    """Compile with the exercise's optimizer, learning rate and loss, and the lab's `metrics=['accuracy']`.

    The test accuracy the lab reports is not this training metric but the argmax
    accuracy on the test set, which the evaluate stage computes.
    """
    model.compile(
        optimizer=_OPTIMIZERS[spec.optimizer](learning_rate=spec.learning_rate),
        loss=_LOSSES[spec.loss](),
        metrics=["accuracy"],
    )
    return model


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
    return {"layers": rows, "total_params": total, "trainable_params": trainable, "non_trainable_params": total - trainable}

