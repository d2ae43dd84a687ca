"""Normalize/reshape: shapes, dtypes, ranges and one-hot labels exactly as the lab prepares them."""

from __future__ import annotations

import numpy as np
import pytest

from denselab.core.config import InputVariant
from denselab.data.datasets import DataError
from stages.prepare import flatten, one_hot, prepare
from tests.fixtures import cifar_arrays, mnist_arrays


def test_mnist_raw_keeps_pixel_values_as_float32():
    arrays = mnist_arrays()
    out = prepare(arrays, InputVariant(dataset="mnist", divide_by_255=False))
    assert out["x_train"].shape == (120, 784) and out["x_train"].dtype == np.float32
    assert out["y_train"].shape == (120, 10) and out["y_train"].dtype == np.float32
    assert out["x_test"].shape == (40, 784) and out["y_test"].shape == (40,) and out["y_test"].dtype == np.uint8
    np.testing.assert_array_equal(out["x_train"], arrays["x_train"].reshape(120, -1))
    assert out["x_train"].max() == 250.0


def test_scaled_variant_is_x_over_255_in_unit_range():
    arrays = mnist_arrays()
    arrays["x_train"][0, 0, 0] = 255
    out = prepare(arrays, InputVariant(dataset="mnist", divide_by_255=True))
    assert 0.0 <= out["x_train"].min() and out["x_train"].max() == 1.0
    # The lab divides float64 by 255.0; float32 must agree to float32 precision.
    lab = (arrays["x_test"] / 255.0).reshape(40, -1)
    np.testing.assert_allclose(out["x_test"], lab, rtol=1e-7, atol=0)


def test_cifar_flattens_row_major_like_the_lab():
    arrays = cifar_arrays()
    out = prepare(arrays, InputVariant(dataset="cifar10", divide_by_255=True))
    assert out["x_train"].shape == (100, 3072) and out["y_test"].shape == (20,)
    np.testing.assert_allclose(out["x_train"][3], arrays["x_train"][3].reshape(-1) / 255.0, rtol=1e-7)
    assert out["y_train"][7].tolist() == one_hot(arrays["y_train"][7:8])[0].tolist()


def test_one_hot_matches_to_categorical():
    encoded = one_hot(np.array([3, 0, 9]))
    assert encoded.tolist() == [[0, 0, 0, 1, 0, 0, 0, 0, 0, 0], [1] + [0] * 9, [0] * 9 + [1]]


def test_flatten_does_not_touch_its_input():
    images = np.full((2, 4, 4), 255, dtype=np.uint8)
    flatten(images, divide_by_255=True)
    assert images.max() == 255


def test_wrong_dataset_arrays_are_rejected():
    with pytest.raises(DataError, match=r"cifar10.x_train: expected shape \(n, 32, 32, 3\)"):
        prepare(mnist_arrays(), InputVariant(dataset="cifar10", divide_by_255=True))
