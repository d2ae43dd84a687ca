"""Stage `fingerprint@<exercise>`: which prepared arrays an exercise reads, with their sha256.

    python -m stages.fingerprint --exercise ex3 --prepared data/prepared/mnist_scaled --out data/fingerprints/ex3.json

The seeds study's runs are DVC `matrix` stages over (exercise, seed), and DVC's matrix
cannot look up an exercise's `inputs` to name the arrays as dependencies (DVC issue
#10094). This per-exercise `foreach` stage can: the runs depend on the small file it
writes, which changes exactly when the exercise's arrays do, and they read the arrays
it names, checking the hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from stages.cli import StageError, stage_main, write_text

ARRAYS = ("x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy")


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in 8 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(folder: Path) -> dict:
    """The prepared folder and the sha256 of each of its arrays."""
    try:
        return {"folder": folder.as_posix(), "sha256": {name: sha256_of(folder / name) for name in ARRAYS}}
    except OSError as exc:
        raise StageError(f"{folder}: cannot read the prepared arrays ({exc}); run `dvc repro` to rebuild them") from exc


def check(print_: dict) -> Path:
    """The folder a fingerprint names, after checking its arrays still have the recorded hashes."""
    folder = Path(print_["folder"])
    now = fingerprint(folder)["sha256"]
    changed = [name for name in ARRAYS if now[name] != print_["sha256"][name]]
    if changed:
        raise StageError(f"{folder}: {', '.join(changed)} changed since they were fingerprinted; run `dvc repro`")
    return folder


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.fingerprint --exercise NAME --prepared DIR --out FILE.json`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", required=True)
    parser.add_argument("--prepared", type=Path, required=True, help="the exercise's prepared arrays")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write_text(args.out, json.dumps(fingerprint(args.prepared), indent=2) + "\n")
    print(f"{args.exercise}: reads {args.prepared}", file=sys.stderr)


if __name__ == "__main__":
    main()
