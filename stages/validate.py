"""Stage `validate`: check the whole params.yaml before any other stage may run.

    python -m stages.validate --marker data/params.ok

It depends on params.yaml as a whole file, since it reads all of it (a misspelt new
key too). The downloads depend on the marker it writes and every other stage on
what they wrote, so DVC runs this stage first whenever params.yaml changes: a bad
value stops `dvc repro` here, in well under a second, before any stage has removed
or rewritten an output. The marker's content never changes, so passing validation
does not make anything else stale.

An edit that leaves one of the lab's comparisons (claims.yaml) comparing more than it names is valid: it prints
one warning line per comparison, and judge gives the claims that rest on it the verdict "not tested".

Beyond the values themselves, it checks what they imply before TensorFlow ever runs: that each
exercise's training fits in this machine's memory, and that its validation split leaves rows to train on.
"""

from __future__ import annotations

import sys
from pathlib import Path

from denselab.core.cli import argument_parser, stage_main
from denselab.core.config import Params, ParamsError
from denselab.core.exercise import parameter_count
from denselab.core.files import megabytes, write_text
from denselab.data.datasets import TRAIN_ROWS
from denselab.study.claim_tests import load_with_claims, untestable
from denselab.training.resources import input_size, training_memory, training_rows

MARKER = "params.yaml is valid\n"
MEMINFO = Path("/proc/meminfo")


def available_memory() -> int | None:
    """This machine's available memory in bytes (MemAvailable), or None where the kernel does not say."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_resources(params: Params, memory: int | None) -> None:
    """Refuse an exercise that leaves no rows to train on, or that cannot train in `memory` bytes,
    naming the key and the figures (ParamsError)."""
    for name, spec in params.exercises.items():
        dataset = params.inputs[spec.inputs].dataset
        rows, input_dim, left = TRAIN_ROWS[dataset], input_size(dataset), training_rows(dataset, spec)
        if left < 1:
            raise ParamsError(
                f"exercises.{name}.validation_split: {spec.validation_split} holds out all of {dataset}'s "
                f"{rows:,} training rows ({left} left to train on); use a smaller share, e.g. 0.2"
            )
        need = training_memory(input_dim, spec)
        if memory is not None and need > memory:
            widths = ", ".join(str(layer.units) for layer in spec.layers)
            raise ParamsError(
                f"exercises.{name}.layers: layers of {widths} units on {input_dim:,} inputs need about "
                f"{megabytes(need)} to train ({parameter_count(input_dim, spec.layers):,} weights, each with a "
                f"gradient and two Adam moments), and this machine has {megabytes(memory)} available"
            )


def validate(path: str | Path, memory: int | None = None) -> Params:
    """Load and validate params.yaml, and check each exercise fits this machine (raises ParamsError naming the key)."""
    params = load_with_claims(path)
    check_resources(params, memory if memory is not None else available_memory())
    return params


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.validate --marker FILE`."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("--marker", type=Path, required=True, help="written when params.yaml is valid (a DVC output)")
    args = parser.parse_args(argv)
    params = validate("params.yaml")
    if not args.marker.is_file() or args.marker.read_text() != MARKER:
        write_text(args.marker, MARKER)
    print(f"params.yaml: valid ({len(params.exercises)} exercises)", file=sys.stderr)
    # Valid, but a claim's comparison no longer isolates what it names: said, never refused (experiments are the
    # point); judge gives those claims the verdict "not tested".
    for line in untestable(params):
        print(f"warning: {line}", file=sys.stderr)


if __name__ == "__main__":
    main()
