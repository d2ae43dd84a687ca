"""The seeds study's fingerprints: everything that defines an exercise's study runs but the seed.

The fingerprint stage writes one per studied exercise (`layout.fingerprint_file`): its training settings, the
folder and sha256 of its prepared arrays, and the source files a run executes with their sha256 (the replicate
stage's list from the sources stage). Each replicate run depends on that file alone and reads it back here,
checking that the arrays and the code are still what was fingerprinted before it trains.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from denselab.cli import StageError
from denselab.config import Exercise
from denselab.files import sha256_file
from denselab.layout import PREPARED
from denselab.sources import ROOT, hashes


def array_hashes(folder: Path) -> dict[str, str]:
    """The sha256 of each prepared array in `folder`."""
    try:
        return {name: sha256_file(folder / name) for name in PREPARED.values()}
    except OSError as exc:
        raise StageError(f"{folder}: cannot read the prepared arrays ({exc}); run `dvc repro` to rebuild them") from exc


def fingerprint(
    exercise: str, spec: Exercise, folder: Path, code: Mapping[str, str], arrays: dict[str, str] | None = None
) -> dict[str, Any]:
    """What defines a run of `exercise` besides its seed: settings, arrays (folder and hashes), code (file ->
    sha256). `arrays`, when given, are the hashes already computed for `folder`."""
    return {
        "exercise": exercise,
        "inputs": spec.inputs,
        "settings": spec.training_settings(),
        "folder": folder.as_posix(),
        "arrays": array_hashes(folder) if arrays is None else arrays,
        "code": dict(code),
    }


def check(print_: dict[str, Any], root: Path = ROOT) -> tuple[Exercise, Path]:
    """The exercise and the folder a fingerprint names, once its arrays and code still match it."""
    folder = Path(print_["folder"])
    # A file gone since is left out here, so it is named below as changed.
    now = array_hashes(folder) | hashes([path for path in print_["code"] if (root / path).is_file()], root)
    recorded = {**print_["arrays"], **print_["code"]}
    changed = sorted(name for name in recorded if now.get(name) != recorded[name])
    if changed:
        raise StageError(f"{', '.join(changed)} changed since {print_['exercise']} was fingerprinted; run `dvc repro`")
    return Exercise.from_training_settings(print_["settings"], print_["inputs"]), folder


def read_fingerprint(path: Path, exercise: str) -> tuple[Exercise, Path]:
    """Read and check the fingerprint of `exercise` (`check`): its exercise and the folder of its arrays."""
    try:
        print_ = json.loads(path.read_text(encoding="utf-8"))
        spec, folder = check(print_)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StageError(f"{path}: cannot read it ({exc}); run `dvc repro`") from exc
    if print_["exercise"] != exercise:
        raise StageError(f"{path} is the fingerprint of {print_['exercise']}, not of {exercise}")
    return spec, folder
