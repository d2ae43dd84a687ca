"""Does the suite still catch what it must? Five deliberate breakages, each applied alone to a scratch checkout of a
commit, then the tests that guard it run; a breakage no test fails on is a hole in the suite.

    python benchmarks/breakages.py                       # main's HEAD
    python benchmarks/breakages.py --commit 1124adb      # an older commit: the same breakages, its own tests
    python benchmarks/breakages.py --only pull           # one breakage (its key)

Each breakage names the tests to run: the unit tests of what it breaks and the end-to-end test of the behaviour
(the e2e ones build a tiny project first, one to two minutes). It prints per breakage the tests that failed, and
exits 1 if any breakage went through.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIRE = ("DENSELAB_REQUIRE_BROWSER", "DENSELAB_REQUIRE_SSHD", "DENSELAB_REQUIRE_SLURM")


@dataclass(frozen=True)
class Breakage:
    """A one-line change to one file, and the tests (pytest arguments) that must fail because of it."""

    key: str
    what: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]


BREAKAGES = (
    Breakage(
        "learning-rate",
        "validate accepts a negative learning rate",
        "denselab/core/config.py",
        "learning_rate: float = Field(gt=0)",
        "learning_rate: float = Field()",
        (
            "tests/test_config.py",
            "tests/test_validate.py",
            "tests/test_command_lines.py",
            "tests/test_pipeline.py::test_bad_params_fail_fast_and_touch_nothing",
        ),
    ),
    Breakage(
        "seed",
        "replicate ignores its seed",
        "stages/replicate.py",
        "model, history, _ = fit_exercise(x_train, y_train, spec, seed)",
        "model, history, _ = fit_exercise(x_train, y_train, spec, 42)",
        ("tests/test_replicate.py",),
    ),
    Breakage(
        "claims-section",
        "the page drops the claims section",
        "denselab/report/templates/report.html.j2",
        '{% include "partials/claims.html.j2" %}',
        "",
        ("tests/test_report.py",),
    ),
    Breakage(
        "pull",
        "denselab.tools.pull does not retry a dropped connection",
        "denselab/tools/pull.py",
        "if attempt >= retries or not dropped:",
        "if True:",
        (
            "tests/test_pull.py",
            "tests/test_pipeline.py::test_a_class_fetching_at_once_gets_every_report_through_dropped_connections",
        ),
    ),
    Breakage(
        "ex3-epochs",
        "an edit of exercises.ex3.epochs reruns a stage of ex2 (explain lists every exercise's settings)",
        "dvc.yaml",
        "- exercises.${key}.inputs",
        "- exercises",
        (
            "tests/test_stages.py",
            # Before 5 December 2026 an edit of ex2's epochs had a test of its own; now every student's edit checks it.
            "tests/test_pipeline.py::test_editing_one_exercise_stales_only_its_train_evaluate_and_report",
            "tests/test_pipeline.py::test_a_students_edit_retrains_only_its_exercise_and_a_confounded_claim_is_not_tested",
        ),
    ),
)


def failed_tests(checkout: Path, tests: tuple[str, ...]) -> tuple[list[str], str]:
    """Run `tests` in `checkout` (only those its tree has: a file, or a test function of a file); the node ids that
    failed or errored, and the summary."""

    def present_in(checkout: Path, test: str) -> bool:
        file, _, name = test.partition("::")
        path = checkout / file
        return path.is_file() and (not name or f"def {name}(" in path.read_text())

    present = [t for t in tests if present_in(checkout, t)]
    # A test that skips (no browser, no sshd) catches nothing: here they must run, as in CI.
    env = {**os.environ, **dict.fromkeys(REQUIRE, "1"), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=-ra -n 2", *present],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.MULTILINE)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    return sorted(set(failed)), summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default="HEAD", help="the commit to break (default: HEAD)")
    parser.add_argument("--only", choices=[b.key for b in BREAKAGES], action="append", help="one breakage (repeatable)")
    args = parser.parse_args(argv)
    chosen = [b for b in BREAKAGES if not args.only or b.key in args.only]
    holes = 0
    with tempfile.TemporaryDirectory(prefix="denselab-breakages-") as tmp:
        checkout = Path(tmp) / "checkout"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(checkout), args.commit], cwd=ROOT, check=True)
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True, check=True
            ).stdout.strip()
            print(f"breakages of {commit}:", flush=True)
            for breakage in chosen:
                path = checkout / breakage.path
                original = path.read_text()
                if original.count(breakage.before) != 1:
                    raise SystemExit(f"{breakage.path} of {commit} does not hold {breakage.before!r} once")
                path.write_text(original.replace(breakage.before, breakage.after))
                start = time.perf_counter()
                try:
                    failed, summary = failed_tests(checkout, breakage.tests)
                finally:
                    path.write_text(original)
                holes += not failed
                verdict = f"caught by {len(failed)}" if failed else "NOT CAUGHT"
                print(f"- {breakage.what}: {verdict} ({summary}; {time.perf_counter() - start:.0f} s)", flush=True)
                for node in failed:
                    print(f"    {node}", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=ROOT, check=False)
    raise SystemExit(1 if holes else 0)


if __name__ == "__main__":
    main()
