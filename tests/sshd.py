"""A real OpenSSH server on loopback for the class-remote tests: Debian's `sshd`, a throwaway host key, a teacher's
key that may write and a student's key that may only read (a forced read-only SFTP server), stopped at the end."""

from __future__ import annotations

import getpass
import os
import shutil
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


@dataclass(frozen=True)
class SshServer:
    """Where the server listens, who logs in, and the keys and known_hosts a client needs."""

    port: int
    user: str
    home: Path  # the folder the server's files live in
    keys: dict[str, Path]  # "teacher" (read and write), "student" (read-only SFTP)
    known_hosts: Path
    process: subprocess.Popen

    def url(self, path: Path) -> str:
        """An ssh:// URL of an absolute path on the server, as `dvc remote add` takes it."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path.as_posix()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@contextmanager
def ssh_server(folder: Path) -> Iterator[SshServer]:
    """Start sshd on a free loopback port with keys made in `folder`; stop it on exit."""
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
        f"Subsystem sftp {SFTP_SERVER}\nLogLevel VERBOSE\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation folder
    log = open(folder / "sshd.log", "w")  # noqa: SIM115 (closed below, after the server stops)
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host.rsplit(' ', 1)[0]}\n")
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"sshd stopped: {(folder / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield SshServer(
            port,
            getpass.getuser(),
            folder,
            {"teacher": folder / "teacher", "student": folder / "student"},
            known_hosts,
            process,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
