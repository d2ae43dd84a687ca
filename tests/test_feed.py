"""Rows from memory-mapped arrays: every row once per epoch, reshuffled, reproducible, in whole batches."""

from __future__ import annotations

import ctypes
import mmap
import os
import subprocess
import sys

import numpy as np
import pytest

from denselab.training.feed import chunk_rows, chunks, epoch_order, read_ahead, split_point
from tests.conftest import ROOT


@pytest.mark.parametrize("n, validation_split", [(10, 0.25), (7, 0.2), (9, 1 / 3), (11, 0.5)])
def test_split_point_matches_keras(n, validation_split):
    """As many rows train as Keras' own `fit(validation_split=...)` trains on (one step per row)."""
    keras = pytest.importorskip("keras")

    steps = []
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: steps.append(batch))
    x = np.zeros((n, 2), dtype=np.float32)
    model.fit(x, x[:, :1], batch_size=1, epochs=1, validation_split=validation_split, callbacks=[counter], verbose=0)
    assert split_point(n, validation_split) == len(steps)
    assert split_point(60000, 0.2) == 48000


def test_chunks_are_whole_batches_of_about_the_asked_size():
    assert chunk_rows(128, 784 * 4) == 128 * 83  # 32 MiB of MNIST rows
    assert chunk_rows(128, 3072 * 4, chunk_bytes=1 << 20) == 128  # never less than one batch
    assert chunk_rows(2048, 3072 * 4) == 2048


def test_each_epoch_visits_every_row_once_in_a_new_order():
    first, second = epoch_order(50, 16, seed=3, epoch=0), epoch_order(50, 16, seed=3, epoch=1)
    for order in (first, second):
        assert sorted(order.tolist()) == list(range(50))
        for start in range(0, 50, 16):  # rows within a batch are read forwards
            batch = order[start : start + 16]
            assert (np.diff(batch) > 0).all()
    assert first.tolist() != second.tolist()
    assert set(first[:16]) != set(second[:16])  # batches are new, not just reordered
    np.testing.assert_array_equal(epoch_order(50, 16, seed=3, epoch=0), first)
    np.testing.assert_array_equal(epoch_order(50, 16, seed=None, epoch=4), np.arange(50))


def test_chunks_gather_paired_rows_in_order_from_a_memory_map(tmp_path):
    x = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    y = np.eye(10, dtype=np.float32)[np.arange(50) % 10]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    xm, ym = np.load(tmp_path / "x.npy", mmap_mode="r"), np.load(tmp_path / "y.npy", mmap_mode="r")
    order = epoch_order(50, 8, seed=1, epoch=0)
    parts = list(chunks(xm, ym, order, rows=16))
    assert [len(xc) for xc, _ in parts] == [16, 16, 16, 2]
    assert all(type(xc) is np.ndarray and type(yc) is np.ndarray for xc, yc in parts)  # copies, not views of the file
    np.testing.assert_array_equal(np.concatenate([xc for xc, _ in parts]), x[order])
    np.testing.assert_array_equal(np.concatenate([yc for _, yc in parts]), y[order])


def test_feed_does_not_import_tensorflow():
    code = "import sys, denselab.training.feed; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _cached_pages(path) -> int:
    """How many of the file's pages are in the page cache (mincore on a fresh read-only mapping)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    size = os.path.getsize(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as m:
        pages = -(-size // mmap.PAGESIZE)
        vector = ctypes.create_string_buffer(pages)
        address = np.frombuffer(m, dtype=np.uint8).ctypes.data
        assert libc.mincore(ctypes.c_void_p(address), size, vector) == 0, os.strerror(ctypes.get_errno())
        return sum(byte & 1 for byte in vector.raw)


def test_read_ahead_brings_an_evicted_file_into_the_page_cache(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.ones((2048, 1024), dtype=np.float32))  # 8 MiB
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    pages = -(-os.path.getsize(path) // mmap.PAGESIZE)
    if _cached_pages(path) > pages // 2:
        pytest.skip("this file system keeps the file cached (tmpfs?)")
    x = np.load(path, mmap_mode="r")
    read_ahead(x, x[:10])
    assert _cached_pages(path) == pages


def _mapped_kib(path) -> int:
    """Resident KiB of this process's mappings of `path` (from /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            if not line.split()[0].endswith(":"):  # a mapping's header line: address range ... path
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc")
def test_gathered_pages_are_given_back_chunk_by_chunk(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).random((4096, 1024), dtype=np.float32))  # 16 MiB
    x = np.load(path, mmap_mode="r")
    y = np.zeros((4096, 10), dtype=np.float32)
    order = epoch_order(4096, 128, seed=0, epoch=0)
    peak = 0
    for xc, _ in chunks(x, y, order, rows=1024, keep_mapped_below=0):
        peak = max(peak, _mapped_kib(path))
    assert peak < 1024, f"{peak} KiB of the 16 MiB file still mapped after a chunk"
    for xc, _ in chunks(x, y, order, rows=1024):  # a file this small stays mapped
        pass
    assert _mapped_kib(path) > 8 * 1024


def test_a_numpy_without_the_private_mmap_still_feeds_every_row(tmp_path, monkeypatch):
    """np.memmap's `_mmap` is private: where it is missing, pages are simply not given back."""
    from denselab.training import feed

    path = tmp_path / "x.npy"
    x_full = np.arange(64 * 8, dtype=np.float32).reshape(64, 8)
    np.save(path, x_full)
    x = np.load(path, mmap_mode="r")
    monkeypatch.setattr(x, "_mmap", None, raising=False)
    assert feed._MappedPages(x, keep_below=0).maps == []
    y = np.eye(10, dtype=np.float32)[np.arange(64) % 10]
    order = epoch_order(64, 8, seed=0, epoch=0)
    got = np.concatenate([xc for xc, _ in chunks(x, y, order, rows=16, keep_mapped_below=0)])
    np.testing.assert_array_equal(got, x_full[order])
