"""Stage `prepare@<inputs>`: flatten a dataset, optionally divide by 255, one-hot the training labels.

    python -m stages.prepare mnist_scaled data/raw/mnist.npz data/prepared/mnist_scaled

Writes x_train.npy (n, d) float32, y_train.npy (n, 10) float32 one-hot,
x_test.npy (m, d) float32 and y_test.npy (m,) uint8 class indices: plain .npy
files, so the training stage can memory-map them instead of loading copies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from stages.cli import StageError, atomic_path, stage_main
from stages.config import NUM_CLASSES, InputVariant, load_params
from stages.datasets import check_arrays
from stages.layout import PREPARED


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


def prepare(arrays: dict[str, np.ndarray], variant: InputVariant) -> dict[str, np.ndarray]:
    """The four prepared arrays of one input variant, from a dataset's raw uint8 arrays."""
    arrays = check_arrays(variant.dataset, arrays)
    return {
        "x_train": flatten(arrays["x_train"], variant.divide_by_255),
        "y_train": one_hot(arrays["y_train"]),
        "x_test": flatten(arrays["x_test"], variant.divide_by_255),
        "y_test": arrays["y_test"].reshape(-1).astype(np.uint8),
    }


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.prepare --inputs NAME --raw FILE.npz --out DIR`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", required=True, help="a key of `inputs` in params.yaml")
    parser.add_argument("--raw", type=Path, required=True, help="the downloaded arrays (download)")
    parser.add_argument("--out", type=Path, required=True, help="the folder of the prepared arrays")
    args = parser.parse_args(argv)
    params = load_params()
    if args.inputs not in params.inputs:
        raise StageError(f"no input variant {args.inputs!r} in params.yaml inputs")
    with np.load(args.raw, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    prepared = prepare(arrays, params.inputs[args.inputs])
    for key, name in PREPARED.items():
        with atomic_path(args.out / name) as tmp:
            np.save(tmp, prepared[key])
    shapes = ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in prepared.items())
    print(f"{args.inputs}: wrote {args.out}: {shapes}", file=sys.stderr)


if __name__ == "__main__":
    main()
