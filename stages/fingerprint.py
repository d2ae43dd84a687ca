"""Stage `fingerprint`: everything that defines each exercise's runs except the seed and the code.

    python -m stages.fingerprint --prepared data/prepared --digests data/digests --out data/fingerprints

For every exercise it writes one small file (`denselab.study`): the exercise's training settings and the
folder and sha256 of its prepared arrays, from the digest `prepare` wrote beside them. It reads no array, so a
student's clone reruns it without fetching any. The lab's run (`train`) and the study's runs (`replicate`) depend on
their exercise's file instead of on params.yaml, for two reasons. DVC's matrix cannot look up an exercise's
`inputs` to name its arrays as dependencies (DVC issue #10094); this stage can. And DVC parses params.yaml once
for every stage that lists params, at each `dvc repro`: one stage reading them for all the training stages
keeps a no-op fast. A file changes exactly when its runs' results could, so editing an exercise retrains only
that exercise: the other files come out byte-identical and DVC keeps their runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from denselab.cli import stage_main
from denselab.config import Exercise, load_params
from denselab.files import replaced_folder
from denselab.layout import digest_file, fingerprint_file
from denselab.remote import pull_missing
from denselab.study import fingerprint as fingerprint_of
from denselab.study import read_digest


def fingerprint(exercises: Mapping[str, Exercise], prepared: Path, digests: Path) -> dict[str, dict[str, Any]]:
    """The fingerprint of each exercise; `prepared` holds one folder per input variant, `digests` one digest
    of each folder's arrays."""
    used = {spec.inputs: digests / digest_file(spec.inputs) for spec in exercises.values()}
    pull_missing(list(used.values()), "the arrays' digests")  # a student's clone has none: they are small
    return {
        name: fingerprint_of(name, spec, prepared / spec.inputs, read_digest(used[spec.inputs]))
        for name, spec in exercises.items()
    }


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.fingerprint --prepared DIR --digests DIR --out DIR`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, required=True, help="the folder of every input variant's arrays")
    parser.add_argument("--digests", type=Path, required=True, help="the folder of their digests (prepare)")
    parser.add_argument("--out", type=Path, required=True, help="the folder of the exercises' fingerprints")
    args = parser.parse_args(argv)
    found = fingerprint(load_params().exercises, args.prepared, args.digests)
    with replaced_folder(args.out) as staging:
        for name, print_ in found.items():
            (staging / fingerprint_file(name)).write_text(json.dumps(print_, indent=1) + "\n", encoding="utf-8")
    for name, print_ in found.items():
        print(f"{name}: trains on {print_['folder']}", file=sys.stderr)


if __name__ == "__main__":
    main()
