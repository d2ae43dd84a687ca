"""A real OpenSSH server on loopback for the class-remote tests: Debian's `sshd`, a throwaway host key, a teacher's
key that may write and a student's key that may only read (a forced read-only SFTP server), stopped at the end."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SFTP_SERVER = next(
    (p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server") if Path(p).is_file()),
    "/usr/lib/openssh/sftp-server",
)

SETTINGS_MARK = "# settings of the test\n"  # below it in sshd_config: the lines a test chose (`configure`)


@dataclass
class SshServer:
    """Where the server listens, who logs in, and the keys and known_hosts a client needs."""

    port: int
    user: str
    home: Path  # the folder the server's files live in
    keys: dict[str, Path]  # "teacher" (read and write), "student" (read-only SFTP)
    known_hosts: Path
    process: subprocess.Popen | None = None

    def url(self, path: Path) -> str:
        """An ssh:// URL of an absolute path on the server, as `dvc remote add` takes it."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path.as_posix()}"

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
        config = self.home / "sshd_config"
        base = config.read_text().split(SETTINGS_MARK)[0]
        config.write_text(f"{base}{SETTINGS_MARK}{settings}")
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
    its configuration; stop it on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    host = _keygen(folder / "host_key", "denselab test host")
    teacher = _keygen(folder / "teacher", "teacher")
    student = _keygen(folder / "student", "student")
    (folder / "authorized_keys").write_text(
        f"{teacher}\n"
        # The student's key runs nothing but an SFTP server that refuses every write.
        f'restrict,command="{SFTP_SERVER} -R" {student}\n'
    )
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\nPidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        f"Subsystem sftp {SFTP_SERVER}\nLogLevel VERBOSE\n{SETTINGS_MARK}{settings}"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation folder
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host.rsplit(' ', 1)[0]}\n")
    server = SshServer(
        port, getpass.getuser(), folder, {"teacher": folder / "teacher", "student": folder / "student"}, known_hosts
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


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
