"""What training one run of an exercise takes, estimated before TensorFlow runs: memory and time.

`validate` refuses an exercise that cannot train in this machine's memory; `denselab.tools.slurm` asks a cluster for
the memory and time each run of the study needs. Both read the same estimates, from the exercise's settings.
"""

from __future__ import annotations

import math

from denselab.core.exercise import Exercise, parameter_count
from denselab.data.datasets import IMAGE_SHAPES, TRAIN_ROWS
from denselab.training.feed import CHUNK_BYTES, VALIDATION_BATCH, split_point

# What TensorFlow and Keras hold before any exercise's arrays (measured: about 0.9 GB for ex3's stage).
RUNTIME_BYTES = 1_000_000_000
# Floating-point operations per second one CPU core sustains on a Dense layer's float32 matrix products, low on
# purpose: a time limit that is too short loses the run. Measured here: ex5's 7.85 s per epoch on 2 cores is about
# 170 GFLOP/s a core (AVX-512); a cluster's older cores without it do a quarter of that.
FLOPS_PER_CORE = 40e9


def input_size(dataset: str) -> int:
    """The features of one flattened image of `dataset`."""
    return int(math.prod(IMAGE_SHAPES[dataset]))


def training_rows(dataset: str, spec: Exercise) -> int:
    """The rows an epoch of `spec` trains on: the dataset's training images before its validation split."""
    return split_point(TRAIN_ROWS[dataset], spec.validation_split)


def training_memory(input_dim: int, spec: Exercise) -> int:
    """About the memory training an exercise takes: float32 weights, their gradients and Adam's two moments;
    the chunk of input rows the loop holds; one batch's activations (pre-activations, outputs and their
    gradients; validation batches are the larger); the runtime itself."""
    units = sum(layer.units for layer in spec.layers)
    batch = max(spec.batch_size, VALIDATION_BATCH)
    return 16 * parameter_count(input_dim, spec.layers) + CHUNK_BYTES + 12 * batch * units + RUNTIME_BYTES


def training_seconds(dataset: str, spec: Exercise, cores: int) -> float:
    """About how long one run of `spec` trains on `cores` cores, at `FLOPS_PER_CORE`: each weight costs two
    operations per training row forward and four backward, and two per validation row."""
    rows = TRAIN_ROWS[dataset]
    train = training_rows(dataset, spec)
    operations = 2 * parameter_count(input_size(dataset), spec.layers) * (3 * train + (rows - train)) * spec.epochs
    return operations / (FLOPS_PER_CORE * cores)
