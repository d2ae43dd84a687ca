"""The seeds study's runs over a Slurm cluster: one job array of the runs DVC's run-cache lacks, then the page.

    python -m denselab.slurm [--partition P] [--account A] [--time MINUTES] [--mem MB] [--cpus-per-task N]

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
estimated from its exercise (`denselab.resources`, as `validate` checks memory); the largest of the array's runs
sets them. No stage imports this module: it is a command for people.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from denselab.cli import StageError, argument_parser, bounded, stage_main
from denselab.config import PARAMS_FILE, Params, load_params
from denselab.remote import dvc_root, redacted
from denselab.resources import input_size, training_memory, training_seconds

# What a task's DVC and Python hold beside the training process (measured: `dvc repro` about 0.3 GB, `dvc push`
# less), and what a task spends besides training: cloning, pulling the arrays, pushing the run.
TASK_BYTES = 512 * 2**20
TASK_SECONDS = 600
MEMORY_STEP_MB = 256
DONE = "denselab: done"  # a task's last line when its run is pushed
JOB_NAME = "denselab-study"
# The comment every array carries, then its project and commit: how a second command finds a first one's array.
COMMENT = "denselab-study"
# Asking Slurm's controller again when it does not answer (restarting, failing over, overloaded): waits of 2, 4, 8,
# 16 and 32 s, a minute at most, before the command gives up watching (the array goes on without it).
SQUEUE_TRIES = 6
SQUEUE_FIRST_WAIT = 2.0
# A task's work: fetch the commit, build its one run, push it, remove the clone. Its log says how long each step
# took, so that a teacher can tell the cluster's overhead from the training. It runs on bash 4.4 (RHEL 8 and its
# kin) as on 5: times come from date(1), as bash 4 has no $EPOCHREALTIME. The Git URL, which may carry a token,
# is not in it (slurmctld keeps the script): git reads it from origin.gitconfig, readable by the user alone, so
# that it is on no command line either, which any user of a node can list.
TASK_SCRIPT = """\
#!/bin/bash
# One run of DenseLab's seeds study, as a task of a Slurm job array (written by python -m denselab.slurm).
set -euo pipefail
job={job}
stage=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$job/runs.txt")
clone="$job/clone-$SLURM_ARRAY_JOB_ID-$SLURM_ARRAY_TASK_ID"
trap 'rm -rf "$clone"' EXIT
trap 'echo "denselab: $stage stopped by Slurm (cancelled, out of time, or its node went down)"; exit 143' TERM
seconds_since() {{
  LC_NUMERIC=C awk -v start="$1" -v end="$(date +%s.%N)" 'BEGIN {{ printf "%.1f", end - start }}'
}}
step() {{
  local name=$1 start
  start=$(date +%s.%N)
  shift
  "$@"
  echo "denselab: $name $(seconds_since "$start") s"
}}
fetch_origin() {{
  git init --quiet "$clone"
  git -C "$clone" config include.path "$job/origin.gitconfig"
  git -C "$clone" fetch --quiet origin
}}
echo "denselab: $stage on $(hostname), task $SLURM_ARRAY_TASK_ID of job $SLURM_ARRAY_JOB_ID"
step clone fetch_origin
cd "$clone"
step checkout git checkout --quiet {commit}
step repro {python} -m dvc repro --pull "$stage"
step push {python} -m dvc push --run-cache "$stage"
echo "{done} $stage"
"""


@dataclass(frozen=True)
class Request:
    """What each task of the array asks Slurm for."""

    cpus: int
    memory_mb: int
    minutes: int
    partition: str | None = None
    account: str | None = None

    def sbatch_options(self) -> list[str]:
        options = [f"--cpus-per-task={self.cpus}", f"--mem={self.memory_mb}M", f"--time={self.minutes}"]
        options += [f"--partition={self.partition}"] if self.partition else []
        options += [f"--account={self.account}"] if self.account else []
        return options


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


def _run(args: Sequence[str], cwd: Path, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, capture_output=capture, text=True, check=False)


def _dvc_or_stop(args: Sequence[str], cwd: Path, what: str) -> None:
    """Run DVC with its output shown (downloads and pushes take a while); stop naming `what` when it fails."""
    print(f"denselab: {what}: dvc {' '.join(args)}", file=sys.stderr, flush=True)
    if _run([sys.executable, "-m", "dvc", *args], cwd, capture=False).returncode != 0:
        raise StageError(f"{what} failed (`dvc {' '.join(args)}`, its error above)")


def pushed_commit(root: Path, git_url: str) -> str:
    """HEAD's commit, once the Git remote the tasks clone holds it and the study's inputs are committed; else a
    StageError saying what to do."""
    commit = _run(["git", "rev-parse", "HEAD"], root).stdout.strip()
    # Outputs (dvc.lock, reports/, data/) may differ: the tasks rebuild them. Anything else they would not see.
    changed = [
        line[3:]
        for line in _run(["git", "status", "--porcelain", "--untracked-files=no"], root).stdout.splitlines()
        if not re.match(r"(dvc\.lock$|reports/|data/)", line[3:])
    ]
    if changed:
        raise StageError(
            f"{', '.join(changed)}: changed since commit {commit[:7]}, and the tasks build the commit: "
            "commit and push first (`git commit -am ...`, `git push`)"
        )
    tips = _run(["git", "ls-remote", git_url], root)
    if tips.returncode != 0:
        raise StageError(f"cannot reach the Git remote {redacted(git_url)}: {redacted(tips.stderr.strip())}")
    for tip in {line.split()[0] for line in tips.stdout.splitlines() if line.strip()}:
        if tip == commit or _run(["git", "merge-base", "--is-ancestor", commit, tip], root).returncode == 0:
            return commit
    raise StageError(
        f"commit {commit[:7]} is not on {redacted(git_url)}, which the tasks clone: push it first (`git push`)"
    )


def git_config_value(text: str) -> str:
    """`text` as a quoted value of a Git config file (`#` and `;` start a comment in a bare one)."""
    if any(c in text for c in "\n\r\0"):
        raise StageError("the Git URL has a line break in it")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write `text` to a new file that only its owner may read (and, with mode 0o700, run)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)  # os.open's mode passes through the umask, which may not clear what it should


def write_job(folder: Path, runs: Sequence[str], git_url: str, commit: str, python: str) -> Path:
    """The array's files in `folder`, a new folder only its owner may enter (the URL may carry a token): the runs,
    one per line (task i runs line i + 1), the Git remote the tasks fetch (origin.gitconfig), the task's script,
    and the folder its logs go in. Returns the script."""
    folder = folder.absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)
    (folder / "logs").mkdir(mode=0o700)
    _private(folder / "runs.txt", "".join(f"{name}\n" for name in runs))
    refspecs = "\tfetch = +refs/heads/*:refs/remotes/origin/*\n\tfetch = +refs/tags/*:refs/tags/*\n"
    _private(folder / "origin.gitconfig", f'[remote "origin"]\n\turl = {git_config_value(git_url)}\n{refspecs}')
    script = folder / "task.sh"
    text = TASK_SCRIPT.format(job=shlex.quote(str(folder)), commit=commit, python=shlex.quote(python), done=DONE)
    _private(script, text, 0o700)
    return script


def last_line(log: Path) -> str:
    """A task's log's last line (Slurm's own, when it cancelled or killed the task), or why there is none."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return f"no log ({log} not written: the task never started)"
    return lines[-1] if lines else "its log is empty"


def project_key(git_url: str) -> str:
    """A short name of the project the tasks clone, the same for every clone of it and free of any token."""
    plain = redacted(git_url).rstrip("/").removesuffix(".git")
    return hashlib.sha256(plain.encode()).hexdigest()[:12]


def submit(script: Path, count: int, request: Request, root: Path, project: str, commit: str) -> str:
    """Submit the array of `count` tasks, marked with `project` and `commit` (its comment); return its job id."""
    args = [
        "sbatch",
        "--parsable",
        f"--array=0-{count - 1}",
        f"--job-name={JOB_NAME}",
        f"--comment={COMMENT} {project} {commit}",
        f"--output={script.parent / 'logs' / '%a.log'}",
        *request.sbatch_options(),
        str(script),
    ]
    out = _run(args, root)
    if out.returncode != 0:
        raise StageError(f"sbatch refused the array: {redacted(out.stderr.strip() or out.stdout.strip())}")
    return out.stdout.strip().split(";")[0]


class ControllerSilent(Exception):
    """Slurm's controller did not answer squeue, asked SQUEUE_TRIES times."""


def squeue(args: Sequence[str], root: Path, sleep: Callable[[float], None] = time.sleep) -> str:
    """squeue's output; asked again, waiting longer each time, while the controller does not answer (a restart,
    a failover); ControllerSilent when it never does. A job Slurm no longer knows is no job, not a failure."""
    wait = SQUEUE_FIRST_WAIT
    for attempt in range(1, SQUEUE_TRIES + 1):
        out = _run(["squeue", *args], root)
        if out.returncode == 0 or "Invalid job id" in out.stderr:
            return out.stdout if out.returncode == 0 else ""
        error = " ".join(out.stderr.split()) or f"exit code {out.returncode}"
        if attempt == SQUEUE_TRIES:
            raise ControllerSilent(f"squeue failed {SQUEUE_TRIES} times, the last: {error}")
        print(f"denselab: squeue failed ({error}); asking again in {wait:g} s", file=sys.stderr, flush=True)
        sleep(wait)
        wait *= 2
    raise ControllerSilent("squeue was not asked")  # SQUEUE_TRIES < 1


def live_array(project: str, commit: str, root: Path, sleep: Callable[[float], None] = time.sleep) -> str | None:
    """The job id of this user's array still queued or running for the same project and commit, if there is one."""
    user = pwd.getpwuid(os.getuid()).pw_name
    try:
        out = squeue(["--noheader", f"--user={user}", f"--name={JOB_NAME}", "--format=%F|%k"], root, sleep)
    except ControllerSilent as exc:
        raise StageError(f"cannot ask Slurm which arrays are running ({exc}): try again later") from None
    for line in out.splitlines():
        job, _, comment = line.strip().partition("|")
        if comment.split() == [COMMENT, project, commit]:
            return job
    return None


def task_states(job: str, root: Path) -> dict[int, str]:
    """Each ended task's state as Slurm keeps it for a few minutes (COMPLETED, FAILED, CANCELLED, TIMEOUT,
    OUT_OF_MEMORY...), by array index; empty where Slurm no longer says."""
    out = _run(["scontrol", "--oneliner", "show", "job", job], root)
    found = re.findall(r"\bArrayTaskId=(\d+)\b.*?\bJobState=(\S+)", out.stdout) if out.returncode == 0 else []
    return {int(index): state for index, state in found}


def wait(job: str, runs: Sequence[str], logs: Path, root: Path, poll: float, sleep: Callable[[float], None]) -> None:
    """Wait until no task of the array is queued or running; print a line as each one ends."""
    ended: set[int] = set()
    while True:
        try:
            out = squeue(["--noheader", "--array", f"--jobs={job}", "--format=%K"], root, sleep)
        except ControllerSilent as exc:
            raise StageError(
                f"{exc}. Job {job} goes on without this command watching: `squeue --jobs={job}` shows it, "
                f"`scancel {job}` stops it; once it has ended, run this again to collect its runs"
            ) from None
        queued = {int(k) for k in re.findall(r"\d+", out)}
        newly = sorted(set(range(len(runs))) - queued - ended)
        states = task_states(job, root) if newly else {}
        for index in newly:
            ended.add(index)
            line = last_line(logs / f"{index}.log")
            state = f" ({states[index]})" if index in states else ""
            said = "pushed" if line.startswith(DONE) else f"failed{state}: {line}"
            print(f"denselab: [{len(ended)}/{len(runs)}] {runs[index]} {said}", file=sys.stderr, flush=True)
        if len(ended) == len(runs):
            return
        sleep(poll)


def still_missing(runs: Sequence[str], recorded: set[str] | None, logs: Path) -> list[str]:
    """Those of the array's `runs` (task i ran runs[i]) that did not reach the run-cache: by DVC's lookup
    (`recorded_runs`), or, where this DVC has none, by each task's log, which ends with DONE once its run is
    pushed."""
    if recorded is not None:
        return [name for name in runs if name not in recorded]
    return [name for i, name in enumerate(runs) if not last_line(logs / f"{i}.log").startswith(DONE)]


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
        origin = _run(["git", "remote", "get-url", "origin"], root)
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
