"""Fetching the arrays a training stage reads from the DVC remote (denselab.core.remote, through study.check): a
real DVC project with a real folder remote, the arrays pushed and then missing, as in a student's clone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from denselab.core.cli import StageError
from denselab.core.config import load_params
from denselab.core.layout import PREPARED
from denselab.core.remote import first_error
from denselab.data.arrays import array_hashes
from denselab.training import fingerprints as S
from tests.conftest import ROOT
from tests.sshd import NEEDS_SSHD, ssh_server


def dvc(*args: str, cwd) -> str:
    out = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout


def test_first_error_is_dvcs_error_line_without_its_prefixes():
    output = "Collecting\nERROR: unexpected error - Permission denied\n\nHaving any troubles? Hit us up\n"
    assert first_error(output) == "Permission denied"
    assert first_error("no error line\nthe last one\n") == "the last one"


@pytest.mark.e2e
def test_a_missing_array_is_fetched_from_the_remote_and_nothing_else(tmp_path, monkeypatch, capsys):
    project, remote = tmp_path / "project", tmp_path / "remote"
    project.mkdir()
    rng = np.random.default_rng(0)
    for variant in ("mnist_scaled", "mnist_raw"):
        (project / "prepared" / variant).mkdir(parents=True)
        for name in PREPARED.values():
            np.save(project / "prepared" / variant / name, rng.random((8, 4), dtype=np.float32))
    dvc("init", "--no-scm", "-q", cwd=project)
    dvc("add", "-q", "prepared/mnist_scaled", "prepared/mnist_raw", cwd=project)
    dvc("remote", "add", "-d", "class", str(remote), cwd=project)
    dvc("push", "-q", cwd=project)
    spec = load_params(ROOT / "params.yaml").exercises["ex3"]
    monkeypatch.chdir(project)
    found = S.fingerprint(
        "ex3", spec, project / "prepared" / "mnist_scaled", array_hashes(Path("prepared/mnist_scaled"))
    )
    found["folder"] = "prepared/mnist_scaled"  # as the stages have it: relative to the project
    expected = (project / "prepared/mnist_scaled/x_train.npy").read_bytes()
    # A student's clone: neither the arrays nor DVC's cache of them.
    for variant in ("mnist_scaled", "mnist_raw"):
        for name in PREPARED.values():
            (project / "prepared" / variant / name).unlink()
    subprocess.run(["rm", "-rf", str(project / ".dvc" / "cache")], check=True)

    again, folder = S.check(found)
    assert folder.as_posix() == "prepared/mnist_scaled" and again.inputs == "mnist_scaled"
    assert (project / "prepared/mnist_scaled/x_train.npy").read_bytes() == expected
    assert "ex3's arrays: fetching prepared/mnist_scaled/x_train.npy, " in capsys.readouterr().err
    # Only what the exercise reads came over: the other variant's arrays are neither here nor in the cache.
    assert not any((project / "prepared" / "mnist_raw").iterdir())
    cached = [p for p in (project / ".dvc" / "cache").rglob("*") if p.is_file() and not p.name.endswith(".dir")]
    assert len(cached) == len(PREPARED)

    # The remote gone: one line naming the remote, what could not be fetched and DVC's reason.
    for name in PREPARED.values():
        (project / "prepared" / "mnist_scaled" / name).unlink()
    subprocess.run(["rm", "-rf", str(project / ".dvc" / "cache"), str(remote)], check=True)
    with pytest.raises(StageError) as failed:
        S.check(found)
    message = str(failed.value)
    assert message.startswith("ex3's arrays: cannot fetch prepared/mnist_scaled/x_train.npy, ")
    assert f"from the DVC remote 'class' ({remote})" in message and "\n" not in message


@pytest.mark.e2e
@NEEDS_SSHD
def test_a_push_cut_off_by_the_server_completes_when_run_again(tmp_path):
    """The class server goes down in the middle of the teacher's push (a real sshd, killed with its sessions):
    the push fails, saying so; run again once the server is back, it completes and the remote holds every object."""
    project = tmp_path / "teacher"
    project.mkdir()
    # Enough files that the push is still going when the server goes, at its first one: 24 files of 1 MB.
    (project / "arrays").mkdir()
    for i in range(24):
        (project / "arrays" / f"{i}.npy").write_bytes(os.urandom(1 << 20))
    with ssh_server(tmp_path / "server") as server:
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "known_hosts").write_text(server.known_hosts.read_text())
        env = {**os.environ, "HOME": str(home)}

        def dvc(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "dvc", *args], cwd=project, env=env, capture_output=True, text=True, check=False
            )

        for args in (
            ("init", "--no-scm", "-q"),
            ("add", "-q", "arrays"),
            ("remote", "add", "-d", "class", server.url("teacher")),
            ("remote", "modify", "class", "keyfile", str(server.keys["teacher"])),
        ):
            assert dvc(*args).returncode == 0
        push = subprocess.Popen(
            [sys.executable, "-m", "dvc", "push"], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        storage = server.storage
        deadline = time.monotonic() + 120
        while not (storage.is_dir() and any(p.is_file() for p in storage.rglob("*"))):
            assert push.poll() is None and time.monotonic() < deadline, "the push ended before the server went down"
            time.sleep(0.02)
        server.stop()
        _, err = push.communicate(timeout=120)
        assert push.returncode != 0, err
        status = dvc("status", "--cloud")
        assert status.returncode != 0 or "new:" in status.stdout  # the remote lacks objects: unreachable or missing

        server.start()
        again = dvc("push")
        assert again.returncode == 0, again.stdout + again.stderr
        status = dvc("status", "--cloud")
        assert status.returncode == 0 and "Cache and remote 'class' are in sync" in status.stdout, status.stdout
        pushed = {p.name for p in storage.rglob("*") if p.is_file()}
        cached = {p.name for p in (project / ".dvc" / "cache").rglob("*") if p.is_file()}
        assert cached <= pushed and len(cached) == 25  # 24 files and the folder's manifest
