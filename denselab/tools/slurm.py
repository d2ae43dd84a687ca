"""The seeds study's runs over a Slurm cluster: one job array of the runs DVC's run-cache lacks, then the page.

    python -m denselab.tools.slurm [--partition P] [--account A] [--time MINUTES] [--mem MB] [--cpus-per-task N]

Run it in a clone of the project on the cluster's login node, at a commit pushed to the Git remote the nodes can
clone (`--git-url`, default `origin`), with a DVC remote they can reach (a shared folder, SSH, S3). It

1. brings what the study's runs read up to date here (sources, validate, the downloads, prepare, the fingerprints:
   `dvc repro --pull`, which also fetches the remote's run-cache records) and pushes it with its run records, so
   that no node downloads a dataset;
2. finds the study's runs (`replicate@<exercise>-<seed>`) that have no record in DVC's run-cache, the remote's or
   this clone's;
3. submits them as one job array: each task clones the commit into a folder of its own, runs its stage with
   `dvc repro --pull`, pushes the run with `dvc push --run-cache`, and removes its clone;
4. waits, a line per run as it ends; a run still missing at the end is named with its log's last line;
5. when none is missing, runs `dvc repro --pull` here: the lab's runs, the study, the verdicts and the page.

Run it again after a failure: it submits only the runs still missing. The memory and time a task asks for are
estimated from its exercise (`denselab.training.resources`, as `validate` checks memory); the largest of the array's runs
sets them. No stage imports this module: it is a command for people.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from denselab.core.cli import StageError, argument_parser, bounded, stage_main
from denselab.core.config import PARAMS_FILE, Params, load_params
from denselab.core.remote import dvc_root, redacted
from denselab.tools.slurm_array import (
    Request,
    last_line,
    live_array,
    project_key,
    run_command,
    still_missing,
    submit,
    wait,
    write_job,
)
from denselab.training.resources import input_size, training_memory, training_seconds

# What a task's DVC and Python hold beside the training process (measured: `dvc repro` about 0.3 GB, `dvc push`
# less), and what a task spends besides training: cloning, pulling the arrays, pushing the run.
TASK_BYTES = 512 * 2**20
TASK_SECONDS = 600
MEMORY_STEP_MB = 256


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def study_runs(params: Params) -> list[tuple[str, int]]:
    """The study's runs besides the lab's, as (exercise, seed), in dvc.yaml's matrix order."""
    return [(exercise, seed) for exercise in params.study.exercises for seed in params.study.seeds]


def stage_name(exercise: str, seed: int) -> str:
    """The DVC stage of one run of the study (dvc.yaml's `replicate` matrix)."""
    return f"replicate@{exercise}-{seed}"


def default_request(params: Params, exercises: Sequence[str], cpus: int) -> Request:
    """Memory and time for the largest of `exercises`' runs on `cpus` cores, with room for DVC and the task's
    cloning, pulling and pushing; rounded up."""
    memory, seconds = 0, 0.0
    for name in exercises:
        spec = params.exercises[name]
        dataset = params.inputs[spec.inputs].dataset
        memory = max(memory, training_memory(input_size(dataset), spec))
        seconds = max(seconds, training_seconds(dataset, spec, cpus))
    memory_mb = math.ceil((memory + TASK_BYTES) / 2**20 / MEMORY_STEP_MB) * MEMORY_STEP_MB
    return Request(cpus, memory_mb, math.ceil((seconds + TASK_SECONDS) / 60))


def recorded_runs(root: Path, stages: Sequence[str]) -> set[str] | None:
    """Those of `stages` that DVC's run-cache in this clone holds a run of, for the inputs they have now; None
    when this DVC's run-cache cannot be read (then every run counts as missing, and a task whose run the remote
    has restores it instead of training).

    DVC has no public call for this: `dvc repro --dry` does not look in the run-cache, `dvc status` neither. The
    lookup DVC makes before it runs a stage (`StageCache._load`, DVC 3.x) answers it, and is checked for here;
    whatever it raises, the fan-out goes on without it and says so in one line."""
    try:
        return _recorded_runs(root, stages)
    except Exception as exc:  # noqa: BLE001  (a private API of another DVC may raise anything, none of it the user's)
        print(
            f"denselab: DVC {_dvc_version()}'s run-cache lookup failed ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}): every run counts as missing",
            file=sys.stderr,
        )
        return None


def _dvc_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dvc")
    except PackageNotFoundError:
        return "(version unknown)"


def _recorded_runs(root: Path, stages: Sequence[str]) -> set[str] | None:
    try:
        from dvc.repo import Repo
        from dvc.stage.cache import _can_hash
    except ImportError:
        return None
    found = set()
    with Repo(str(root)) as repo:
        load = getattr(getattr(repo, "stage_cache", None), "_load", None)
        if not callable(load):
            return None
        for name in stages:
            (stage,) = repo.stage.collect(f"{root / 'dvc.yaml'}:{name}")  # not the working folder's
            if not _can_hash(stage):  # an input missing here: nothing to look up
                continue
            stage.save_deps()  # hashes the inputs (in memory), as DVC does before it looks
            if load(stage):
                found.add(name)
    return found


def _dvc_or_stop(args: Sequence[str], cwd: Path, what: str) -> None:
    """Run DVC with its output shown (downloads and pushes take a while); stop naming `what` when it fails."""
    print(f"denselab: {what}: dvc {' '.join(args)}", file=sys.stderr, flush=True)
    if run_command([sys.executable, "-m", "dvc", *args], cwd, capture=False).returncode != 0:
        raise StageError(f"{what} failed (`dvc {' '.join(args)}`, its error above)")


def pushed_commit(root: Path, git_url: str) -> str:
    """HEAD's commit, once the Git remote the tasks clone holds it and the study's inputs are committed; else a
    StageError saying what to do."""
    commit = run_command(["git", "rev-parse", "HEAD"], root).stdout.strip()
    # Outputs (dvc.lock, reports/, data/) may differ: the tasks rebuild them. Anything else they would not see.
    changed = [
        line[3:]
        for line in run_command(["git", "status", "--porcelain", "--untracked-files=no"], root).stdout.splitlines()
        if not re.match(r"(dvc\.lock$|reports/|data/)", line[3:])
    ]
    if changed:
        raise StageError(
            f"{', '.join(changed)}: changed since commit {commit[:7]}, and the tasks build the commit: "
            "commit and push first (`git commit -am ...`, `git push`)"
        )
    tips = run_command(["git", "ls-remote", git_url], root)
    if tips.returncode != 0:
        raise StageError(f"cannot reach the Git remote {redacted(git_url)}: {redacted(tips.stderr.strip())}")
    for tip in {line.split()[0] for line in tips.stdout.splitlines() if line.strip()}:
        if tip == commit or run_command(["git", "merge-base", "--is-ancestor", commit, tip], root).returncode == 0:
            return commit
    raise StageError(
        f"commit {commit[:7]} is not on {redacted(git_url)}, which the tasks clone: push it first (`git push`)"
    )


def fan_out(
    root: Path,
    chosen: dict[str, Any],
    cpus: int,
    git_url: str | None,
    workdir: Path | None,
    poll: float = 10.0,
    collect: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Steps 1 to 5 of the module's docstring; returns the runs still missing (empty: the page is built).
    `chosen`: the Request fields the user gave (None: estimated)."""
    missing_commands = [name for name in ("sbatch", "squeue", "scontrol") if shutil.which(name) is None]
    if missing_commands:
        raise StageError(
            f"{', '.join(missing_commands)} not found: run this where Slurm's commands are (a cluster's login node)"
        )
    params = load_params(root / PARAMS_FILE)
    runs = study_runs(params)
    names = [stage_name(e, s) for e, s in runs]
    if not names:
        raise StageError("params.yaml: study.exercises or study.seeds is empty: no run to submit")
    if git_url is None:
        origin = run_command(["git", "remote", "get-url", "origin"], root)
        if origin.returncode != 0:
            raise StageError("no Git remote `origin` for the tasks to clone: add one or give --git-url")
        git_url = origin.stdout.strip()
    commit = pushed_commit(root, git_url)
    project = project_key(git_url)
    running = live_array(project, commit, root, sleep)
    if running:
        raise StageError(
            f"job {running} is already building this study's runs of commit {commit[:7]} (`squeue --jobs={running}`): "
            f"wait until it has ended, then run this again to collect them; `scancel {running}` stops it"
        )

    inputs = ["sources", *(f"fingerprint@{e}" for e in params.study.exercises)]
    _dvc_or_stop(["repro", "--pull", *inputs], root, "what the runs read")
    _dvc_or_stop(["push", "--run-cache", "--with-deps", *inputs], root, "pushing it for the tasks")

    recorded = recorded_runs(root, names)
    if recorded is None:
        print(
            "denselab: this DVC's run-cache cannot be read here: submitting every run (a run the remote has is "
            "restored by its task, not trained)",
            file=sys.stderr,
        )
        recorded = set()
    missing = [name for name in names if name not in recorded]
    print(f"denselab: {len(names) - len(missing)} of {_runs(len(names))} in the run-cache", file=sys.stderr)
    if missing:
        exercises = sorted({e for e, s in runs if stage_name(e, s) in missing})
        given = {key: value for key, value in chosen.items() if value is not None}
        request = dataclasses.replace(default_request(params, exercises, cpus), **given)
        folder = (workdir or root / ".dvc" / "tmp" / "slurm").absolute() / time.strftime("%Y%m%d-%H%M%S")
        script = write_job(folder, missing, git_url, commit, sys.executable)
        job = submit(script, len(missing), request, root, project, commit)
        print(
            f"denselab: job {job}: {_runs(len(missing))} ({', '.join(request.sbatch_options())}); logs in "
            f"{folder / 'logs'}",
            file=sys.stderr,
            flush=True,
        )
        try:
            wait(job, missing, folder / "logs", root, poll, sleep)
        except KeyboardInterrupt:
            raise StageError(f"stopped waiting; job {job} goes on (`scancel {job}` stops it)") from None
        _dvc_or_stop(["fetch", "--run-cache", "sources"], root, "the tasks' run records")
        still = still_missing(missing, recorded_runs(root, missing), folder / "logs")
        if still:
            for index, name in enumerate(missing):
                if name in still:
                    print(
                        f"denselab: {name} is missing: {last_line(folder / 'logs' / f'{index}.log')}",
                        file=sys.stderr,
                    )
            print(
                f"denselab: {len(still)} of {_runs(len(missing))} failed; run this again to submit only those",
                file=sys.stderr,
            )
            return still
    if collect:
        _dvc_or_stop(["repro", "--pull"], root, "the page")
    return []


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line; exit code 1 when runs are still missing, 2 when the command cannot go on."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("--partition", help="the Slurm partition (default: the cluster's)")
    parser.add_argument("--account", help="the Slurm account to charge (default: yours)")
    parser.add_argument("--cpus-per-task", type=bounded(int, 1), default=2, help="cores per run (default 2)")
    parser.add_argument(
        "--mem", type=bounded(int, 1), help="MB per task (default: estimated from the largest exercise)"
    )
    parser.add_argument(
        "--time", type=bounded(int, 1), help="minutes per task (default: estimated from the largest exercise)"
    )
    parser.add_argument("--git-url", help="the Git repository the tasks clone (default: the clone's origin)")
    parser.add_argument("--workdir", type=Path, help="a folder every node sees (default: .dvc/tmp/slurm)")
    parser.add_argument(
        "--poll", type=bounded(float, 0.0, above=True), default=10.0, help="seconds between looks at the queue"
    )
    parser.add_argument("--no-collect", action="store_true", help="only the runs; no `dvc repro --pull` after")
    args = parser.parse_args(argv)
    root = dvc_root(Path.cwd())
    if root is None:
        raise StageError("not in a DVC project: run this inside a clone of the project")
    chosen = {"memory_mb": args.mem, "minutes": args.time, "partition": args.partition, "account": args.account}
    missing = fan_out(root, chosen, args.cpus_per_task, args.git_url, args.workdir, args.poll, not args.no_collect)
    if missing:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
