"""Stage `fingerprint`: everything that defines an exercise's runs except the seed and the code.

    python -m stages.fingerprint --exercise ex3 --prepared data/prepared/mnist_scaled \
        --digest data/digests/mnist_scaled.json --out data/fingerprints/ex3.json

For one exercise it writes one small file (`denselab.training.fingerprints`): the exercise's training settings and the folder
and sha256 of its prepared arrays, from the digest `prepare` wrote beside them. It reads no array, so a student's
clone reruns it without fetching any. The lab's run (`train`) and the study's runs (`replicate`) depend on their
exercise's file instead of on params.yaml: DVC's matrix cannot look up an exercise's `inputs` to name its arrays
as dependencies (DVC issue #10094); this stage can. One stage per exercise, depending on its own arrays' digest
only, so that an MNIST exercise's graph holds no CIFAR-10 stage. A file changes exactly when its runs' results
could: editing an exercise's description reruns this cheap stage, whose unchanged file keeps the runs cached.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from denselab.core.cli import StageError, argument_parser, stage_main
from denselab.core.config import Exercise, load_params
from denselab.core.files import write_text
from denselab.core.remote import pull_missing
from denselab.training.fingerprints import fingerprint as fingerprint_of
from denselab.training.fingerprints import read_digest


def fingerprint(name: str, spec: Exercise, prepared: Path, digest: Path) -> dict[str, Any]:
    """The fingerprint of exercise `name`: `prepared` is the folder of its arrays, `digest` their sha256."""
    pull_missing([digest], f"{name}'s arrays' digest")  # a student's clone has none: it is small
    return fingerprint_of(name, spec, prepared, read_digest(digest))


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.fingerprint --exercise NAME --prepared DIR --digest FILE --out FILE`."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("--exercise", required=True, help="the exercise (a key of exercises in params.yaml)")
    parser.add_argument("--prepared", type=Path, required=True, help="the folder of its prepared arrays")
    parser.add_argument("--digest", type=Path, required=True, help="their digest (prepare)")
    parser.add_argument("--out", type=Path, required=True, help="the exercise's fingerprint")
    args = parser.parse_args(argv)
    exercises = load_params().exercises
    if args.exercise not in exercises:
        raise StageError(f"{args.exercise}: not an exercise of params.yaml ({', '.join(exercises)})")
    found = fingerprint(args.exercise, exercises[args.exercise], args.prepared, args.digest)
    write_text(args.out, json.dumps(found, indent=1) + "\n")
    print(f"{args.exercise}: trains on {found['folder']}", file=sys.stderr)


if __name__ == "__main__":
    main()
