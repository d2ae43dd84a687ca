"""Stage `fingerprint@<exercise>`: everything that defines an exercise's runs except the seed.

    python -m stages.fingerprint --exercise ex3 --prepared data/prepared/mnist_scaled --out data/fingerprints/ex3.json

The seeds study's runs are DVC `matrix` stages over (exercise, seed), and DVC's matrix cannot
look up an exercise's `inputs` to name its arrays as dependencies (DVC issue #10094). This
per-exercise `foreach` stage can. It writes one small file holding the exercise's training
settings, the sha256 of its prepared arrays and of the training code; the `replicate` runs
depend on that file alone and train from what it names, checking the hashes. The file changes
exactly when a run's result could, so adding a seed trains only its runs and editing an
exercise retrains only that exercise's runs. (Listing the settings and code once here rather
than in every run also keeps a no-op `dvc repro` fast: DVC checks each dependency of each stage.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from stages.cli import StageError, stage_main, write_text
from stages.config import Exercise, load_params
from stages.layout import PREPARED

ARRAYS = tuple(PREPARED.values())
# The modules a run executes (train's, plus evaluation); dvc.yaml lists them as this stage's deps.
TRAINING_CODE = ("cli", "config", "train", "models", "feed", "loop", "evaluate", "layout")
STAGES = Path(__file__).parent


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in 8 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def array_hashes(folder: Path) -> dict[str, str]:
    """The sha256 of each prepared array in `folder`."""
    try:
        return {name: sha256_of(folder / name) for name in ARRAYS}
    except OSError as exc:
        raise StageError(f"{folder}: cannot read the prepared arrays ({exc}); run `dvc repro` to rebuild them") from exc


def code_hashes() -> dict[str, str]:
    """The sha256 of each module a run executes."""
    return {f"stages/{name}.py": sha256_of(STAGES / f"{name}.py") for name in TRAINING_CODE}


def fingerprint(exercise: str, spec: Exercise, folder: Path) -> dict[str, Any]:
    """What defines a run of `exercise` besides its seed: settings, arrays (folder and hashes), code."""
    return {
        "exercise": exercise,
        "inputs": spec.inputs,
        "settings": spec.training_settings(),
        "folder": folder.as_posix(),
        "arrays": array_hashes(folder),
        "code": code_hashes(),
    }


def check(print_: dict[str, Any]) -> tuple[Exercise, Path]:
    """The exercise and the folder a fingerprint names, once its arrays and code still match it."""
    folder = Path(print_["folder"])
    now = {**array_hashes(folder), **code_hashes()}
    recorded = {**print_["arrays"], **print_["code"]}
    changed = sorted(name for name in recorded if now.get(name) != recorded[name])
    if changed:
        raise StageError(f"{', '.join(changed)} changed since {print_['exercise']} was fingerprinted; run `dvc repro`")
    return Exercise.from_training_settings(print_["settings"], print_["inputs"]), folder


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.fingerprint --exercise NAME --prepared DIR --out FILE.json`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", required=True)
    parser.add_argument("--prepared", type=Path, required=True, help="the exercise's prepared arrays")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_params()
    if args.exercise not in params.exercises:
        raise StageError(f"no exercise {args.exercise!r} in params.yaml exercises")
    write_text(
        args.out,
        json.dumps(fingerprint(args.exercise, params.exercises[args.exercise], args.prepared), indent=1) + "\n",
    )
    print(f"{args.exercise}: runs train on {args.prepared}", file=sys.stderr)


if __name__ == "__main__":
    main()
