"""Every command people type, with each mistake they make: one line naming the flag or the key file, exit code 2,
no traceback, and nothing done first. Run in-process through each `main` (the code a process runs), and the
issue's own example as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from denselab.tools import access, profile, pull, slurm
from tests.conftest import ROOT

# (entry point, argv, the line it prints). A bad value is refused by argparse before any work starts: `slurm`
# would otherwise run `dvc repro --pull` first, `pull` would fetch.
MISTAKES = [
    (
        pull,
        ["--retries", "-1", "report"],
        "error: python -m denselab.tools.pull: argument --retries: must be at least 0, got -1",
    ),
    (pull, ["--retries", "11"], "error: python -m denselab.tools.pull: argument --retries: must be at most 10, got 11"),
    (
        pull,
        ["--retries", "three"],
        "error: python -m denselab.tools.pull: argument --retries: expected a whole number, got 'three'",
    ),
    (pull, ["--retries"], "error: python -m denselab.tools.pull: argument --retries: expected one argument"),
    (pull, ["--retry", "3"], "error: python -m denselab.tools.pull: unrecognized arguments: --retry"),
    (
        slurm,
        ["--cpus-per-task", "0"],
        "error: python -m denselab.tools.slurm: argument --cpus-per-task: must be at least 1, got 0",
    ),
    (
        slurm,
        ["--cpus-per-task", "2.5"],
        "error: python -m denselab.tools.slurm: argument --cpus-per-task: expected a whole number, got '2.5'",
    ),
    (slurm, ["--mem", "-512"], "error: python -m denselab.tools.slurm: argument --mem: must be at least 1, got -512"),
    (
        slurm,
        ["--mem", "4G"],
        "error: python -m denselab.tools.slurm: argument --mem: expected a whole number, got '4G'",
    ),
    (slurm, ["--time", "0"], "error: python -m denselab.tools.slurm: argument --time: must be at least 1, got 0"),
    (
        slurm,
        ["--time", "1:00"],
        "error: python -m denselab.tools.slurm: argument --time: expected a whole number, got '1:00'",
    ),
    (slurm, ["--poll", "0"], "error: python -m denselab.tools.slurm: argument --poll: must be more than 0.0, got 0"),
    (
        slurm,
        ["--poll", "nan"],
        "error: python -m denselab.tools.slurm: argument --poll: expected a finite number, got nan",
    ),
    (
        slurm,
        ["--poll", "inf"],
        "error: python -m denselab.tools.slurm: argument --poll: expected a finite number, got inf",
    ),
    (slurm, ["--partition"], "error: python -m denselab.tools.slurm: argument --partition: expected one argument"),
    (profile, ["full_study", "extra"], "error: python -m denselab.tools.profile: unrecognized arguments: extra"),
]


def _one_line(capsys, call) -> str:
    with pytest.raises(SystemExit) as stopped:
        call()
    out = capsys.readouterr()
    assert stopped.value.code == 2 and out.out == "", out
    (line,) = out.err.splitlines()
    return line


@pytest.mark.parametrize(("module", "argv", "said"), MISTAKES, ids=[" ".join(m[1]) for m in MISTAKES])
def test_a_bad_value_is_one_line_naming_the_flag_before_any_work(module, argv, said, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no project here: had the command started its work, it would say so instead
    assert _one_line(capsys, lambda: module.main(argv)) == said


def test_the_issues_example_as_a_process_prints_one_line_and_no_traceback(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "denselab.tools.pull", "--retries", "-1", "report"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == "error: python -m denselab.tools.pull: argument --retries: must be at least 0, got -1\n"


def _keys(folder: Path) -> dict[str, Path]:
    """Key files a student might name: one with a passphrase, a public half, a missing one, a folder."""
    folder.mkdir()
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-f"]
    subprocess.run([*keygen, str(folder / "with_passphrase"), "-N", "lab201"], check=True)
    return {
        "passphrase": folder / "with_passphrase",
        "public half": folder / "with_passphrase.pub",
        "missing": folder / "id_class",
        "a folder": folder,
    }


def _said_of(kind: str, key: Path) -> str:
    return {
        "passphrase": f"error: {key}: this key has a passphrase and DVC is not given it: use a key without one, or let "
        "DVC ask for it (`dvc remote modify --local <remote> ask_passphrase true`)",
        "public half": f"error: {key}: not a private key (Invalid private key); the remote's keyfile must name the "
        "private half of the key",
        "missing": f"error: {key}: no such key file (the remote's keyfile)",
        "a folder": f"error: {key}: cannot read this key file (Is a directory)",
    }[kind]


@pytest.mark.e2e
def test_a_key_that_cannot_be_read_is_one_line_naming_the_key_file(tmp_path, capsys, monkeypatch):
    """`denselab.tools.access` reads the key before connecting; `denselab.tools.pull` when DVC fails (here: nothing listens on
    the remote's port), instead of DVC's "unexpected error"."""
    project = tmp_path / "clone"
    project.mkdir()
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q", "--no-scm"], cwd=project, check=True)
    subprocess.run([*dvc, "remote", "add", "-d", "class", "ssh://lab@127.0.0.1:9/srv/cache"], cwd=project, check=True)
    (project / "report.html").write_text("<p>the report</p>")
    subprocess.run([*dvc, "add", "-q", "report.html"], cwd=project, check=True)
    (project / "report.html").unlink()
    monkeypatch.chdir(project)
    for kind, key in _keys(tmp_path / "keys").items():
        subprocess.run([*dvc, "remote", "modify", "--local", "class", "keyfile", str(key)], cwd=project, check=True)
        assert _one_line(capsys, lambda: access.main([str(project)])) == _said_of(kind, key), kind
        assert _one_line(capsys, lambda: pull.main(["report.html", "--retries", "0"])) == _said_of(kind, key), kind
