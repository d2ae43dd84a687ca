"""The datasets' file formats: decode MNIST (npz or IDX) and CIFAR-10 (python tar) safely.

Every decoder returns the same four uint8 arrays Keras' `load_data()` returns and
checks them with `check_arrays`, so nothing malformed reaches the later stages.
Files are decoded only after their sha256 has been verified: by the caller for a download, here for the IDX
files, whose digests are of their decompressed bytes (read no further than the real files' sizes).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, ClassVar

import numpy as np

from denselab.core.cli import DataError
from denselab.core.config import IDX_FILES
from denselab.core.exercise import NUM_CLASSES
from denselab.core.files import sha256_file

Arrays = dict[str, np.ndarray]
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")

# Per-sample shapes and label shapes exactly as keras.datasets returns them.
IMAGE_SHAPES = {"mnist": (28, 28), "cifar10": (32, 32, 3)}
TRAIN_ROWS = {"mnist": 60_000, "cifar10": 50_000}  # the real files' training images, before validation_split
# The class names, in label order (CIFAR-10's as its batches.meta lists them).
CLASS_NAMES = {
    "mnist": tuple(str(i) for i in range(NUM_CLASSES)),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}
LABEL_SHAPES = {"mnist": (), "cifar10": (1,)}

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"

_IDX_MAGIC = {3: 2051, 1: 2049}  # by number of dimensions: images, labels
# The real IDX files' sizes: a header of 4 bytes and 4 per dimension, then one byte per pixel or label.
IDX_SIZES = {
    "train-images-idx3-ubyte": 16 + TRAIN_ROWS["mnist"] * 28 * 28,
    "train-labels-idx1-ubyte": 8 + TRAIN_ROWS["mnist"],
    "t10k-images-idx3-ubyte": 16 + 10_000 * 28 * 28,
    "t10k-labels-idx1-ubyte": 8 + 10_000,
}
# numpy's array-rebuilding function, whatever module path this numpy version gives it.
_RECONSTRUCT = np.zeros(0).__reduce__()[0]


def verify_sha256(path: str | Path, expected: str, actual: str | None = None) -> None:
    """Raise DataError naming the file, the expected and the actual hash if they differ."""
    actual = actual or sha256_file(path)
    if actual != expected:
        raise DataError(f"{Path(path).name}: sha256 mismatch: expected {expected}, got {actual}")


def check_arrays(dataset: str, arrays: Mapping[str, np.ndarray]) -> Arrays:
    """Check names, dtypes, shapes and label range of a dataset's four arrays."""
    missing = [k for k in ARRAY_KEYS if k not in arrays]
    if missing:
        raise DataError(f"{dataset}: missing arrays {', '.join(missing)}")
    image, label = IMAGE_SHAPES[dataset], LABEL_SHAPES[dataset]
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        for name, a, tail in ((f"x_{split}", x, image), (f"y_{split}", y, label)):
            if a.dtype != np.uint8:
                raise DataError(f"{dataset}.{name}: expected dtype uint8, got {a.dtype}")
            if a.shape[1:] != tail or a.shape[0] == 0:
                raise DataError(f"{dataset}.{name}: expected shape (n, {', '.join(map(str, tail))}), got {a.shape}")
        if len(x) != len(y):
            raise DataError(f"{dataset}: {len(x)} {split} images but {len(y)} labels")
        if y.max() >= NUM_CLASSES:
            raise DataError(f"{dataset}.y_{split}: labels must be 0..{NUM_CLASSES - 1}, found {int(y.max())}")
    return {k: arrays[k] for k in ARRAY_KEYS}


def read_npz(path: str | Path, dataset: str) -> Arrays:
    """Read a Keras-style npz (x_train, y_train, x_test, y_test) without allowing pickles."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{Path(path).name}: not a readable npz file ({exc})") from exc
    return check_arrays(dataset, arrays)


def _bounded_bytes(path: Path, limit: int) -> bytes:
    """A file's bytes (decompressed, for .gz), read as a stream that stops past `limit`: a hostile or broken file
    (a gzip bomb) costs at most `limit` bytes of memory before it is refused."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            data = f.read(limit + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path.name}: corrupt gzip data ({exc})") from exc
    if len(data) > limit:
        raise DataError(
            f"{path.name}: more than {limit:,} bytes, the size of the file it is named after: not that file"
        )
    return data


def read_idx(path: str | Path, expected_sha256: str, limit: int) -> np.ndarray:
    """Decode one IDX file (raw or .gz) of at most `limit` bytes, once the sha256 of its bytes (decompressed) is
    `expected_sha256`."""
    path = Path(path)
    data = _bounded_bytes(path, limit)
    verify_sha256(path, expected_sha256, hashlib.sha256(data).hexdigest())
    if len(data) < 8:
        raise DataError(f"{path.name}: too short for an IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    ndim = data[3]
    if _IDX_MAGIC.get(ndim) != magic:
        raise DataError(f"{path.name}: bad IDX magic number {magic} (expected 2051 for images, 2049 for labels)")
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(f"{path.name}: header says {shape} ({expected} bytes) but the file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def mnist_from_idx(paths: Mapping[str, Path], sha256: Mapping[str, str]) -> Arrays:
    """Build MNIST's arrays from the four original IDX files (keyed by their base names), each checked against
    its sha256 in `sha256` (datasets.yaml's `idx_sha256`) and read no further than its real size."""
    missing = [name for name in IDX_FILES if name not in sha256]
    if missing:
        raise DataError(f"no sha256 for {', '.join(missing)}: an IDX file is decoded only once its bytes are checked")
    x_train, y_train, x_test, y_test = (read_idx(paths[name], sha256[name], IDX_SIZES[name]) for name in IDX_FILES)
    return check_arrays("mnist", {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test})


class _CifarUnpickler(pickle.Unpickler):
    """Resolves only the globals a CIFAR-10 batch (a dict of numpy arrays and lists) needs."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            # Protocol-2 pickles written by Python 3 spell bytes as encode(text, 'latin1').
            return _latin1_encode
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise DataError(f"refusing to load {module}.{name} from a CIFAR-10 pickle") from None


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise DataError(f"refusing codec {encoding!r} in a CIFAR-10 pickle")
    return text.encode("latin1")


def read_cifar_batch(stream: BinaryIO, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one CIFAR-10 python batch into (images NHWC uint8, labels (n, 1) uint8)."""
    try:
        batch = _CifarUnpickler(stream, encoding="bytes").load()
    except DataError:
        raise
    except Exception as exc:  # a corrupt pickle raises almost anything
        raise DataError(f"{name}: not a readable CIFAR-10 batch ({exc})") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{name}: not a CIFAR-10 batch (no data/labels)")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{name}: expected uint8 data of shape (n, 3072) and n labels, got {data.shape}")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{name}: labels must be 0..{NUM_CLASSES - 1}")
    # Batches store planes (channel, row, col); Keras returns (row, col, channel).
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.uint8).reshape(-1, 1)


def _check_member(member: tarfile.TarInfo) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise DataError(f"refusing tar member {member.name!r}: it escapes the target folder")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"refusing tar member {member.name!r}: links and device files are not allowed")


def read_cifar_tar(path: str | Path) -> Arrays:
    """Read CIFAR-10 from `cifar-10-python.tar.gz`, refusing any hostile member.

    Every member is checked before any is read; the batches are read straight from
    the archive, so nothing from it is ever written to disk.
    """
    try:
        with tarfile.open(path, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member)
            by_name = {PurePosixPath(m.name).as_posix(): m for m in members if m.isfile()}
            parts = {}
            for batch in CIFAR_TRAIN_BATCHES + (CIFAR_TEST_BATCH,):
                found = by_name.get(f"{CIFAR_FOLDER}/{batch}")
                stream = tar.extractfile(found) if found is not None else None
                if stream is None:
                    raise DataError(f"{Path(path).name}: {CIFAR_FOLDER}/{batch} is missing")
                parts[batch] = read_cifar_batch(io.BytesIO(stream.read()), batch)
    except (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{Path(path).name}: corrupt tar archive ({exc})") from exc
    train = [parts[b] for b in CIFAR_TRAIN_BATCHES]
    return check_arrays(
        "cifar10",
        {
            "x_train": np.concatenate([x for x, _ in train]),
            "y_train": np.concatenate([y for _, y in train]),
            "x_test": parts[CIFAR_TEST_BATCH][0],
            "y_test": parts[CIFAR_TEST_BATCH][1],
        },
    )


def read_dataset(dataset: str, path: str | Path) -> Arrays:
    """Decode a verified download of `dataset` (mnist.npz or cifar-10-python.tar.gz)."""
    return read_npz(path, dataset) if dataset == "mnist" else read_cifar_tar(path)
