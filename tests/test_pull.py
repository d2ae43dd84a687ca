"""The student's fetch: which failures it retries, how long it waits, and what it says when it gives up. Against a
real SSH server dropping connections: tests/test_pipeline.py (a class fetching at once)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from denselab.core.cli import StageError
from denselab.tools.pull import TRANSIENT, pull, retry_wait

# What DVC 3.67 printed when sshd dropped its connection past MaxStartups (the class tests' server log says so).
DROPPED = (
    "failed to connect to ssh (/srv/denselab/cache/files/md5) - Connection lost",
    "failed to connect to ssh (/srv/denselab/cache/files/md5) - [Errno 104] Connection reset by peer",
)
# ... and when the fault is not the connection's: retrying would not help.
LASTING = (
    "failed to connect to ssh (/srv/denselab/cache/files/md5) - Permission denied for user lab on host lab-server",
    "failed to pull data from the cloud - Checkout failed for following targets:",
    "failed to connect to ssh (/srv) - [Errno 111] Connect call failed ('127.0.0.1', 2222)",
)


@pytest.mark.parametrize("line", DROPPED)
def test_a_dropped_connection_is_retried(line):
    assert TRANSIENT.search(line)


@pytest.mark.parametrize("line", LASTING)
def test_a_refusal_or_a_missing_object_is_not(line):
    assert not TRANSIENT.search(line)


def test_waits_double_and_spread_students_by_half_either_way():
    assert [retry_wait(a, 2.0, draw=lambda: 0.5) for a in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert retry_wait(3, 2.0, draw=lambda: 0.0) == 4.0
    assert retry_wait(3, 2.0, draw=lambda: 1.0) == 12.0


@pytest.mark.e2e
def test_a_fetch_that_cannot_succeed_stops_at_once_naming_the_remote(tmp_path):
    """A clone whose remote lacks the objects it names: one try, no wait, one line that names the remote."""
    env = {**os.environ, "HOME": str(tmp_path)}

    def dvc(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "dvc", *args], cwd=tmp_path, env=env, check=True, capture_output=True)

    dvc("init", "--no-scm", "-q")
    (tmp_path / "report.html").write_text("<p>the report</p>")
    dvc("add", "-q", "report.html")
    dvc("remote", "add", "-d", "class", str(tmp_path / "empty-remote"))
    (tmp_path / "report.html").unlink()
    (tmp_path / ".dvc" / "cache").rename(tmp_path / "elsewhere")
    waits: list[float] = []
    with pytest.raises(StageError) as error:
        pull(["report.html"], tmp_path, sleep=waits.append)
    assert waits == []
    assert str(error.value) == (
        f"cannot fetch from the DVC remote 'class' ({tmp_path / 'empty-remote'}): "
        "it lacks files this commit names (has the teacher's `dvc push` finished?)"
    )
    assert not (tmp_path / "report.html").exists()
