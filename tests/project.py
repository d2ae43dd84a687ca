"""A tiny DenseLab to run `dvc` on: a git + DVC copy of the project in a temporary folder, fed by tiny synthetic
data in the real formats (two epochs of batch 32), for the end-to-end tests and the class-load benchmark."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT
from tests.fixtures import (
    cifar_arrays,
    mnist_arrays,
    read_params,
    sha256,
    write_cifar_tar,
    write_mnist_npz,
    write_params,
)

PROJECT_FILES = (
    "dvc.yaml",
    "params.yaml",
    "claims.yaml",
    "datasets.yaml",
    "descriptions.yaml",
    "profiles.yaml",
    ".dvcignore",
    ".gitignore",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvc/plots/curves.json",
)
CODE = ("stages", "denselab")
# sigmoid_x255 completes the factorial of two of the lab's claims (activation_by_scale): an edit of ex2 confounds it.
EXERCISES = ("baseline", "ex1", "ex2", "ex3", "ex5", "sigmoid_x255")
# The tiny project's seeds study: two seeds besides the lab's, of one exercise (ex1: the edits of ex2 stay cheap, and
# each study exercise costs two trainings in every build). The two machines' test studies two exercises, one seed.
STUDY = {"seeds": [1, 2], "exercises": ["ex1"]}


def ran_stages(log: str) -> set[str]:
    """The stages a `dvc repro` log says it ran (not those restored from the run-cache or left as they were)."""
    return set(re.findall(r"Running stage '([^']+)'", log))


class Project:
    """A git + DVC copy of DenseLab in a temporary folder, fed by a local data mirror."""

    def __init__(self, path: Path, mirror: Path):
        self.path = path
        self.env = {
            **os.environ,
            "DENSELAB_DATA_MIRROR": str(mirror),
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        }
        self.env.pop("PYTHONPATH", None)
        # The stages' `python` is the interpreter that runs the tests and DVC, as in an activated virtualenv. Without
        # one, `python` may be pyenv's shim, a bash script that costs each of the suite's ~500 stage processes 50 ms.
        self.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), self.env.get("PATH", "")])
        self.first_run: tuple[set[str], str] = (set(), "")  # what the build from nothing ran, and its log

    def run(
        self, *args: str, check: bool = True, cwd: Path | None = None, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "dvc", *args[1:]] if args[0] == "dvc" else list(args)
        out = subprocess.run(
            cmd, check=False, cwd=cwd or self.path, env=env or self.env, capture_output=True, text=True, timeout=900
        )
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out

    def repro(self, *args: str, check: bool = True) -> tuple[set[str], str]:
        """Run `dvc repro`; return the stages that really ran (trained, not restored) and the log."""
        out = self.run("dvc", "repro", *args, check=check)
        log = out.stdout + out.stderr
        return ran_stages(log), log

    def status(self) -> set[str]:
        out = self.run("dvc", "status", "--json")
        return set(json.loads(out.stdout))

    def params(self) -> dict:
        """params.yaml with the keys of the files beside it, as one mapping (`set_params` splits it again)."""
        return read_params(self.path)

    def set_params(self, data: dict) -> None:
        write_params(self.path, data)

    def edit(self, change) -> None:
        data = self.params()
        change(data)
        self.set_params(data)

    def restore(self, relative: str) -> None:
        """Put back the committed version of a file, as `git checkout FILE` would, but by content.

        Git skips a file whose size, inode and timestamps match its index entry, and an edit that keeps the
        size (0.01 -> 0.02) can match it within one tick of a coarse file-system clock.
        """
        committed = self.run("git", "show", f"HEAD:{relative}").stdout
        (self.path / relative).write_text(committed)

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "--allow-empty", "-m", message)

    def read(self, relative: str) -> bytes:
        return (self.path / relative).read_bytes()

    def snapshot(self) -> dict[str, str]:
        """sha256 of every output and of dvc.lock: what must survive a failed run untouched."""
        files = [self.path / "dvc.lock", *(self.path / "data").rglob("*"), *(self.path / "reports").rglob("*")]
        return {str(f.relative_to(self.path)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}

    def popen(self, *args: str) -> subprocess.Popen:
        """Start `dvc ARGS` in its own process group, output to a log file."""
        log = open(self.path.parent / f"bg-{time.monotonic_ns()}.log", "w+")  # noqa: SIM115  (stays open: the process writes it, wait_for reads it)
        proc = subprocess.Popen(
            [sys.executable, "-m", "dvc", *args],
            cwd=self.path,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log = log
        return proc


def wait_for(proc: subprocess.Popen, pattern: str, timeout: float = 300) -> None:
    """Block until the process's log matches `pattern`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.log.seek(0)
        if re.search(pattern, proc.log.read()):
            return
        if proc.poll() is not None:
            proc.log.seek(0)
            raise AssertionError(f"process ended before {pattern!r}:\n{proc.log.read()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {pattern!r}")


def keep_exercises(data: dict, names: tuple[str, ...]) -> None:
    """Only the exercises `names` in params data, and the factorials and claims that name no other."""

    def cells(factorial: str) -> set[str]:
        return {e for row in data["factorials"][factorial]["cells"] for e in row}

    def named(claim: dict) -> set[str]:
        test = claim.get("test") or {}
        found = {claim.get("exercise"), test.get("than"), test.get("plateau")}
        if "than" in test:
            found.add(test["better"])  # in a factorial's test, `better` is a value, not an exercise
        return (found | (cells(test["factorial"]) if "factorial" in test else set())) - {None}

    # A profile's exercises (profiles.yaml) stay nameable: its claims wait for it to be applied.
    profiled = {name for p in (data.get("profiles") or {}).values() for name in p.get("exercises", {})}
    data["exercises"] = {name: spec for name, spec in data["exercises"].items() if name in names}
    data["descriptions"] = {name: text for name, text in data["descriptions"].items() if name in {*names, *profiled}}
    data["claims"] = {k: c for k, c in data["claims"].items() if named(c) <= {*names, *profiled}}
    data["factorials"] = {k: f for k, f in data["factorials"].items() if cells(k) <= set(names)}


def make_project(
    tmp: Path, study: dict = STUDY, exercises: tuple[str, ...] = EXERCISES, ex5_hidden: tuple[int, int] | None = None
) -> Project:
    """A tiny DenseLab in `tmp`: two epochs of batch 32 on tiny data, the given study, only the given exercises;
    ex5's two hidden layers of `ex5_hidden` units when given (the lab's 3072 and 512 make a 132 MB model file)."""
    mirror = tmp / "mirror"
    mirror.mkdir()
    mnist = write_mnist_npz(mirror / "mnist.npz", mnist_arrays(n_train=200, n_test=60))
    cifar = write_cifar_tar(mirror / "cifar-10-python.tar.gz", cifar_arrays(n_per_batch=20, n_test=30))
    path = tmp / "denselab"
    for name in PROJECT_FILES:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, path / name)
    for folder in CODE:
        shutil.copytree(ROOT / folder, path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    project = Project(path, mirror)

    def tiny(data):
        data["sources"]["mnist"]["sha256"] = sha256(mnist)
        data["sources"]["cifar10"]["sha256"] = sha256(cifar)
        keep_exercises(data, exercises)
        profiled = [e for p in data["profiles"].values() for e in p["exercises"].values()]
        for exercise in [*data["exercises"].values(), *profiled]:
            exercise["epochs"] = 2
            exercise["batch_size"] = 32
        for claim in data["claims"].values():
            if claim["test"] and "plateau" in claim["test"]:
                claim["test"]["from_epoch"] = 1  # of the two epochs
        data["study"] = study
        if ex5_hidden:
            for layer, units in zip(data["exercises"]["ex5"]["layers"], ex5_hidden):
                layer["units"] = units

    project.edit(tiny)
    project.run("git", "init", "-q", "-b", "main")
    project.commit("tiny DenseLab")
    return project


def shared_study(tmp: Path, message: str) -> tuple[Project, Path]:
    """A tiny MNIST-only project of ex1 and ex2, studied over one seed besides the lab's, with a folder as its DVC
    remote, committed and pushed to a bare Git repository: what machines that share the study clone. Returns the
    project and the bare repository."""
    project = make_project(tmp, study={"seeds": [1], "exercises": ["ex1", "ex2"]}, exercises=("ex1", "ex2"))

    def mnist_only(d):
        del d["inputs"]["cifar10_scaled"], d["sources"]["cifar10"]
        d["datasets"].remove("cifar10")

    project.edit(mnist_only)
    project.run("dvc", "remote", "add", "-d", "shared", str(tmp / "remote"))
    project.commit(message)
    origin = tmp / "origin.git"
    project.run("git", "init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp)
    project.run("git", "push", "-q", str(origin), "main")
    return project, origin


RUN_CACHE = Path(".dvc/cache/runs")  # DVC's run-cache: one entry per (stage command, deps) that ran


def build(tmp: Path, **tiny) -> Project:
    """A tiny project built once from nothing and committed (tag `built`); the log of that first run kept, and its
    run-cache saved beside it."""
    project = make_project(tmp, **tiny)
    project.first_run = project.repro()
    project.commit("built")
    project.run("git", "tag", "built")
    shutil.copytree(project.path / RUN_CACHE, project.path.parent / "built-runs")
    return project


def as_built(built: Project) -> Project:
    """The built project as its tag left it: every test starts from there, whatever ran before it."""
    built.run("git", "checkout", "-q", "-f", "main")
    # Without an index, the reset writes every tracked file from the tag: git cannot mistake an edited file
    # whose size and timestamps match its index entry for the committed one.
    (built.path / ".git/index").unlink()
    built.run("git", "reset", "-q", "--hard", "built")
    built.run("git", "clean", "-q", "-f", "-d")
    # A test's local DVC settings (a key for its class remote, which the reset removed from .dvc/config) go too:
    # DVC refuses a config.local that sets a remote no config names.
    (built.path / ".dvc" / "config.local").unlink(missing_ok=True)
    # The run-cache as the build left it: a run another test trained is not there to be restored.
    shutil.rmtree(built.path / RUN_CACHE)
    shutil.copytree(built.path.parent / "built-runs", built.path / RUN_CACHE)
    built.run("dvc", "checkout", "--force", "--quiet")  # every output back to what dvc.lock says, from the cache
    return built
