"""An exercise as training reads it: its layers and settings, and what the code can build and train.

Apart from `denselab.core.config` (which validates params.yaml into these objects) so that the training stages, which
import this module, do not rerun when only the validation changes: DVC reruns a stage when a module it imports
changes (the `sources` stage).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NUM_CLASSES = 10
ACTIVATIONS = ("elu", "gelu", "linear", "relu", "selu", "sigmoid", "softmax", "softplus", "swish", "tanh")
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd")
LOSSES = ("binary_crossentropy", "categorical_crossentropy")
# float32: the lab's. mixed_bfloat16: bfloat16 matrix products, float32 weights and optimizer state.
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclass(frozen=True)
class Layer:
    """A dense layer: its width and activation (None: no activation, as the lab's baseline)."""

    units: int
    activation: str | None


@dataclass(frozen=True)
class Exercise:
    """Everything that defines one exercise of the lab."""

    description: Mapping[str, str]  # language -> text; a plain string in params.yaml is the English one
    inputs: str
    layers: tuple[Layer, ...]
    optimizer: str
    learning_rate: float
    loss: str
    batch_size: int
    epochs: int
    validation_split: float
    precision: str
    lab_test_accuracy: float | None
    control: bool = False  # not one of the lab's exercises: a variation that tests one of its claims
    xla: bool = False  # compile each training step with XLA, as the lab's `fit` does (Keras' jit_compile="auto")

    def described(self, language: str) -> str:
        """The description in `language`, else in English, else none."""
        return self.description.get(language) or self.description.get("en", "")

    def training_settings(self) -> dict[str, Any]:
        """The settings a run trains with (TRAINING_KEYS), as plain data."""
        return {key: dataclasses.asdict(self)[key] for key in TRAINING_KEYS}

    @classmethod
    def from_training_settings(cls, settings: Mapping[str, Any], inputs: str) -> Exercise:
        """An exercise that trains with `settings` (as `training_settings()` wrote them) on `inputs`."""
        layers = tuple(Layer(**layer) for layer in settings["layers"])
        rest = {key: settings[key] for key in TRAINING_KEYS if key != "layers"}
        return cls(description={}, inputs=inputs, layers=layers, lab_test_accuracy=None, **rest)


# What a run of an exercise trains with: what its fingerprint holds, and all the training stages read of it.
TRAINING_KEYS = (
    "layers",
    "optimizer",
    "learning_rate",
    "loss",
    "batch_size",
    "epochs",
    "validation_split",
    "precision",
    "xla",
)


def parameter_count(input_dim: int, layers: Sequence[Layer]) -> int:
    """The weights and biases of a stack of Dense layers on `input_dim` features."""
    count, width = 0, input_dim
    for layer in layers:
        count += width * layer.units + layer.units
        width = layer.units
    return count
