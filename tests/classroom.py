"""A class on one lab server, as the README's recipe sets it up: a teacher's built project pushed to a real sshd
(tests/sshd.py) and to a Git origin, and students who clone it, set their read-only key, and fetch the report
all at the same moment. For the class tests and the class-load benchmark."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from denselab.core.remote import first_error
from tests.fixtures import sha256
from tests.project import Project
from tests.sshd import SshServer, free_port

# What a student fetches to read the report and rerun an edited exercise (docs/class.md).
STUDENT_PULL = ("report", "explain", "describe", "aggregate", "judge", "replicate")
REPORT = Path("reports/index.html")
# The lab server's sshd_config lines docs/class.md recommends for a class (the class-load benchmark measures them
# against the stock ones): up to 100 handshakes pending before sshd starts dropping new connections (stock: 10),
# and headroom over the 10 channels that DVC's SSH client opens on one connection (stock: 10).
RECOMMENDED_SSHD = "MaxStartups 100:30:200\nMaxSessions 20\n"
# The README's student fetch, and DVC's own.
FETCH = (sys.executable, "-m", "denselab.tools.pull", *STUDENT_PULL)
DVC_PULL = (sys.executable, "-m", "dvc", "pull", *STUDENT_PULL)


@dataclass
class Fetch:
    """How one student's fetch went."""

    student: str
    seconds: float
    returncode: int
    retries: int  # the retry lines the fetch printed
    error: str  # the fetch's error line; "" when it worked
    commit: str  # the commit the student's clone is at
    report: str | None  # sha256 of the student's report, None when there is none
    cached: int  # bytes in the student's DVC cache

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.report is not None


class Classroom:
    """The teacher's project, served: its results on the SSH server, its commits on a bare Git origin."""

    def __init__(self, teacher: Project, server: SshServer, folder: Path):
        self.teacher, self.server, self.folder = teacher, server, folder
        self.origin = folder / "origin.git"
        home = folder / "home"  # the users' ~/.ssh: the server's host key, as a teacher hands it out
        (home / ".ssh").mkdir(parents=True, exist_ok=True)
        shutil.copy(server.known_hosts, home / ".ssh" / "known_hosts")
        self.env = {**teacher.env, "HOME": str(home)}
        # The repository names the students' URL; the teacher's own, and key, stay in the teacher's clone.
        teacher.run("dvc", "remote", "add", "-d", "class", server.url("student"))
        teacher.commit("the class remote")
        teacher.run("dvc", "remote", "modify", "--local", "class", "url", server.url("teacher"))
        teacher.run("dvc", "remote", "modify", "--local", "class", "keyfile", str(server.keys["teacher"]))
        teacher.run("git", "init", "-q", "--bare", "-b", "main", str(self.origin), cwd=folder)
        self.publish()

    def publish(self) -> None:
        """The teacher's results to the server, then the commit to the origin: a student who clones the commit
        finds every object it names."""
        self.teacher.run("dvc", "push", "--run-cache", env=self.env)
        self.teacher.run("git", "push", "-q", str(self.origin), "HEAD:main")

    def enrol(self, name: str, gate: Gate | None = None) -> Path:
        """A student's clone with the read-only key, as `dvc remote modify --local class keyfile KEY` writes it;
        through `gate`, when given, in place of the server's own port."""
        clone = self.folder / name
        self.teacher.run("git", "clone", "-q", str(self.origin), str(clone), cwd=self.folder)
        local = f"['remote \"class\"']\n    keyfile = {self.server.keys['student']}\n"
        if gate is not None:
            url = self.server.url("student").replace(f":{self.server.port}/", f":{gate.port}/")
            local += f"    url = {url}\n"
        (clone / ".dvc" / "config.local").write_text(local)
        return clone

    def gate(self, size: int) -> Gate:
        """A gate in front of the server for a class of `size` (see Gate), its port known to the students' ssh."""
        gate = Gate(self.server.port, size)
        known_hosts = Path(self.env["HOME"]) / ".ssh" / "known_hosts"
        key = known_hosts.read_text().splitlines()[0].split(" ", 1)[1]
        with known_hosts.open("a") as f:
            f.write(f"[127.0.0.1]:{gate.port} {key}\n")
        return gate

    def start(self, clone: Path, command: tuple[str, ...] = FETCH) -> subprocess.Popen:
        log = open(clone.parent / f"{clone.name}.log", "w+")  # noqa: SIM115  (closed by `finish`)
        proc = subprocess.Popen(command, cwd=clone, env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True)
        proc.log, proc.started = log, time.monotonic()  # type: ignore[attr-defined]
        return proc

    def finish(self, clone: Path, proc: subprocess.Popen, timeout: float = 900) -> Fetch:
        """Wait for a student's fetch and say how it went."""
        returncode = proc.wait(timeout=timeout)
        seconds = time.monotonic() - proc.started  # type: ignore[attr-defined]
        proc.log.seek(0)  # type: ignore[attr-defined]
        output = proc.log.read()  # type: ignore[attr-defined]
        proc.log.close()  # type: ignore[attr-defined]
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
        ).stdout.strip()
        cache = clone / ".dvc" / "cache"
        return Fetch(
            student=clone.name,
            seconds=seconds,
            returncode=returncode,
            retries=output.count("dropped the connection"),
            error="" if returncode == 0 else first_error(output),
            commit=commit,
            report=sha256(clone / REPORT) if (clone / REPORT).is_file() else None,
            cached=sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) if cache.is_dir() else 0,
        )

    def fetch_all(self, clones: list[Path], command: tuple[str, ...] = FETCH) -> list[Fetch]:
        """Every student's fetch started at the same moment; how each went."""
        procs = [self.start(clone, command) for clone in clones]
        return [self.finish(clone, proc) for clone, proc in zip(clones, procs, strict=True)]


def cache_intact(clone: Path) -> bool:
    """Every object in a clone's DVC cache holds what its name (its md5) says: nothing half-written."""
    objects = clone / ".dvc" / "cache" / "files" / "md5"
    for path in objects.rglob("*"):
        if path.is_file() and not path.name.endswith(".unpacked"):
            name = path.parent.name + path.name.removesuffix(".dir")
            if hashlib.md5(path.read_bytes()).hexdigest() != name:
                return False
    return True


class Gate:
    """A TCP relay in front of the server that holds the first `size` connections until all of them have arrived
    (or `patience` seconds went by), then lets them through in the same instant; later ones pass at once.

    Forty students on forty machines reach the server together. Forty on this one machine do not: their
    processes share two cores and connect over half a minute, one at a time. The gate gives the server the
    class's moment back, whatever order this machine starts them in."""

    def __init__(self, upstream: int, size: int, patience: float = 600):
        self.upstream, self.size, self.patience = upstream, size, patience
        self.port = free_port()
        self.arrived = 0
        self._loop = asyncio.new_event_loop()
        self._open = asyncio.Event()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        start = asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(timeout=10)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.arrived += 1
        if self.arrived >= self.size:
            self._open.set()
        try:
            await asyncio.wait_for(self._open.wait(), self.patience)
        except TimeoutError:
            self._open.set()
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bytes one way until either side closes; then close the other, as a dropped connection would be."""
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
