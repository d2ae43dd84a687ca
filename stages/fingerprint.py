"""Stage `fingerprint`: everything that defines each studied exercise's runs except the seed.

    python -m stages.fingerprint --prepared data/prepared --out data/fingerprints

The seeds study's runs are DVC `matrix` stages over (exercise, seed), and DVC's matrix cannot
look up an exercise's `inputs` to name its arrays as dependencies (DVC issue #10094). This stage
can: for every exercise of the study it writes one small file (`layout.fingerprint_file`) holding
the exercise's training settings, the sha256 of its prepared arrays and of the training code. Each
`replicate` run depends on its exercise's file alone and trains from what it names, checking the
hashes. A file changes exactly when its runs' results could, so adding a seed trains only its
runs and editing an exercise retrains only that exercise's runs: the other files come out
byte-identical and DVC keeps their runs. One stage for the whole study, not one per exercise,
keeps a no-op `dvc repro` fast (DVC checks every dependency of every stage, each time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stages.cli import StageError, replaced_folder, stage_main
from stages.config import Exercise, load_params
from stages.layout import PREPARED, fingerprint_file

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


def fingerprint(
    exercise: str,
    spec: Exercise,
    folder: Path,
    arrays: dict[str, str] | None = None,
    code: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What defines a run of `exercise` besides its seed: settings, arrays (folder and hashes), code.

    `arrays` and `code`, when given, are the hashes already computed for `folder` and the code."""
    return {
        "exercise": exercise,
        "inputs": spec.inputs,
        "settings": spec.training_settings(),
        "folder": folder.as_posix(),
        "arrays": array_hashes(folder) if arrays is None else arrays,
        "code": code_hashes() if code is None else code,
    }


def fingerprints(
    exercises: Mapping[str, Exercise], studied: tuple[str, ...], prepared: Path
) -> dict[str, dict[str, Any]]:
    """The fingerprint of each studied exercise; `prepared` holds one folder per input variant, and
    each folder's arrays are hashed once however many exercises train on it."""
    code = code_hashes()
    arrays: dict[str, dict[str, str]] = {}
    found = {}
    for name in studied:
        spec = exercises[name]
        folder = prepared / spec.inputs
        if spec.inputs not in arrays:
            arrays[spec.inputs] = array_hashes(folder)
        found[name] = fingerprint(name, spec, folder, arrays[spec.inputs], code)
    return found


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
    """Command line: `python -m stages.fingerprint --prepared DIR --out DIR`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, required=True, help="the folder of every input variant's arrays")
    parser.add_argument("--out", type=Path, required=True, help="the folder of the study's fingerprints")
    args = parser.parse_args(argv)
    params = load_params()
    found = fingerprints(params.exercises, params.study.exercises, args.prepared)
    with replaced_folder(args.out) as staging:
        for name, print_ in found.items():
            (staging / fingerprint_file(name)).write_text(json.dumps(print_, indent=1) + "\n", encoding="utf-8")
    for name, print_ in found.items():
        print(f"{name}: runs train on {print_['folder']}", file=sys.stderr)


if __name__ == "__main__":
    main()
