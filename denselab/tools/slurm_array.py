"""One Slurm job array of the study's runs: its files (the task script, which runs on bash 4.4 and 5, the runs it
builds, the Git remote it fetches, all readable by the user alone), its submission, and the wait for it, asking
Slurm's controller again when it does not answer. `denselab.tools.slurm` is the command that uses it."""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from denselab.core.cli import StageError
from denselab.core.remote import redacted

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
# One run of DenseLab's seeds study, as a task of a Slurm job array (written by python -m denselab.tools.slurm).
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


def run_command(args: Sequence[str], cwd: Path, capture: bool = True) -> subprocess.CompletedProcess:
    """Run a command in `cwd`, keeping what it printed (`capture`), whatever its exit code."""
    return subprocess.run(list(args), cwd=cwd, capture_output=capture, text=True, check=False)


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
    out = run_command(args, root)
    if out.returncode != 0:
        raise StageError(f"sbatch refused the array: {redacted(out.stderr.strip() or out.stdout.strip())}")
    return out.stdout.strip().split(";")[0]


class ControllerSilent(Exception):
    """Slurm's controller did not answer squeue, asked SQUEUE_TRIES times."""


def squeue(args: Sequence[str], root: Path, sleep: Callable[[float], None] = time.sleep) -> str:
    """squeue's output; asked again, waiting longer each time, while the controller does not answer (a restart,
    a failover); ControllerSilent when it never does. A job Slurm no longer knows is no job, not a failure."""
    wait, attempt = SQUEUE_FIRST_WAIT, 1
    while True:
        out = run_command(["squeue", *args], root)
        if out.returncode == 0 or "Invalid job id" in out.stderr:
            return out.stdout if out.returncode == 0 else ""
        error = " ".join(out.stderr.split()) or f"exit code {out.returncode}"
        if attempt >= SQUEUE_TRIES:
            raise ControllerSilent(f"squeue failed {SQUEUE_TRIES} times, the last: {error}")
        print(f"denselab: squeue failed ({error}); asking again in {wait:g} s", file=sys.stderr, flush=True)
        sleep(wait)
        wait, attempt = wait * 2, attempt + 1


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
    out = run_command(["scontrol", "--oneliner", "show", "job", job], root)
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
