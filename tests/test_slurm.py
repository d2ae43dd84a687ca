"""denselab.slurm: what the array asks for, which commit its tasks build, what a failed task says. The fan-out itself
runs on a real Slurm in tests/test_pipeline.py (test_the_study_fans_out_over_slurm_...)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from denselab import slurm
from denselab.claim_tests import parse_with_claims
from denselab.cli import StageError


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


def test_without_the_lookup_a_run_is_missing_when_its_tasks_log_does_not_end_pushed(tmp_path):
    (tmp_path / "0.log").write_text("denselab: repro 7.5 s\ndenselab: push 0.8 s\ndenselab: done replicate@ex1-1\n")
    (tmp_path / "1.log").write_text("denselab: replicate@ex1-2 stopped by Slurm (cancelled, ...)\n")
    runs = ["replicate@ex1-1", "replicate@ex1-2", "replicate@ex1-3"]  # the third never started: no log
    assert slurm.still_missing(runs, None, tmp_path) == ["replicate@ex1-2", "replicate@ex1-3"]
    # With DVC's lookup, the run-cache decides, whatever a log says.
    assert slurm.still_missing(runs, {"replicate@ex1-2"}, tmp_path) == ["replicate@ex1-1", "replicate@ex1-3"]
