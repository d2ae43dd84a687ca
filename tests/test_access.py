"""The one-line check of what a clone may do on its DVC remote (denselab.tools.access), against a real OpenSSH server
on loopback: the teacher's key, the read-only student's, a stranger's, and the server stopped."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from denselab.core.remote import redacted
from denselab.tools import access
from tests.conftest import ROOT
from tests.sshd import NEEDS_SSHD, ssh_server


def _project(folder: Path, url: str, keyfile: Path, home: Path) -> dict[str, str]:
    """A DVC project whose default remote 'class' is `url`, reached with `keyfile`; the environment to run it in."""
    # The files `dvc init --no-scm`, `dvc remote add -d class URL` and `dvc remote modify --local class keyfile KEY`
    # write (three DVC processes for each of the test's projects).
    (folder / ".dvc").mkdir(parents=True)
    (folder / ".dvc" / "config").write_text(
        f"[core]\n    no_scm = True\n    remote = class\n['remote \"class\"']\n    url = {url}\n"
    )
    (folder / ".dvc" / "config.local").write_text(f"['remote \"class\"']\n    keyfile = {keyfile}\n")
    return {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}


def _check(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "denselab.tools.access"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.e2e
@NEEDS_SSHD
def test_each_key_gets_one_line_naming_the_remote_and_what_it_may_do(tmp_path, monkeypatch):
    """The check as a user runs it, for each key and with the server down; then its fallback through DVC's
    command line (when DVC's Python API is not the one it knows), which tells reading from not reading."""
    with ssh_server(tmp_path / "server") as server:
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "known_hosts").write_text(server.known_hosts.read_text())
        (server.storage / "files" / "md5").mkdir(parents=True)
        stranger = tmp_path / "stranger_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
        keys = {**server.keys, "stranger": stranger}
        urls = {"teacher": server.url("teacher"), "student": server.url("student"), "stranger": server.url("student")}
        out = {}
        for who, key in keys.items():
            env = _project(tmp_path / who, urls[who], key, home)
            out[who] = _check(tmp_path / who, env)
        monkeypatch.setenv("HOME", str(home))
        by_cli = {who: access.check_with_dvc_cli(tmp_path / who) for who in ("student", "stranger")}
        probes = list(server.storage.glob(access.PROBE_PREFIX + "*"))
        server.stop()
        out["stopped"] = _check(tmp_path / "teacher", env)
        by_cli["stopped"] = access.check_with_dvc_cli(tmp_path / "teacher")

    urls["stopped"] = urls["teacher"]
    said = {}
    for who, done in out.items():
        shown = redacted(urls[who])  # ssh://127.0.0.1:PORT/...: the line names no user
        lines = done.stdout.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"the DVC remote 'class' ({shown}): "), (who, done.stdout)
        assert "Traceback" not in done.stderr, (who, done.stderr)
        said[who] = done.stdout.split(f"({shown}): ", 1)[1].strip()
    assert out["teacher"].returncode == 0 and said["teacher"].startswith("may read and write"), said
    assert out["student"].returncode == 0 and said["student"].startswith("may read, may not write"), said
    assert out["stranger"].returncode == 1 and said["stranger"].startswith("the server refused this clone's key"), said
    assert out["stopped"].returncode == 1 and said["stopped"].startswith("cannot connect"), said
    assert not probes, "the teacher's probe was left on the server"
    assert by_cli["student"] == (True, "can be read (write access not checked)"), by_cli
    assert not by_cli["stranger"][0] and by_cli["stranger"][1].startswith("the server refused this clone's key"), by_cli
    assert not by_cli["stopped"][0] and "Connect call failed" in by_cli["stopped"][1], by_cli


def _sftp(server, who: str, command: str) -> tuple[bool, str]:
    """One SFTP command as `who` logs in with their key (OpenSSH's own client, in batch mode): whether it worked,
    and what the client said."""
    done = subprocess.run(
        [
            *("sftp", "-b", "-", "-i", str(server.keys[who]), "-P", str(server.port)),
            *("-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={server.known_hosts}"),
            f"{server.users[who]}@127.0.0.1",
        ],
        input=command + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return done.returncode == 0, " ".join(done.stderr.split())


@pytest.mark.e2e
@NEEDS_SSHD
def test_a_students_key_reads_the_class_cache_and_nothing_else_and_writes_nothing(tmp_path):
    """docs/class.md's recipe against a real sshd: the students' account is confined to the folder that holds the
    class's cache (`ChrootDirectory`) and runs a read-only SFTP server there (`ForceCommand internal-sftp -R`). A
    student fetches the cache's files, and nothing else of the server: not its users, not the teacher's home,
    not the keys that let the students in; and writes nothing. The teacher still writes."""
    local = tmp_path / "fetched"
    (local / "new.txt").parent.mkdir()
    (local / "new.txt").write_text("a student's result\n")
    with ssh_server(tmp_path / "server") as server:
        (server.storage / "files" / "md5" / "ab").mkdir(parents=True)
        (server.storage / "files" / "md5" / "ab" / "cdef").write_text("<p>the report</p>\n")  # as a push leaves it
        teachers_home = pwd.getpwnam(server.users["teacher"]).pw_dir
        tries = {
            "the class's cache": f"get /cache/files/md5/ab/cdef {local / 'report'}",
            "the server's users": f"get /etc/passwd {local / 'passwd'}",
            "the teacher's home": f"ls {teachers_home}",
            "the students' authorized_keys": f"get {server.served / 'keys' / server.users['student']} {local / 'keys'}",
            "the same, by its path in the students' folder": f"get /../keys/{server.users['student']} {local / 'keys'}",
            "a new file in the cache": f"put {local / 'new.txt'} /cache/files/md5/ab/new",
            "a new folder": "mkdir /cache/files/md5/cd",
            "removing a file": "rm /cache/files/md5/ab/cdef",
        }
        student = {what: _sftp(server, "student", command) for what, command in tries.items()}
        teacher = _sftp(server, "teacher", f"put {local / 'new.txt'} {server.storage / 'files' / 'md5' / 'ab' / 'new'}")
        left = sorted(p.name for p in (server.storage / "files" / "md5" / "ab").iterdir())
    assert student.pop("the class's cache") == (True, "")
    assert (local / "report").read_text() == "<p>the report</p>\n"
    refused = {what: said for what, (worked, said) in student.items() if not worked}
    assert refused.keys() == student.keys(), student
    assert not {p.name for p in local.iterdir()} & {"passwd", "keys"}
    for what in ("the server's users", "the teacher's home", "the students' authorized_keys"):
        assert "No such file or directory" in refused[what] or "not found" in refused[what], (what, refused[what])
    for what in ("a new file in the cache", "a new folder", "removing a file"):
        assert "Permission denied" in refused[what], (what, refused[what])
    assert teacher == (True, "")
    assert left == ["cdef", "new"]


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
