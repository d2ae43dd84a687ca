"""The one-line check of what a clone may do on its DVC remote (denselab.access), against a real OpenSSH server
on loopback: the teacher's key, the read-only student's, a stranger's, and the server stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from denselab import access
from denselab.remote import redacted
from tests.conftest import ROOT
from tests.sshd import ssh_server


def _project(folder: Path, url: str, keyfile: Path, home: Path) -> dict[str, str]:
    """A DVC project whose default remote 'class' is `url`, reached with `keyfile`; the environment to run it in."""
    folder.mkdir()
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}
    for args in (
        ("init", "--no-scm", "-q"),
        ("remote", "add", "-d", "class", url),
        ("remote", "modify", "--local", "class", "keyfile", str(keyfile)),
    ):
        subprocess.run([sys.executable, "-m", "dvc", *args], cwd=folder, env=env, check=True, capture_output=True)
    return env


def _check(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "denselab.access"], cwd=project, env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.e2e
def test_each_key_gets_one_line_naming_the_remote_and_what_it_may_do(tmp_path, monkeypatch):
    """The check as a user runs it, for each key and with the server down; then its fallback through DVC's
    command line (when DVC's Python API is not the one it knows), which tells reading from not reading."""
    with ssh_server(tmp_path / "server") as server:
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "known_hosts").write_text(server.known_hosts.read_text())
        storage = server.home / "class-cache"
        (storage / "files" / "md5").mkdir(parents=True)
        url = server.url(storage)
        stranger = tmp_path / "stranger_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
        keys = {**server.keys, "stranger": stranger}
        out = {}
        for who, key in keys.items():
            env = _project(tmp_path / who, url, key, home)
            out[who] = _check(tmp_path / who, env)
        monkeypatch.setenv("HOME", str(home))
        by_cli = {who: access.check_with_dvc_cli(tmp_path / who) for who in ("student", "stranger")}
        server.stop()
        out["stopped"] = _check(tmp_path / "teacher", env)
        by_cli["stopped"] = access.check_with_dvc_cli(tmp_path / "teacher")

    shown = redacted(url)  # ssh://127.0.0.1:PORT/...: the line names no user
    assert shown != url
    for who, done in out.items():
        lines = done.stdout.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"the DVC remote 'class' ({shown}): "), (who, done.stdout)
        assert "Traceback" not in done.stderr, (who, done.stderr)
    said = {who: done.stdout.split(f"({shown}): ", 1)[1].strip() for who, done in out.items()}
    assert out["teacher"].returncode == 0 and said["teacher"].startswith("may read and write"), said
    assert out["student"].returncode == 0 and said["student"].startswith("may read, may not write"), said
    assert out["stranger"].returncode == 1 and said["stranger"].startswith("the server refused this clone's key"), said
    assert out["stopped"].returncode == 1 and said["stopped"].startswith("cannot connect"), said
    assert not list(storage.glob(access.PROBE_PREFIX + "*")), "the teacher's probe was left on the server"
    assert by_cli["student"] == (True, "can be read (write access not checked)"), by_cli
    assert not by_cli["stranger"][0] and by_cli["stranger"][1].startswith("the server refused this clone's key"), by_cli
    assert not by_cli["stopped"][0] and "Connect call failed" in by_cli["stopped"][1], by_cli


def test_a_project_without_a_remote_is_told_how_to_add_one(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    done = _check(tmp_path, env)
    assert done.returncode == 1 and done.stdout.startswith("the DVC remote (none is set: `dvc remote add -d NAME URL`)")
    assert len(done.stdout.splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_folder_remote_may_be_read_and_written_and_keeps_no_probe(tmp_path):
    project, storage = tmp_path / "project", tmp_path / "storage"
    project.mkdir()
    storage.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in (("init", "--no-scm", "-q"), ("remote", "add", "-d", "shared", str(storage))):
        subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, env=env, check=True, capture_output=True)
    done = _check(project, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == f"the DVC remote 'shared' ({storage}): may read and write: `dvc pull` and `dvc push` work\n"
    assert not list(storage.iterdir())
