"""The prepared arrays: how a dataset's images become what the network reads, and the one writer and
reader of their files (plain .npy, so training can memory-map them instead of loading copies)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from denselab.core.cli import StageError
from denselab.core.exercise import NUM_CLASSES
from denselab.core.files import atomic_path, sha256_file
from denselab.core.layout import PREPARED


def flatten(images: np.ndarray, divide_by_255: bool) -> np.ndarray:
    """(n, ...) uint8 images -> (n, d) float32, divided by 255 if asked."""
    x = images.reshape(len(images), -1).astype(np.float32)
    if divide_by_255:
        # In place: the float32 copy above is the only one made.
        np.divide(x, np.float32(255.0), out=x)
    return x


def one_hot(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Class indices (n,) or (n, 1) -> (n, num_classes) float32, as keras.utils.to_categorical."""
    labels = labels.reshape(-1)
    encoded = np.zeros((len(labels), num_classes), dtype=np.float32)
    encoded[np.arange(len(labels)), labels] = 1.0
    return encoded


def write_prepared(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """The four prepared arrays into `folder` (`layout.PREPARED`), each written atomically."""
    for key, name in PREPARED.items():
        with atomic_path(folder / name) as tmp:
            np.save(tmp, arrays[key])


def array_hashes(folder: Path) -> dict[str, str]:
    """The sha256 of each prepared array in `folder`."""
    try:
        return {name: sha256_file(folder / name) for name in PREPARED.values()}
    except OSError as exc:
        raise StageError(f"{folder}: cannot read the prepared arrays ({exc}); run `dvc repro` to rebuild them") from exc


def read_training(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The prepared training arrays of `folder`, memory-mapped, checked for shape and dtype."""
    try:
        x = np.load(folder / PREPARED["x_train"], mmap_mode="r")
        y = np.load(folder / PREPARED["y_train"], mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise StageError(f"{folder}: cannot read the prepared arrays ({exc}); run `dvc repro` to rebuild them") from exc
    if x.ndim != 2 or y.shape != (len(x), NUM_CLASSES) or x.dtype != np.float32:
        raise StageError(
            f"{folder}: expected float32 x (n, d) and one-hot y (n, {NUM_CLASSES}), got {x.shape} {x.dtype}, {y.shape}"
        )
    return x, y


def read_test(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The prepared test arrays of `folder`: x memory-mapped, the class indices in memory."""
    try:
        return np.load(folder / PREPARED["x_test"], mmap_mode="r"), np.load(folder / PREPARED["y_test"])
    except (OSError, ValueError) as exc:
        raise StageError(f"{folder}: cannot read the test arrays ({exc}); run `dvc repro` to rebuild them") from exc
