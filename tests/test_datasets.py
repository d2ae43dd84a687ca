"""Decoding the real file formats: npz, IDX (raw and gz), CIFAR-10 python tar; hostile inputs refused."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import tracemalloc

import numpy as np
import pytest

from denselab.core.config import IDX_FILES
from denselab.data.datasets import (
    IDX_SIZES,
    DataError,
    check_arrays,
    mnist_from_idx,
    read_cifar_batch,
    read_cifar_tar,
    read_idx,
    read_npz,
)
from tests.conftest import REAL_MNIST
from tests.fixtures import (
    cifar_arrays,
    idx_bytes,
    mnist_arrays,
    sha256,
    write_cifar_tar,
    write_idx_files,
    write_mnist_npz,
)


def _idx_paths(folder, gz):
    return {name: folder / (name + (".gz" if gz else "")) for name in IDX_FILES}


@pytest.mark.parametrize("gz", [True, False])
def test_idx_and_npz_give_identical_arrays(tmp_path, gz):
    arrays = mnist_arrays()
    hashes = write_idx_files(tmp_path, arrays, gz=gz)
    from_idx = mnist_from_idx(_idx_paths(tmp_path, gz), hashes)
    from_npz = read_npz(write_mnist_npz(tmp_path / "mnist.npz", arrays), "mnist")
    for key in arrays:
        assert from_idx[key].dtype == from_npz[key].dtype == np.uint8
        np.testing.assert_array_equal(from_idx[key], from_npz[key])
        np.testing.assert_array_equal(from_idx[key], arrays[key])


def test_idx_hash_mismatch_names_file_and_both_hashes(tmp_path):
    arrays = mnist_arrays()
    hashes = write_idx_files(tmp_path, arrays)
    hashes["t10k-labels-idx1-ubyte"] = "0" * 64
    with pytest.raises(
        DataError, match=r"t10k-labels-idx1-ubyte.gz: sha256 mismatch: expected 0{64}, got [0-9a-f]{64}"
    ):
        mnist_from_idx(_idx_paths(tmp_path, True), hashes)


def test_idx_wrong_magic_and_wrong_count(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    for name, data in (("magic", idx_bytes(labels, magic=2052)), ("count", idx_bytes(labels, count=11))):
        (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError, match="bad IDX magic number 2052"):
        read_idx(tmp_path / "magic", sha256(tmp_path / "magic"), 100)
    with pytest.raises(DataError, match=r"header says \(11,\) \(19 bytes\) but the file has 18 bytes"):
        read_idx(tmp_path / "count", sha256(tmp_path / "count"), 100)


def test_an_idx_file_is_decoded_only_once_its_sha256_is_known_and_matches(tmp_path):
    hashes = write_idx_files(tmp_path, mnist_arrays())
    del hashes["train-images-idx3-ubyte"]
    with pytest.raises(DataError, match=r"^no sha256 for train-images-idx3-ubyte: an IDX file is decoded only once"):
        mnist_from_idx(_idx_paths(tmp_path, True), hashes)


def test_a_gzip_bomb_is_refused_past_the_real_files_size_without_decompressing_it(tmp_path):
    """200 MB of zeros in 0.2 MB of gzip, named like MNIST's test labels (10,008 bytes): read as a stream, it is
    refused once past that size, its sha256 never computed and the rest never decompressed."""
    bomb = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as f:
        for _ in range(200):
            f.write(bytes(1 << 20))
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as error:
            read_idx(bomb, "0" * 64, IDX_SIZES["t10k-labels-idx1-ubyte"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(error.value) == (
        "t10k-labels-idx1-ubyte.gz: more than 10,008 bytes, the size of the file it is named after: not that file"
    )
    assert peak < 1 << 20, peak


def test_corrupt_gzip_and_npz(tmp_path):
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"0123456789")[:-6])
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(tmp_path / "x.gz", "0" * 64, 100)
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable npz"):
        read_npz(tmp_path / "mnist.npz", "mnist")


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason="needs ../shared/datasets/mnist")
def test_real_mnist_idx_files_decode_to_the_published_figures(params_data):
    paths = {name: REAL_MNIST / f"{name}.gz" for name in IDX_FILES}
    arrays = mnist_from_idx(paths, params_data["sources"]["mnist"]["idx_sha256"])
    assert arrays["x_train"].shape == (60000, 28, 28) and arrays["y_test"].shape == (10000,)
    assert np.bincount(arrays["y_test"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert round(float(arrays["x_train"].mean()), 3) == 33.318


def test_cifar_tar_decodes_to_keras_shapes_and_pixel_order(tmp_path):
    arrays = cifar_arrays()
    result = read_cifar_tar(write_cifar_tar(tmp_path / "cifar-10-python.tar.gz", arrays))
    assert result["x_train"].shape == (100, 32, 32, 3) and result["y_train"].shape == (100, 1)
    assert result["x_test"].shape == (20, 32, 32, 3) and result["y_test"].shape == (20, 1)
    for key in arrays:
        np.testing.assert_array_equal(result[key], arrays[key])


def _member(name, kind=tarfile.REGTYPE, size=1, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size if kind == tarfile.REGTYPE else 0, link
    return info


@pytest.mark.parametrize(
    "member, message",
    [
        (_member("cifar-10-batches-py/../../evil"), "escapes the target folder"),
        (_member("/etc/evil"), "escapes the target folder"),
        (_member("cifar-10-batches-py/link", tarfile.SYMTYPE, link="/etc/passwd"), "links and device files"),
        (_member("cifar-10-batches-py/hard", tarfile.LNKTYPE, link="cifar-10-batches-py/test_batch"), "links"),
        (_member("cifar-10-batches-py/dev", tarfile.CHRTYPE), "device files"),
    ],
)
def test_hostile_tar_members_are_refused(tmp_path, member, message):
    path = write_cifar_tar(tmp_path / "c.tar.gz", cifar_arrays(), extra=[member])
    before = set(os.listdir(tmp_path))
    with pytest.raises(DataError, match=message):
        read_cifar_tar(path)
    assert set(os.listdir(tmp_path)) == before  # nothing was extracted anywhere near


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_a_command_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": _Payload(marker), b"labels": []}, protocol=2)
    with pytest.raises(DataError, match=r"refusing to load (posix|os)\.system"):
        read_cifar_batch(io.BytesIO(evil), "data_batch_1")
    assert not marker.exists()


def test_pickle_inside_the_tar_is_refused_too(tmp_path):
    marker = tmp_path / "pwned"
    arrays = cifar_arrays()
    path = write_cifar_tar(tmp_path / "c.tar.gz", arrays)
    # Rebuild the archive with a hostile test batch.
    evil = pickle.dumps({b"data": _Payload(marker), b"labels": [0]}, protocol=2)
    with tarfile.open(path) as src, tarfile.open(tmp_path / "evil.tar.gz", "w:gz") as dst:
        for m in src.getmembers():
            if m.name.endswith("test_batch"):
                m.size = len(evil)
                dst.addfile(m, io.BytesIO(evil))
            else:
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    with pytest.raises(DataError, match="refusing to load"):
        read_cifar_tar(tmp_path / "evil.tar.gz")
    assert not marker.exists()


def test_corrupt_tar(tmp_path):
    path = write_cifar_tar(tmp_path / "c.tar.gz", cifar_arrays())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="corrupt tar archive"):
        read_cifar_tar(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(x_train=a["x_train"].astype(np.float32)), "x_train: expected dtype uint8, got float32"),
        (lambda a: a.update(x_test=a["x_test"][:, :27]), r"x_test: expected shape \(n, 28, 28\), got \(40, 27, 28\)"),
        (lambda a: a.update(y_train=a["y_train"][:-1]), "120 train images but 119 labels"),
        (lambda a: a["y_test"].__setitem__(0, 10), r"y_test: labels must be 0..9, found 10"),
        (lambda a: a.pop("y_test"), "missing arrays y_test"),
    ],
)
def test_check_arrays_rejects_wrong_shapes_dtypes_and_labels(change, message):
    arrays = mnist_arrays()
    change(arrays)
    with pytest.raises(DataError, match=message):
        check_arrays("mnist", arrays)
