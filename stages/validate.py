"""Stage `validate`: check the whole params.yaml before any other stage may run.

    python -m stages.validate data/params.ok

Every other stage depends on the marker this writes. DVC runs this stage first
whenever params.yaml changes, so a bad value stops `dvc repro` here, in well
under a second, before any stage has removed or rewritten an output. The marker's
content never changes, so passing validation does not make anything else stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stages.cli import stage_main, write_text
from stages.config import Params, load_params

MARKER = "params.yaml is valid\n"


def validate(path: str | Path) -> Params:
    """Load and validate params.yaml (raises ParamsError naming the key)."""
    return load_params(path)


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.validate --marker FILE`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marker", type=Path, required=True, help="written when params.yaml is valid (a DVC output)")
    args = parser.parse_args(argv)
    params = validate("params.yaml")
    if not args.marker.is_file() or args.marker.read_text() != MARKER:
        write_text(args.marker, MARKER)
    print(f"params.yaml: valid ({len(params.exercises)} exercises)", file=sys.stderr)


if __name__ == "__main__":
    main()
