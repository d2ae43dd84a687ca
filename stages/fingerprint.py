"""Stage `fingerprint`: everything that defines each studied exercise's runs except the seed.

    python -m stages.fingerprint --prepared data/prepared --sources data/sources/replicate.json \
        --out data/fingerprints

The seeds study's runs are DVC `matrix` stages over (exercise, seed), and DVC's matrix cannot
look up an exercise's `inputs` to name its arrays as dependencies (DVC issue #10094). This stage
can: for every exercise of the study it writes one small file (`denselab.study`) holding the
exercise's training settings, the sha256 of its prepared arrays and the source files a run executes.
Each `replicate` run depends on its exercise's file alone. A file changes exactly when its runs'
results could, so adding a seed trains only its runs and editing an exercise retrains only that
exercise's runs: the other files come out byte-identical and DVC keeps their runs. One stage for the
whole study, not one per exercise, keeps a no-op `dvc repro` fast (DVC checks every dependency of every
stage, each time).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from denselab.cli import StageError, stage_main
from denselab.config import Exercise, load_params
from denselab.files import replaced_folder
from denselab.layout import fingerprint_file
from denselab.study import array_hashes
from denselab.study import fingerprint as fingerprint_of


def fingerprint(
    exercises: Mapping[str, Exercise], studied: tuple[str, ...], prepared: Path, code: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """The fingerprint of each studied exercise; `prepared` holds one folder per input variant, and each
    folder's arrays are hashed once however many exercises train on it. `code`: the runs' source files."""
    arrays: dict[str, dict[str, str]] = {}
    found = {}
    for name in studied:
        spec = exercises[name]
        if spec.inputs not in arrays:
            arrays[spec.inputs] = array_hashes(prepared / spec.inputs)
        found[name] = fingerprint_of(name, spec, prepared / spec.inputs, code, arrays[spec.inputs])
    return found


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.fingerprint --prepared DIR --sources FILE.json --out DIR`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, required=True, help="the folder of every input variant's arrays")
    parser.add_argument("--sources", type=Path, required=True, help="the replicate stage's source files (sources)")
    parser.add_argument("--out", type=Path, required=True, help="the folder of the study's fingerprints")
    args = parser.parse_args(argv)
    params = load_params()
    try:
        code = json.loads(args.sources.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StageError(f"{args.sources}: cannot read it ({exc}); run `dvc repro`") from exc
    found = fingerprint(params.exercises, params.study.exercises, args.prepared, code)
    with replaced_folder(args.out) as staging:
        for name, print_ in found.items():
            (staging / fingerprint_file(name)).write_text(json.dumps(print_, indent=1) + "\n", encoding="utf-8")
    for name, print_ in found.items():
        print(f"{name}: runs train on {print_['folder']}", file=sys.stderr)


if __name__ == "__main__":
    main()
