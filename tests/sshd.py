"""A real OpenSSH server on loopback for the class-remote tests, set up as docs/class.md's recipe: the teacher's
account writes the class's cache; the students' account (another user) is confined by a `Match` block to a
root-owned folder holding only that cache (`ChrootDirectory`), where it runs nothing but a read-only SFTP server
(`ForceCommand internal-sftp -R`). Throwaway host and user keys; stopped at the end.

It needs root, as a real server does: sshd switches to each user, and confines the students only when it runs as
root. The tests run as the teacher (the user running them); the students' account is `nobody`, an unprivileged
account every Debian has (a real class server gives them one of their own, docs/class.md).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SFTP_SERVER = next(
    (p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server") if Path(p).is_file()),
    "/usr/lib/openssh/sftp-server",
)
STUDENTS = "nobody"
# sshd checks that the folder students are confined to, and every folder above it, is root's and writable by no
# one else: /tmp is everyone's, so the served files live in a root-owned folder (`served`), removed at the end.
SERVED_IN = Path("/srv")

NEEDS_SSHD = pytest.mark.skipif(
    not (Path(SSHD).is_file() and os.geteuid() == 0) and not os.environ.get("DENSELAB_REQUIRE_SSHD"),
    reason="needs Debian's openssh-server, and root (.ci/run installs it)",
)


@dataclass
class SshServer:
    """Where the server listens, who logs in, and the keys and known_hosts a client needs."""

    port: int
    users: dict[str, str]  # "teacher" (reads and writes the cache), "student" (reads it, confined)
    home: Path  # the server's own files: its config, host key and log
    served: Path  # root's: `class/` (the students' whole world: the cache) and `keys/` (each account's keys)
    keys: dict[str, Path]  # the clients' private keys: "teacher", "student"
    known_hosts: Path
    settings: str = ""  # sshd_config lines a test chose (`configure`)
    process: subprocess.Popen | None = None

    @property
    def storage(self) -> Path:
        """The class's DVC cache, as the server (and the teacher) sees it."""
        return self.served / "class" / "cache"

    def url(self, who: str) -> str:
        """The class remote's ssh:// URL for `who`: the teacher's names the cache's real path, a student's its path
        in the folder students are confined to."""
        path = self.storage if who == "teacher" else Path("/") / self.storage.relative_to(self.served / "class")
        return f"ssh://{self.users[who]}@127.0.0.1:{self.port}{path.as_posix()}"

    def write_config(self) -> None:
        (self.home / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.home / 'host_key'}\n"
            f"PidFile {self.home / 'sshd.pid'}\nAuthorizedKeysFile {self.served / 'keys'}/%u\nStrictModes no\n"
            "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            f"PermitRootLogin prohibit-password\nSubsystem sftp {SFTP_SERVER}\nLogLevel VERBOSE\n{self.settings}"
            # docs/class.md's block, last: sshd applies a Match to every line after it.
            f"Match User {self.users['student']}\n  ChrootDirectory {self.served / 'class'}\n"
            "  ForceCommand internal-sftp -R\n  AllowTcpForwarding no\n  X11Forwarding no\n  PermitTTY no\n"
        )

    def start(self) -> None:
        """Start sshd with the folder's config and wait until it accepts connections."""
        with open(self.home / "sshd.log", "a") as log:
            self.process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.home / "sshd_config")], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd stopped: {(self.home / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def configure(self, settings: str) -> None:
        """Restart the server, on the same port, with `settings` (sshd_config lines) in place of the ones it had."""
        self.settings = settings
        self.write_config()
        self.stop()
        self.start()

    def stop(self) -> None:
        """Stop the server as a crash would: the listener and every open session, at once (SIGKILL)."""
        if self.process is None:
            return
        for pid in [*_descendants(self.process.pid), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        self.process = None


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (sshd's per-connection processes and their SFTP servers), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@contextmanager
def ssh_server(folder: Path, settings: str = "") -> Iterator[SshServer]:
    """Start sshd on a free loopback port with keys made in `folder`, and `settings` (sshd_config lines) added to
    its configuration; stop it and remove what it served on exit."""
    if os.geteuid() != 0:
        pytest.fail("the class server's tests need root, as sshd does to confine the students (.ci/run runs as root)")
    folder.mkdir(parents=True, exist_ok=True)
    host = _keygen(folder / "host_key", "denselab test host")
    teacher = _keygen(folder / "teacher", "teacher")
    student = _keygen(folder / "student", "student")
    SERVED_IN.mkdir(exist_ok=True)
    served = Path(tempfile.mkdtemp(prefix="denselab-class-", dir=SERVED_IN))
    users = {"teacher": getpass.getuser(), "student": STUDENTS}
    try:
        (served / "class" / "cache").mkdir(parents=True)  # the cache is the teacher's, readable by all
        (served / "keys").mkdir()
        (served / "keys" / users["teacher"]).write_text(f"{teacher}\n")
        (served / "keys" / users["student"]).write_text(f"{student}\n")
        for path in [served, *served.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation folder
        known_hosts = folder / "known_hosts"
        server = SshServer(
            free_port(),
            users,
            folder,
            served,
            {"teacher": folder / "teacher", "student": folder / "student"},
            known_hosts,
            settings,
        )
        known_hosts.write_text(f"[127.0.0.1]:{server.port} {host.rsplit(' ', 1)[0]}\n")
        server.write_config()
        try:
            server.start()
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(served, ignore_errors=True)


@contextmanager
def pending_handshakes(server: SshServer, count: int) -> Iterator[list[socket.socket]]:
    """`count` clients that connect and never begin their handshake: sshd counts each as pending until it
    closes (on leaving the block, or at the server's LoginGraceTime), as it would a student's slow one."""
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(count)]
    try:
        yield held
    finally:
        for connection in held:
            connection.close()
