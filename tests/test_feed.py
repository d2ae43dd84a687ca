"""Batches straight from memory-mapped arrays: every row once per epoch, reshuffled, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from stages.feed import batch_dataset, split_point  # noqa: E402


def _epoch(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_split_point_matches_keras():
    assert split_point(60000, 0.2) == 48000
    assert split_point(10, 0.25) == 7


def test_each_epoch_sees_every_row_once_in_a_new_order(tmp_path):
    x = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    y = np.eye(10, dtype=np.float32)[np.arange(50) % 10]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    xm, ym = np.load(tmp_path / "x.npy", mmap_mode="r"), np.load(tmp_path / "y.npy", mmap_mode="r")
    dataset = batch_dataset(xm, ym, batch_size=16, shuffle_seed=3)
    assert int(dataset.cardinality()) == 4
    first, second = _epoch(dataset), _epoch(dataset)
    assert [len(b[0]) for b in first] == [16, 16, 16, 2]
    for epoch in (first, second):
        rows = np.concatenate([b[0][:, 0] for b in epoch]) / 3
        assert sorted(rows.tolist()) == list(range(50))
        labels = np.concatenate([b[1] for b in epoch])
        np.testing.assert_array_equal(labels, y[rows.astype(int)])  # x and y stay paired
    order = lambda epoch: np.concatenate([b[0][:, 0] for b in epoch]).tolist()  # noqa: E731
    assert order(first) != order(second)
    again = batch_dataset(xm, ym, batch_size=16, shuffle_seed=3)
    assert order(_epoch(again)) == order(first)


def test_unshuffled_dataset_keeps_row_order():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.zeros((10, 10), dtype=np.float32)
    rows = np.concatenate([b[0] for b in _epoch(batch_dataset(x, y, batch_size=4))])
    np.testing.assert_array_equal(rows, x)
