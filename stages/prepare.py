"""Stage `prepare@<inputs>`: flatten a dataset, optionally divide by 255, one-hot the training labels.

    python -m stages.prepare --inputs mnist_scaled --raw data/raw/mnist.npz --out data/prepared/mnist_scaled \
        --digest data/digests/mnist_scaled.json

Writes x_train.npy (n, d) float32, y_train.npy (n, 10) float32 one-hot,
x_test.npy (m, d) float32 and y_test.npy (m,) uint8 class indices: plain .npy
files, so the training stage can memory-map them instead of loading copies. And their sha256, a small file from
which the fingerprint stage fingerprints the exercises without reading (or fetching) the arrays.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from denselab.core.cli import StageError, argument_parser, stage_main
from denselab.core.config import InputVariant, load_params
from denselab.core.files import write_text
from denselab.data.arrays import array_hashes, flatten, one_hot, write_prepared
from denselab.data.datasets import check_arrays


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
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("--inputs", required=True, help="a key of `inputs` in params.yaml")
    parser.add_argument("--raw", type=Path, required=True, help="the downloaded arrays (download)")
    parser.add_argument("--out", type=Path, required=True, help="the folder of the prepared arrays")
    parser.add_argument("--digest", type=Path, required=True, help="their sha256 (.json)")
    args = parser.parse_args(argv)
    params = load_params()
    if args.inputs not in params.inputs:
        raise StageError(f"no input variant {args.inputs!r} in params.yaml inputs")
    # prepare() checks the arrays it is given: read them as they are, not checked twice.
    with np.load(args.raw, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    prepared = prepare(arrays, params.inputs[args.inputs])
    write_prepared(args.out, prepared)
    write_text(args.digest, json.dumps(array_hashes(args.out), indent=1) + "\n")
    shapes = ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in prepared.items())
    print(f"{args.inputs}: wrote {args.out}: {shapes}", file=sys.stderr)


if __name__ == "__main__":
    main()
