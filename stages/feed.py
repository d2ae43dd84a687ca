"""Feeding arrays to Keras batch by batch, straight from memory-mapped .npy files. Imports TensorFlow.

`model.fit(x, y, validation_split=...)` on NumPy arrays first copies them whole into
TensorFlow tensors: for CIFAR-10 that is 600 MB more on top of the arrays. These
datasets instead gather each batch from the memory-mapped file and let the kernel
drop pages already read, so memory stays near the model's own size. The semantics
are Keras' own: the last `validation_split` of the rows is held out, the rest is
reshuffled every epoch, the last batch may be short.
"""

from __future__ import annotations

import math
import mmap

import numpy as np
import tensorflow as tf

# Drop the file pages a process has read after this many bytes; the page cache keeps them.
RELEASE_EVERY = 32 << 20
# Batches gathered per trip through Python; TensorFlow splits them again (`rebatch`), in order.
GROUP = 16


def split_point(n: int, validation_split: float) -> int:
    """Index of the first validation row, as Keras computes it for `validation_split`."""
    return int(math.floor(n * (1.0 - validation_split)))


class _PageReleaser:
    """Tells the kernel it may unmap pages of memory-mapped arrays once enough has been read."""

    def __init__(self, *arrays: np.ndarray):
        self.maps = [a._mmap for a in arrays if isinstance(a, np.memmap) and getattr(a, "_mmap", None)]
        self.read = 0
        for m in self.maps:
            # Rows are read in random order: map only the pages a row needs, not their neighbours.
            m.madvise(mmap.MADV_RANDOM)

    def add(self, nbytes: int) -> None:
        self.read += nbytes
        if self.maps and self.read >= RELEASE_EVERY:
            for m in self.maps:
                m.madvise(mmap.MADV_DONTNEED)
            self.read = 0


def batch_dataset(
    x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None
) -> tf.data.Dataset:
    """A dataset of (x, y) batches of rows of x and y, reshuffled each epoch when `shuffle_seed` is set.

    Epoch k uses the permutation of `numpy.random.default_rng([shuffle_seed, k])`, so a run
    is reproducible from the seed.
    """
    n = len(x)
    steps = math.ceil(n / batch_size)
    release = _PageReleaser(x, y)
    epoch = [0]

    def groups():
        order = np.arange(n) if shuffle_seed is None else np.random.default_rng([shuffle_seed, epoch[0]]).permutation(n)
        epoch[0] += 1
        for start in range(0, n, batch_size * GROUP):
            chunk = order[start : start + batch_size * GROUP]
            # Each batch's rows sorted: the file is read forwards, and a batch's gradient does not depend on order.
            rows = np.concatenate([np.sort(chunk[i : i + batch_size]) for i in range(0, len(chunk), batch_size)])
            xb, yb = x[rows], y[rows]
            release.add(xb.nbytes + yb.nbytes)
            yield xb, yb

    signature = (
        tf.TensorSpec((None, x.shape[1]), tf.as_dtype(x.dtype)),
        tf.TensorSpec((None, y.shape[1]), tf.as_dtype(y.dtype)),
    )
    dataset = tf.data.Dataset.from_generator(groups, output_signature=signature).rebatch(batch_size)
    return dataset.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2)
