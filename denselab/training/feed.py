"""Rows for the training loop, gathered in chunks straight from memory-mapped .npy files. Pure NumPy.

`model.fit(x, y, validation_split=...)` on NumPy arrays first copies them whole into
TensorFlow tensors: for CIFAR-10 that is 600 MB more on top of the arrays. Here each
chunk of whole batches is gathered from the memory-mapped file when it is needed, and
the kernel may drop pages already read, so memory stays near the model's own size. The
semantics are Keras' own: the last `validation_split` of the rows is held out, the rest
is reshuffled every epoch, and the last batch may be short.
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Iterator

import numpy as np

# Bytes of x per chunk: few trips through Python per epoch, little memory.
CHUNK_BYTES = 32 << 20
# Validation needs no gradients: large batches give the same mean with fewer steps.
VALIDATION_BATCH = 2048
# Bytes of rows gathered between two releases of the mapped file pages (the page cache keeps them).
# Each fault also maps up to 64 KiB of already-cached neighbours (the kernel's fault-around, which
# MADV_RANDOM does not stop), so scattered rows map about ten times the bytes gathered: with 32 MiB
# between releases, ex5's mapped pages peaked 360 MB above the gathered rows (measured).
RELEASE_EVERY = 2 << 20
# Files smaller than this stay mapped: re-faulting scattered rows cost ex3 12% of an epoch
# (measured), and all of MNIST's 188 MB training file fits; CIFAR-10's 614 MB does not.
KEEP_MAPPED_BELOW = 256 << 20


def split_point(n: int, validation_split: float) -> int:
    """Index of the first validation row, as Keras computes it for `validation_split`."""
    return math.floor(n * (1.0 - validation_split))


def chunk_rows(batch_size: int, row_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows per chunk: a whole number of batches (at least one) of about `chunk_bytes`."""
    return batch_size * max(1, chunk_bytes // (batch_size * row_bytes))


def epoch_order(n: int, batch_size: int, seed: int | None, epoch: int) -> np.ndarray:
    """The order rows are visited in epoch `epoch`: `numpy.random.default_rng([seed, epoch])`'s
    permutation, or 0..n-1 when `seed` is None.

    Each batch's rows are sorted: the file is then read forwards, and a batch's mean
    gradient does not depend on the order of its rows.
    """
    if seed is None:
        return np.arange(n)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    whole = n - n % batch_size
    order[:whole] = np.sort(order[:whole].reshape(-1, batch_size), axis=1).reshape(-1)
    order[whole:] = np.sort(order[whole:])
    return order


def read_ahead(*arrays: np.ndarray) -> None:
    """Read the files behind memory-mapped arrays once, front to back, so the page cache holds them.

    After a reboot or a `dvc checkout` they may not be cached, and faulting rows in at
    random then reads them 4 KiB at a time: 8.5 s for CIFAR-10's training array here,
    against 1 s for one sequential read (`madvise(MADV_WILLNEED)` did not help). The
    bytes go through a small buffer, not into this process's memory.
    """
    buffer = bytearray(8 << 20)
    for name in {a.filename for a in arrays if isinstance(a, np.memmap) and a.filename}:
        with open(name, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass


class _MappedPages:
    """The file mappings behind memory-mapped arrays, whose pages this process can give back."""

    def __init__(self, *arrays: np.ndarray, keep_below: int = KEEP_MAPPED_BELOW):
        # np.memmap keeps its mmap.mmap in the private `_mmap`; where a NumPy lacks it, nothing is given back
        # (the arrays still work, the process just keeps more pages mapped).
        maps = [m for a in arrays if isinstance(a, np.memmap) and (m := getattr(a, "_mmap", None)) is not None]
        self.maps = [m for m in maps if len(m) >= keep_below]
        for m in self.maps:
            # Rows are read in random order: no read-ahead around a fault when pages were evicted.
            m.madvise(mmap.MADV_RANDOM)

    def release(self) -> None:
        """Unmap the pages of the big files; the next read maps them again from the page cache."""
        for m in self.maps:
            m.madvise(mmap.MADV_DONTNEED)


def chunks(
    x: np.ndarray, y: np.ndarray, order: np.ndarray, rows: int, keep_mapped_below: int = KEEP_MAPPED_BELOW
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x, y) rows in `order`, `rows` at a time, as contiguous in-memory arrays.

    Pages of mapped files of `keep_mapped_below` bytes or more are given back as rows are gathered.
    """
    pages = _MappedPages(x, y, keep_below=keep_mapped_below)
    row_bytes = x.itemsize * int(np.prod(x.shape[1:])) + y.itemsize * int(np.prod(y.shape[1:]))
    block = max(1, RELEASE_EVERY // row_bytes)
    for start in range(0, len(order), rows):
        index = order[start : start + rows]
        xc = np.empty((len(index), *x.shape[1:]), x.dtype)
        yc = np.empty((len(index), *y.shape[1:]), y.dtype)
        for b in range(0, len(index), block):
            part = index[b : b + block]
            xc[b : b + len(part)], yc[b : b + len(part)] = x[part], y[part]
            pages.release()
        yield xc, yc
