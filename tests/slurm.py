"""A real one-node Slurm cluster on loopback for the fan-out tests: Debian's munged, slurmctld and slurmd, every
file of theirs (key, sockets, state, spool, logs) in a temporary folder, on free ports, stopped at the end."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.sshd import _descendants, free_port

DAEMONS = {name: shutil.which(name) or f"/usr/sbin/{name}" for name in ("munged", "slurmctld", "slurmd")}
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")

# Bash 5 only: what RHEL/Rocky/Alma 8's bash 4.4 lacks, and a task script must not use.
BASH5_ONLY = re.compile(r"EPOCHREALTIME|EPOCHSECONDS|SRANDOM|BASH_ARGV0|\bwait\s+-p\b|\$\{[^}]*@[QEPAKaULuk]\}")
# What `bash` 5 is made to look like bash 4 with: its own variables gone before the script runs (BASH_ENV is read by
# every non-interactive bash first, and Slurm passes the submitting environment on to the tasks).
AS_BASH_4 = "unset EPOCHREALTIME EPOCHSECONDS SRANDOM BASH_ARGV0\n"


def installed() -> bool:
    """Whether Debian's slurmctld, slurmd, slurm-client and munge are here (`.ci/run` installs them)."""
    return all(Path(path).is_file() for path in DAEMONS.values()) and all(shutil.which(c) for c in CLIENTS)


@dataclass
class SlurmCluster:
    """Where the cluster's files are, and the environment its clients need (SLURM_CONF)."""

    home: Path
    env: dict[str, str]
    ctld_port: int
    processes: list[subprocess.Popen] = field(default_factory=list)  # munged, slurmctld, slurmd

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, check=False, timeout=60)

    def restart_controller(self, down: float) -> None:
        """Stop slurmctld as an administrator's restart does (SIGTERM: it saves its state), leave it down for `down`
        seconds, then start it again from that state; the node and its running jobs carry on meanwhile."""
        ctld = self.processes[1]
        ctld.terminate()
        ctld.wait(timeout=30)
        time.sleep(down)
        self.processes[1] = subprocess.Popen(
            [DAEMONS["slurmctld"], "-D"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for_port(self.ctld_port, self.processes[1], "slurmctld", self.home / "slurmctld.log")

    def stop(self) -> None:
        """Kill the daemons and whatever their jobs left running."""
        for process in reversed(self.processes):
            for pid in [*_descendants(process.pid), process.pid]:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            process.wait(timeout=10)
        self.processes.clear()


def _wait_for_port(port: int, process: subprocess.Popen, what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} stopped: {log.read_text(errors='replace') if log.is_file() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def slurm_cluster(folder: Path, cpus: int | None = None, memory_mb: int = 4096) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd (as root: Slurm's daemons run their jobs as the submitting user) with
    one node of `cpus` CPUs and `memory_mb` MB and one default partition, `debug`; stop them on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool"):
        (folder / sub).mkdir(exist_ok=True)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    munge_socket = folder / "munge.socket"
    host = socket.gethostname().split(".")[0]
    ctld_port, slurmd_port = free_port(), free_port()
    conf = folder / "slurm.conf"
    conf.write_text(
        f"ClusterName=denselab-test\nSlurmctldHost={host}(127.0.0.1)\nSlurmctldPort={ctld_port}\n"
        f"SlurmdPort={slurmd_port}\nSlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\n"
        f"AuthInfo=socket={munge_socket}\nCredType=cred/munge\nStateSaveLocation={folder / 'state'}\n"
        f"SlurmdSpoolDir={folder / 'spool'}\nSlurmctldPidFile={folder / 'slurmctld.pid'}\n"
        f"SlurmdPidFile={folder / 'slurmd.pid'}\nSlurmctldLogFile={folder / 'slurmctld.log'}\n"
        f"SlurmdLogFile={folder / 'slurmd.log'}\n"
        # What works in a container without cgroups: processes tracked by parent id, no task binding.
        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nMpiDefault=none\n"
        "SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU_Memory\nJobAcctGatherType=jobacct_gather/none\n"
        # Jobs pending when slurmctld starts (those a restart recovers) wait for its main scheduling loop: every 60 s
        # by default, so a test's job waited up to a minute after `restart_controller`. Here it runs every 2 s.
        "ReturnToService=2\nSchedulerType=sched/builtin\nSchedulerParameters=sched_interval=2\n"
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus or os.cpu_count()} RealMemory={memory_mb} State=UNKNOWN\n"
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = SlurmCluster(folder, env, ctld_port)
    try:
        munged = [
            DAEMONS["munged"],
            "--foreground",
            "--force",
            f"--socket={munge_socket}",
            f"--key-file={key}",
            f"--pid-file={folder / 'munged.pid'}",
            f"--log-file={folder / 'munged.log'}",
            f"--seed-file={folder / 'munged.seed'}",
        ]
        cluster.processes.append(subprocess.Popen(munged, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 20
        while not munge_socket.exists():
            if cluster.processes[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"munged did not start: {cluster.log('munged')}")
            time.sleep(0.05)
        ctld = subprocess.Popen(
            [DAEMONS["slurmctld"], "-D", "-i"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        cluster.processes.append(ctld)
        _wait_for_port(ctld_port, ctld, "slurmctld", folder / "slurmctld.log")
        slurmd = subprocess.Popen(
            [DAEMONS["slurmd"], "-D"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        cluster.processes.append(slurmd)
        _wait_for_port(slurmd_port, slurmd, "slurmd", folder / "slurmd.log")
        deadline = time.monotonic() + 30
        while "idle" not in cluster.run("sinfo", "-h", "-o", "%T").stdout:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node never came up: {cluster.log('slurmctld')}")
            time.sleep(0.2)
        yield cluster
    finally:
        cluster.stop()
