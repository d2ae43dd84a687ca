"""Exercise fingerprints: everything that defines a run of an exercise but the seed and the code.

The fingerprint stage writes one per exercise: its training settings and the folder
and sha256 of its prepared arrays, as `prepare` recorded them (the fingerprint stage reads
no array). The lab's run (train) and the study's runs (replicate) depend on that file instead of on params.yaml,
and read it back here, checking that the arrays are still what was fingerprinted before they train; arrays the
workspace lacks (a student's clone) are fetched from the DVC remote first. Their code they depend on as every
stage does, by their file of the sources stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from denselab.core import remote
from denselab.core.cli import StageError
from denselab.core.exercise import Exercise
from denselab.core.layout import PREPARED
from denselab.data.arrays import array_hashes


def read_digest(path: Path) -> dict[str, str]:
    """The sha256 of each prepared array of one input variant, as `prepare` wrote them (`array_hashes`)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StageError(f"{path}: cannot read the arrays' digest ({exc}); run `dvc repro` to rebuild it") from exc
    if not isinstance(found, dict) or sorted(found) != sorted(PREPARED.values()):
        raise StageError(f"{path}: not a digest of the prepared arrays; run `dvc repro` to rebuild it")
    return found


def fingerprint(exercise: str, spec: Exercise, folder: Path, arrays: dict[str, str]) -> dict[str, Any]:
    """What defines a run of `exercise` besides its seed and code: settings, arrays (`folder` and the hashes
    of its arrays)."""
    return {
        "exercise": exercise,
        "inputs": spec.inputs,
        "settings": spec.training_settings(),
        "folder": folder.as_posix(),
        "arrays": arrays,
    }


def check(print_: dict[str, Any]) -> tuple[Exercise, Path]:
    """The exercise and the folder a fingerprint names, once its arrays still match it. Arrays missing here
    are fetched from the DVC remote first (`remote.pull_missing`)."""
    folder = Path(print_["folder"])
    remote.pull_missing([folder / name for name in print_["arrays"]], f"{print_['exercise']}'s arrays")
    now = array_hashes(folder)
    changed = sorted(name for name, digest in print_["arrays"].items() if now.get(name) != digest)
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
