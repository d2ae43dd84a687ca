"""denselab.slurm: the seeds study's runs as a job array on a real Slurm (tests/slurm.py), a folder as the DVC
remote and a bare Git repository as the origin the tasks clone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from denselab import slurm
from denselab.claim_tests import parse_with_claims
from denselab.cli import StageError
from tests.project import shared_study
from tests.slurm import installed, slurm_cluster

NEEDS_SLURM = pytest.mark.skipif(
    not (installed() and os.geteuid() == 0) and not os.environ.get("DENSELAB_REQUIRE_SLURM"),
    reason="needs Debian's slurmctld, slurmd, slurm-client and munge, and root (.ci/run installs them)",
)


def test_the_array_asks_for_the_largest_exercises_memory_and_time(params_data):
    params = parse_with_claims(params_data)
    ex3 = slurm.default_request(params, ["ex3"], cpus=2)
    both = slurm.default_request(params, ["ex3", "ex5"], cpus=2)
    assert both == slurm.default_request(params, ["ex5"], cpus=2)
    # ex5: 1.21 GB to train and 0.5 GB for DVC, in steps of 256 MB; 6 operations per weight (11.0 M) for each of
    # 40,000 training rows, 2 for each of 10,000 validation rows, 30 epochs, at 40 GFLOP/s a core on 2 cores
    # (1,074 s), plus 10 minutes.
    assert (both.memory_mb, both.minutes) == (1792, 28)
    assert (ex3.memory_mb, ex3.minutes) == (1536, 11)
    assert slurm.default_request(params, ["ex5"], cpus=8).minutes == 15
    assert both.sbatch_options() == ["--cpus-per-task=2", "--mem=1792M", "--time=28"]


def test_the_runs_are_the_study_matrix_in_dvc_yamls_order(params_data):
    params_data["study"] = {"seeds": [3, 1], "exercises": ["ex2", "ex1"]}
    names = [slurm.stage_name(e, s) for e, s in slurm.study_runs(parse_with_claims(params_data))]
    assert names == ["replicate@ex2-3", "replicate@ex2-1", "replicate@ex1-3", "replicate@ex1-1"]


def test_a_tasks_last_line_names_why_it_failed(tmp_path):
    log = tmp_path / "0.log"
    log.write_text("denselab: replicate@ex1-1 on node7\nslurmstepd: error: *** JOB 12 CANCELLED AT 2026 ***\n\n")
    assert slurm.last_line(log) == "slurmstepd: error: *** JOB 12 CANCELLED AT 2026 ***"
    assert slurm.last_line(tmp_path / "1.log").startswith("no log (")


def test_the_tasks_build_a_pushed_commit_so_an_unpushed_one_or_an_uncommitted_edit_is_refused(tmp_path):
    def git(*args: str, cwd: Path = tmp_path / "clone") -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
        env["GIT_COMMITTER_EMAIL"] = "t@t"
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout

    origin, clone = tmp_path / "origin.git", tmp_path / "clone"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    for name in ("params.yaml", "dvc.lock"):
        (clone / name).write_text("a: 1\n")
    git("add", "-A")
    git("commit", "-q", "-m", "one")
    with pytest.raises(StageError, match=r"^commit [0-9a-f]{7} is not on .*origin.git, which the tasks clone: push"):
        slurm.pushed_commit(clone, str(origin))
    git("push", "-q", "origin", "main")
    head = git("rev-parse", "HEAD").strip()
    (clone / "dvc.lock").write_text("b: 2\n")  # an output: the tasks rebuild it
    assert slurm.pushed_commit(clone, str(origin)) == head
    (clone / "params.yaml").write_text("a: 2\n")
    with pytest.raises(StageError, match=r"^params.yaml: changed since commit [0-9a-f]{7}, and the tasks build"):
        slurm.pushed_commit(clone, str(origin))


def test_without_dvcs_run_cache_lookup_every_run_counts_as_missing(tmp_path, monkeypatch):
    """`StageCache._load` is DVC's own: where a DVC lacks it, the fan-out submits every run (a run the remote has
    is then restored by its task, not trained) instead of guessing."""
    import dvc.stage.cache

    monkeypatch.delattr(dvc.stage.cache, "_can_hash")
    assert slurm.recorded_runs(tmp_path, ["replicate@ex1-1"]) is None
    monkeypatch.undo()
    monkeypatch.delattr(dvc.stage.cache.StageCache, "_load")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    assert slurm.recorded_runs(tmp_path, ["replicate@ex1-1"]) is None


@pytest.mark.e2e
@NEEDS_SLURM
@pytest.mark.xdist_group("slurm")  # a project and a cluster of its own
def test_the_study_fans_out_over_slurm_a_killed_run_is_named_and_resubmitted_alone(tmp_path):
    """A teacher's clone submits the study's four runs; one task is cancelled on purpose: the command names it with
    its log's last line and builds no page. Run again, it submits that run alone, then renders the page a
    one-machine `dvc repro` of the same commit renders (but for the lab's runs' seconds per epoch, which each machine
    measures as it trains them)."""
    project, origin = shared_study(tmp_path, "the study on a cluster")

    alone = tmp_path / "one-machine"
    project.run("git", "clone", "-q", str(origin), str(alone), cwd=tmp_path)
    project.run("dvc", "repro", cwd=alone)

    teacher = tmp_path / "login-node"
    project.run("git", "clone", "-q", str(origin), str(teacher), cwd=tmp_path)
    command = [sys.executable, "-m", "denselab.slurm", "--cpus-per-task", "1", "--poll", "0.5"]
    with slurm_cluster(tmp_path / "slurm", memory_mb=8192) as cluster:
        env = {**project.env, "SLURM_CONF": cluster.env["SLURM_CONF"]}
        log = tmp_path / "first.log"
        with open(log, "w") as out:
            first = subprocess.Popen(command, cwd=teacher, env=env, stdout=out, stderr=subprocess.STDOUT)
        job, logs = _submitted(first, log)
        victim = 2  # replicate@ex2-1: cancelled once its task is building
        _wait_for(lambda: "denselab: checkout" in _text(logs / f"{victim}.log"), first, log)
        assert cluster.run("scancel", f"{job}_{victim}").returncode == 0
        assert first.wait(timeout=600) == 1, _text(log)
        said = _text(log)
        page_before = (teacher / "reports/index.html").exists()
        second = subprocess.run(command, check=False, cwd=teacher, env=env, capture_output=True, text=True, timeout=900)
        again = second.stdout + second.stderr
        task_logs = {p.name: p.read_text() for p in Path(logs).glob("*.log")}

    print(said, again, sep="\n----\n")
    assert "4 runs (--cpus-per-task=1, --mem=1536M, --time=11)" in said, said
    pushed = re.findall(r"\[\d/4\] (replicate@\S+) pushed", said)
    assert sorted(pushed) == ["replicate@ex1-1", "replicate@ex1-2", "replicate@ex2-2"], said
    failed = re.findall(r"\[\d/4\] replicate@ex2-1 failed \(CANCELLED\): (.*)", said)
    assert failed == ["denselab: replicate@ex2-1 stopped by Slurm (cancelled, out of time, or its node went down)"]
    assert f"replicate@ex2-1 is missing: {failed[0]}" in said
    assert "1 of 4 runs failed; run this again to submit only those" in said
    assert not page_before  # no page from a study with a run missing

    assert second.returncode == 0, again
    assert "3 of 4 runs in the run-cache" in again and "job " in again and ": 1 run (" in again, again
    assert re.search(r"\[1/1\] replicate@ex2-1 pushed", again), again
    # Each task built its own run: the run's stage ran in its clone, no other training stage did.
    for name, text in task_logs.items():
        trained = set(re.findall(r"Running stage '((?:train|replicate)@[^']+)'", text))
        assert len(trained) <= 1, (name, trained)
    collected = set(re.findall(r"Running stage '([^']+)'", again))
    assert not {s for s in collected if s.startswith("replicate@")}, again
    assert len(re.findall(r"Stage 'replicate@ex\d-\d' is cached - skipping run", again)) == 4, again
    # The same page as the one machine's, every run's numbers and every figure alike; only the lab's own runs'
    # seconds per epoch differ, which each machine measured as it trained them.
    for result in ("reports/study.json", "reports/claims.json", "reports/metrics/ex1.json", "reports/metrics/ex2.json"):
        assert (teacher / result).read_bytes() == (alone / result).read_bytes(), result
    assert _untimed(teacher / "reports/index.html") == _untimed(alone / "reports/index.html")


def _untimed(page: Path) -> str:
    """A page with the seconds per epoch it shows blanked."""
    return re.sub(r"(<th>Seconds per epoch</th><td>)[\d.]+(</td>)", r"\1\2", page.read_text())


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _wait_for(ready, process: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting:\n{_text(log)}")
        time.sleep(0.2)


def _submitted(process: subprocess.Popen, log: Path) -> tuple[str, Path]:
    """The job id and the logs' folder the command printed when it submitted the array."""
    found: list[re.Match[str]] = []

    def seen() -> bool:
        found[:] = [m for m in [re.search(r"denselab: job (\d+): .*; logs in (\S+)", _text(log))] if m]
        return bool(found)

    _wait_for(seen, process, log)
    return found[0].group(1), Path(found[0].group(2))
