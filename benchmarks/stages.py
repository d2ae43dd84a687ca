"""What each cheap stage's process costs: its command, as dvc.lock resolved it, run in a built tiny project (the
tests' `tests.project`: tiny MNIST and CIFAR-10 files in their real formats, every exercise, a small study), a
warm-up and then N runs, the median wall time with the fastest and slowest.

    python benchmarks/stages.py                       # builds a tiny project first (about 2 minutes)
    python benchmarks/stages.py --project /tmp/tiny/denselab --repeats 7

The stages write what they wrote before (the same inputs, the same bytes), so the project stays built. On a tiny
project these are the fixed costs a stage pays whatever its data: imports, start-up, figure layout; a default
build pays them in each of its 80 stage processes, the test suite in several hundred.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# One instance of each cheap stage (the training stages' cost is the training's, benchmarks/run.py's business).
STAGES = (
    "validate",
    "fingerprint@ex1",
    "evaluate@ex1",
    "explain@ex1",
    "describe@mnist",
    "aggregate",
    "judge",
    "report",
)


def commands(project: Path) -> dict[str, str]:
    """Each stage's command as dvc.lock recorded it (with every variable resolved)."""
    locked = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    return {name: locked[name]["cmd"] for name in STAGES}


def wall_times(command: str, project: Path, repeats: int) -> list[float]:
    """The command's wall time, `repeats` runs after one not counted; a failure stops the benchmark."""
    times = []
    for run in range(repeats + 1):
        start = time.perf_counter()
        done = subprocess.run(command, shell=True, cwd=project, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{command} failed:\n{done.stderr}")
        if run:
            times.append(elapsed)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a built tiny project (default: build one)")
    parser.add_argument("--repeats", type=int, default=5, help="counted runs per stage (default 5)")
    args = parser.parse_args(argv)
    project = args.project
    if project is None:
        sys.path.insert(0, str(ROOT))
        from tests.project import build

        folder = Path(tempfile.mkdtemp(prefix="denselab-stages-"))
        print(f"building a tiny project in {folder} ...", file=sys.stderr, flush=True)
        project = build(folder).path
    print(f"{'stage':<18}{'median s':>10}{'min s':>8}{'max s':>8}   ({args.repeats} runs each, {project})")
    total = 0.0
    for name, command in commands(project).items():
        times = wall_times(command, project, args.repeats)
        total += statistics.median(times)
        print(f"{name:<18}{statistics.median(times):>10.2f}{min(times):>8.2f}{max(times):>8.2f}", flush=True)
    print(f"{'all eight':<18}{total:>10.2f}")


if __name__ == "__main__":
    main()
