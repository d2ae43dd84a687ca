"""End to end: real `dvc repro` on a temporary copy of the project, with tiny data in the real formats.

The tests share one project and run in file order, each starting from the state the
previous one left (as a user would work): build, rebuild, edit, revert, compare.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.fixtures import cifar_arrays, mnist_arrays, set_key, sha256, write_cifar_tar, write_mnist_npz

pytestmark = pytest.mark.e2e  # every test here runs dvc on a copy of the project

PROJECT_FILES = (
    "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", ".dvc/config", ".dvc/.gitignore", ".dvc/plots/curves.json",
)
EXERCISES = ("baseline", "ex1", "ex2", "ex3", "ex5")
# The tiny project's seeds study: the default seeds, two exercises (the many edits of ex2 below stay cheap).
STUDY = {"seeds": [1, 2, 3, 4], "exercises": ["ex1", "ex3"]}
ALL_STAGES = {
    "validate",
    "download@mnist", "download@cifar10",
    "prepare@mnist_raw", "prepare@mnist_scaled", "prepare@cifar10_scaled",
    *(f"{kind}@{ex}" for kind in ("train", "evaluate", "explain") for ex in EXERCISES),
    "describe",
    "fingerprint",
    *(f"replicate@{ex}-{seed}" for ex in STUDY["exercises"] for seed in STUDY["seeds"]),
    "aggregate",
    "report",
}
TRAINING = re.compile(r"^(train|replicate)@")


class Project:
    """A git + DVC copy of DenseLab in a temporary folder, fed by a local data mirror."""

    def __init__(self, path: Path, mirror: Path):
        self.path = path
        self.env = {**os.environ, "DENSELAB_DATA_MIRROR": str(mirror), "GIT_AUTHOR_NAME": "t",
                    "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
        self.env.pop("PYTHONPATH", None)
        self.first_run: tuple[set[str], str] = (set(), "")  # what the build from nothing ran, and its log

    def run(self, *args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "dvc", *args[1:]] if args[0] == "dvc" else list(args)
        out = subprocess.run(cmd, cwd=cwd or self.path, env=self.env, capture_output=True, text=True, timeout=900)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out

    def repro(self, *args: str, check: bool = True) -> tuple[set[str], str]:
        """Run `dvc repro`; return the stages that really ran (trained, not restored) and the log."""
        out = self.run("dvc", "repro", *args, check=check)
        log = out.stdout + out.stderr
        ran = set(re.findall(r"Running stage '([^']+)'", log))
        return ran, log

    def status(self) -> set[str]:
        out = self.run("dvc", "status", "--json")
        return set(json.loads(out.stdout))

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def set_params(self, data: dict) -> None:
        (self.path / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

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
        log = open(self.path.parent / f"bg-{time.monotonic_ns()}.log", "w+")
        proc = subprocess.Popen([sys.executable, "-m", "dvc", *args], cwd=self.path, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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


def make_project(tmp: Path, study: dict = STUDY) -> Project:
    mirror = tmp / "mirror"
    mirror.mkdir()
    mnist = write_mnist_npz(mirror / "mnist.npz", mnist_arrays(n_train=200, n_test=60))
    cifar = write_cifar_tar(mirror / "cifar-10-python.tar.gz", cifar_arrays(n_per_batch=20, n_test=30))
    path = tmp / "denselab"
    for name in PROJECT_FILES:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, path / name)
    shutil.copytree(ROOT / "stages", path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    project = Project(path, mirror)

    def tiny(data):
        data["datasets"]["mnist"]["sha256"] = sha256(mnist)
        data["datasets"]["cifar10"]["sha256"] = sha256(cifar)
        for exercise in data["exercises"].values():
            exercise["epochs"] = 2
            exercise["batch_size"] = 32
        data["study"] = study

    project.edit(tiny)
    project.run("git", "init", "-q", "-b", "main")
    project.commit("tiny DenseLab")
    return project


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Project:
    """The tiny project, built once from nothing and committed (tag `built`); the log of that first run kept."""
    project = make_project(tmp_path_factory.mktemp("e2e"))
    project.first_run = project.repro()
    project.commit("built")
    project.run("git", "tag", "built")
    return project


@pytest.fixture
def project(built) -> Project:
    """The built project as its tag left it: every test starts from there, whatever ran before it."""
    built.run("git", "checkout", "-q", "-f", "main")
    # Without an index, the reset writes every tracked file from the tag: git cannot mistake an edited file
    # whose size and timestamps match its index entry for the committed one.
    (built.path / ".git/index").unlink()
    built.run("git", "reset", "-q", "--hard", "built")
    built.run("git", "clean", "-q", "-f", "-d")
    built.run("dvc", "checkout", "--force", "--quiet")  # every output back to what dvc.lock says, from the cache
    return built


def test_fresh_repro_runs_every_stage_once(project):
    ran, log = project.first_run
    assert ran == ALL_STAGES, log
    assert len(re.findall(r"Running stage", log)) == len(ALL_STAGES)
    for ex in ("baseline", "ex1", "ex2", "ex3", "ex5"):
        metrics = json.loads(project.read(f"reports/metrics/{ex}.json"))
        assert set(metrics) == {"test_accuracy", "test_loss"} and 0 <= metrics["test_accuracy"] <= 1
        assert (project.path / f"data/models/{ex}/model.keras").stat().st_size > 10_000
    summary = json.loads(project.read("reports/summary/ex5.json"))
    assert summary["total_params"] == 11_018_762
    study = json.loads(project.read("reports/study.json"))
    assert {name: s["n"] for name, s in study["exercises"].items()} == {"ex1": 5, "ex3": 5}
    run = json.loads(project.read("reports/runs/ex3/seed-4.json"))
    assert run["seed"] == 4 and len(run["history"]["val_accuracy"]) == 2
    assert b"<html" in project.read("reports/index.html")
    for ex in EXERCISES:
        assert {p.name for p in (project.path / "reports/figures" / ex).iterdir()} >= {"curves.png", "confusion.png", "units.png"}
    assert json.loads(project.read("reports/datasets/mnist/summary.json"))["shapes"]["after"]["x_train"][1] == 784
    # Training logs one line per epoch: no carriage-return progress bars.
    assert "\r" not in log and "Epoch 2/2" in log


def test_second_repro_runs_nothing(project):
    ran, log = project.repro()
    assert ran == set(), log
    assert "Data and pipelines are up to date" in log


def test_editing_one_exercise_stales_only_its_train_evaluate_and_report(project):
    figures = {ex: {p.name: p.read_bytes() for p in (project.path / "reports/figures" / ex).iterdir()} for ex in EXERCISES}
    data = {p: p.read_bytes() for p in (project.path / "reports/datasets").rglob("*") if p.is_file()}
    project.edit(lambda d: d["exercises"]["ex2"].update(epochs=3))
    # `dvc status` names the stages whose own deps changed; evaluate@ex2 follows from train@ex2.
    # `validate` checks every params change; its unchanged marker makes nothing else stale.
    # `fingerprint` reads every exercise's settings (it writes the studied ones', ex1's and ex3's here, again
    # byte for byte); `aggregate` reads every exercise's settings (to find the one-change comparisons).
    prints = {p.name: p.read_bytes() for p in (project.path / "data/fingerprints").iterdir()}
    assert project.status() == {"validate", "train@ex2", "fingerprint", "aggregate", "report"}
    ran, log = project.repro()
    assert ran == {"validate", "train@ex2", "evaluate@ex2", "explain@ex2", "fingerprint", "aggregate", "report"}, log
    assert {p.name: p.read_bytes() for p in (project.path / "data/fingerprints").iterdir()} == prints
    assert "Epoch 3/3" in log
    # Only ex2's figures were drawn again; its curves now have three epochs.
    after = {ex: {p.name: p.read_bytes() for p in (project.path / "reports/figures" / ex).iterdir()} for ex in EXERCISES}
    assert {ex for ex in EXERCISES if after[ex] != figures[ex]} == {"ex2"}
    assert after["ex2"]["curves.png"] != figures["ex2"]["curves.png"]
    assert {p: p.read_bytes() for p in data} == data


def test_reverting_an_edit_restores_outputs_from_the_run_cache(project):
    # A value no other test uses: tests that must see training happen own theirs (the run-cache is shared).
    project.edit(lambda d: d["exercises"]["ex2"].update(epochs=4))
    project.repro()
    assert project.read("reports/history/ex2.csv").count(b"\n") == 1 + 4
    project.restore("params.yaml")
    ran, log = project.repro()
    assert "train@ex2" not in ran and "Epoch" not in log, log
    assert re.search(r"Stage 'train@ex2' is cached - skipping run", log), log
    assert project.status() == set()


def test_forced_rerun_gives_byte_identical_metrics(project):
    paths = ("reports/metrics/ex3.json", "reports/history/ex3.csv", "reports/evaluation/ex3.json",
             *(str(p.relative_to(project.path)) for p in (project.path / "reports/figures/ex3").iterdir()))
    before = {p: project.read(p) for p in paths}
    ran, log = project.repro("--force", "--single-item", "train@ex3", "evaluate@ex3", "explain@ex3")
    assert ran == {"train@ex3", "evaluate@ex3", "explain@ex3"}, log
    after = {p: project.read(p) for p in before}
    assert after == before


def test_deleted_model_is_restored_without_training(project):
    (project.path / "data/models/ex1/model.keras").unlink()
    ran, log = project.repro()
    assert "train@ex1" not in ran and "Epoch" not in log, log
    assert (project.path / "data/models/ex1/model.keras").is_file()


def test_adding_a_seed_trains_only_its_runs_and_removing_it_trains_nothing(project):
    project.edit(lambda d: d["study"]["seeds"].append(5))
    ran, log = project.repro()
    assert ran == {"validate", "replicate@ex1-5", "replicate@ex3-5", "aggregate", "report"}, log
    study = json.loads(project.read("reports/study.json"))
    assert {s["n"] for s in study["exercises"].values()} == {6}
    project.edit(lambda d: d["study"]["seeds"].remove(5))
    ran, log = project.repro()
    assert ran == {"validate", "aggregate", "report"} and "Epoch" not in log, log
    study = json.loads(project.read("reports/study.json"))
    assert {s["n"] for s in study["exercises"].values()} == {5}
    assert project.status() == set()


def test_editing_a_studied_exercise_stales_only_its_runs(project):
    project.edit(lambda d: d["exercises"]["ex1"].update(learning_rate=0.02))
    # The runs follow from the fingerprint; `dvc status` names the stages whose own deps changed.
    assert project.status() == {"validate", "train@ex1", "fingerprint", "aggregate", "report"}
    ran, log = project.repro()
    assert ran == {"validate", "train@ex1", "evaluate@ex1", "explain@ex1", "fingerprint", "aggregate", "report",
                   *(f"replicate@ex1-{seed}" for seed in STUDY["seeds"])}, log
    project.restore("params.yaml")
    ran, log = project.repro()
    assert not {r for r in ran if TRAINING.match(r)}, log  # back to the cached runs
    assert re.search(r"Stage 'train@ex1' is cached - skipping run", log), log
    assert re.search(r"Stage 'replicate@ex1-1' is cached - skipping run", log), log
    assert project.status() == set()


def test_editing_a_template_reruns_only_the_report(project):
    style = project.path / "stages/templates/style.css"
    style.write_text(style.read_text() + "\n/* tweak */\n")
    assert project.status() == {"report"}
    ran, _ = project.repro()
    assert ran == {"report"}
    assert b"/* tweak */" in project.read("reports/index.html")


def test_input_scaling_edit_reuses_or_builds_the_arrays(project):
    # ex2 switches to an existing variant: no prepare stage runs.
    project.edit(lambda d: d["exercises"]["ex2"].update(inputs="mnist_scaled"))
    ran, log = project.repro()
    assert ran == {"validate", "fingerprint", "train@ex2", "evaluate@ex2", "explain@ex2", "aggregate", "report"}, log
    # ex5 switches to a variant that does not exist yet: only that prepare runs, then ex5's stages.
    def raw_cifar(d):
        d["inputs"]["cifar10_raw"] = {"dataset": "cifar10", "divide_by_255": False}
        d["exercises"]["ex5"]["inputs"] = "cifar10_raw"
    project.edit(raw_cifar)
    ran, log = project.repro()
    assert ran == {"validate", "prepare@cifar10_raw", "fingerprint", "train@ex5", "evaluate@ex5", "explain@ex5",
                   "aggregate", "report"}, log
    project.restore("params.yaml")
    ran, log = project.repro()
    assert not {r for r in ran if r.startswith("train")}, log  # back to cached results


def test_two_branches_compare_on_a_fresh_clone_without_pull(project, tmp_path):
    project.commit("state A")
    project.run("git", "checkout", "-q", "-b", "faster-ex2")
    project.edit(lambda d: d["exercises"]["ex2"].update(learning_rate=0.001))
    project.repro()
    project.commit("ex2: learning rate 0.001")
    clone = tmp_path / "fresh"
    project.run("git", "clone", "-q", "--branch", "faster-ex2", str(project.path), str(clone), cwd=tmp_path)
    project.run("git", "branch", "-q", "main", "origin/main", cwd=clone)
    assert not (clone / "data/models/ex2/model.keras").exists()  # nothing pulled: only what Git holds

    diff = json.loads(project.run("dvc", "metrics", "diff", "main", "--json", cwd=clone).stdout)
    changed = {path for path, values in diff.items() if any(v.get("diff") not in (0, None) for v in values.values())}
    assert changed == {"reports/metrics/ex2.json"}, diff
    assert diff["reports/metrics/ex2.json"]["test_loss"]["diff"] != 0
    params = json.loads(project.run("dvc", "params", "diff", "main", "--json", cwd=clone).stdout)
    assert list(params["params.yaml"]) == ["exercises.ex2.learning_rate"]
    assert params["params.yaml"]["exercises.ex2.learning_rate"]["old"] == 0.01
    assert params["params.yaml"]["exercises.ex2.learning_rate"]["new"] == 0.001

    out = project.run("dvc", "plots", "diff", "main", "--json", cwd=clone).stdout
    plots = json.loads(out[out.index("{"):])
    assert "errors" not in plots, plots.get("errors")
    for name in ("reports/history/ex2.csv", "reports/predictions/ex2.csv"):
        (entry,) = plots["data"][name]
        assert sorted(entry["revisions"]) == ["main", "workspace"]
        assert {row["rev"] for row in entry["content"]["data"]["values"]} == {"main", "workspace"}
    assert plots["data"]["reports/predictions/ex2.csv"][0]["content"]["title"]["text"] == "ex2 confusion matrix"
    # `dvc plots show` writes the HTML page users open.
    project.run("dvc", "plots", "show", "-o", "dvc_plots", cwd=clone)
    page = (clone / "dvc_plots" / "index.html").read_text()
    assert "ex5 learning curves" in page and "ex3 confusion matrix" in page


# --- bad params, interruptions, concurrent runs ---------------------------------------------------

BAD_PARAMS = [
    # (dotted key, value, text the error must contain)
    ("exercises.ex2.epochs", "ten", "exercises.ex2.epochs: expected an integer >= 1, got str 'ten'"),
    ("exercises.ex2.epochs", True, "exercises.ex2.epochs: expected an integer >= 1, got a boolean"),
    ("exercises.ex2.epochs", 0, "exercises.ex2.epochs: expected an integer >= 1, got 0"),
    ("exercises.ex3.batch_size", -1, "exercises.ex3.batch_size: expected an integer >= 1"),
    ("exercises.ex1.layers.0.units", 0, "exercises.ex1.layers[0].units: expected an integer >= 1"),
    ("exercises.ex1.learning_rate", 0, "exercises.ex1.learning_rate: expected a number > 0"),
    ("exercises.ex1.learning_rate", "1e-3", "write 1.0e-4 or 0.0001"),
    ("exercises.ex5.validation_split", 0, "exercises.ex5.validation_split: expected a number in (0, 1)"),
    ("exercises.ex5.validation_split", 1, "exercises.ex5.validation_split: expected a number in (0, 1)"),
    ("exercises.ex5.validation_split", 1.5, "exercises.ex5.validation_split: expected a number in (0, 1)"),
    ("exercises.ex2.layers.0.activation", "sigmod", "did you mean 'sigmoid'?"),
    ("exercises.ex2.loss", "mse", "unknown loss 'mse'"),
    ("exercises.ex2.optimizer", "adamm", "did you mean 'adam'?"),
    ("exercises.ex2.optimiser", "adam", "exercises.ex2.optimiser: unknown key"),
    # A misspelt top-level key: DVC tracks only the keys a stage lists, so validate depends on the whole file.
    ("studdy", {"seeds": [5]}, "studdy: unknown key; allowed here: datasets, exercises, inputs, report, seed, study"),
    ("exercises.ex3.layers.1.units", 7, "must have 10 units"),
    ("inputs.mnist_raw.dataset", "mnistt", "did you mean 'mnist'?"),
    ("datasets.mnist.sha256", "123abc", "datasets.mnist.sha256: expected 64 hexadecimal digits"),
    ("report.language", "de", "report.language: unknown language 'de'"),
    ("seed", None, "seed: expected an integer >= 0, got nothing"),
    ("exercises", {}, "exercises: must not be empty"),
    ("exercises.ex2.precision", "bf16", "exercises.ex2.precision: unknown precision 'bf16'"),
    # Values that parse, but cannot train here: caught by validate before TensorFlow, with the figures.
    ("exercises.ex2.layers.0.units", 100_000_000, "exercises.ex2.layers: layers of 100000000, 10 units on 784 inputs need about"),
    ("exercises.ex2.validation_split", 0.99999, "exercises.ex2.validation_split: 0.99999 holds out all of mnist's 60,000"),
    ("study.seeds", [1, 1], "study.seeds[1]: 1 is already in the list"),
    ("study.seeds", [], "study.seeds: expected a non-empty list"),
    ("study.seeds", [3, -1], "study.seeds[1]: expected an integer >= 0, got -1"),
    ("study.seeds", [42], "study.seeds: 42 is the top-level seed"),
    ("study.exercises", ["ex1", "ex9"], "study.exercises[1]: unknown exercise 'ex9'"),
]


def test_bad_params_fail_fast_and_touch_nothing(project):
    good = project.read("params.yaml")
    before = project.snapshot()
    try:
        for key, value, message in BAD_PARAMS:
            project.edit(lambda d: set_key(d, key, value))
            start = time.monotonic()
            out = project.run("dvc", "repro", check=False)
            elapsed = time.monotonic() - start
            log = out.stdout + out.stderr
            assert out.returncode != 0, (key, log)
            assert message in log, (key, log)
            assert "Running stage 'validate'" in log and len(re.findall("Running stage", log)) == 1, log
            assert elapsed < 5 and "Traceback" not in log, (key, elapsed, log)
            assert project.snapshot() == before, key
            (project.path / "params.yaml").write_bytes(good)
        # Broken YAML: DVC itself refuses to read the pipeline, and names the file.
        (project.path / "params.yaml").write_text(good.decode() + "\nexercises: [\n")
        out = project.run("dvc", "repro", check=False)
        assert out.returncode != 0 and "params.yaml" in out.stdout + out.stderr
        assert project.snapshot() == before
    finally:
        (project.path / "params.yaml").write_bytes(good)
    ran, log = project.repro()
    assert ran <= {"validate"}, log


def test_validation_runs_before_tensorflow_is_imported(project):
    bad = project.params()
    bad["exercises"]["ex2"]["epochs"] = 0
    (project.path.parent / "bad").mkdir(exist_ok=True)
    (project.path.parent / "bad" / "params.yaml").write_text(yaml.safe_dump(bad))
    code = (
        "import sys\n"
        "from stages.train import main\n"
        "try:\n    main(['--exercise', 'ex2', '--prepared', 'x', '--model-dir', 'y', '--history', 'z', '--summary', 'w'])\n"
        "except SystemExit as e:\n    print(e.code, 'tensorflow' in sys.modules)\n"
    )
    env = {**project.env, "PYTHONPATH": str(project.path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=project.path.parent / "bad", env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["2", "False"], out.stderr
    assert "exercises.ex2.epochs: expected an integer >= 1, got 0" in out.stderr


def test_sigkill_during_training_then_repro_recovers(project):
    project.edit(lambda d: d["exercises"]["ex2"].update(epochs=60))
    proc = project.popen("repro")
    try:
        wait_for(proc, r"Epoch 3/60")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    ran, log = project.repro()
    assert "train@ex2" in ran and "Epoch 60/60" in log, log
    model = project.path / "data/models/ex2/model.keras"
    code = f"import keras; m = keras.models.load_model({str(model)!r}); print(m.count_params())"
    out = project.run(sys.executable, "-c", code)
    assert out.stdout.strip().endswith("623290")
    metrics = json.loads(project.read("reports/metrics/ex2.json"))
    assert set(metrics) == {"test_accuracy", "test_loss"}
    assert project.status() == set()
    assert not list((project.path / "data").rglob(".*.tmp*"))


def test_a_second_repro_fails_fast_while_one_runs(project):
    project.edit(lambda d: d["exercises"]["ex2"].update(epochs=8))
    first = project.popen("repro")
    try:
        wait_for(first, r"Running stage 'train@ex2'")
        start = time.monotonic()
        second = project.run("dvc", "repro", check=False)
        assert second.returncode != 0
        # DVC's lock message: the repo lock, or the per-output lock a running stage holds.
        assert re.search(r"Unable to acquire lock|is busy, it is being blocked by", second.stdout + second.stderr)
        assert time.monotonic() - start < 30
        assert first.wait(timeout=600) == 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert project.status() == set()
    project.restore("params.yaml")
    project.repro()


# --- experiments and sharing ----------------------------------------------------------------------


def test_experiment_with_a_changed_param(project):
    project.commit("before experiments")
    project.run("dvc", "exp", "run", "-n", "lr-small", "-S", "exercises.ex2.learning_rate=0.001")
    table = json.loads(project.run("dvc", "exp", "show", "--json").stdout)
    exps = [e for rev in table for e in (rev.get("experiments") or [])]
    names = {run["name"]: run for e in exps for run in e.get("revs", [])}
    assert "lr-small" in names, table
    data = names["lr-small"]["data"]
    assert data["params"]["params.yaml"]["data"]["exercises"]["ex2"]["learning_rate"] == 0.001
    assert "test_accuracy" in data["metrics"]["reports/metrics/ex2.json"]["data"]


def test_queued_experiments_run_two_at_a_time(project):
    for lr in ("0.002", "0.003"):
        project.run("dvc", "exp", "run", "--queue", "-n", f"lr-{lr[-1]}", "-S", f"exercises.ex2.learning_rate={lr}")
    # `dvc queue start` returns when its workers are done: watch the status from beside it meanwhile.
    workers = project.popen("queue", "start", "-j", "2")
    deadline = time.monotonic() + 600
    most_at_once = 0  # the most experiments `dvc queue status` showed running at the same moment
    try:
        while time.monotonic() < deadline:
            status = project.run("dvc", "queue", "status").stdout
            most_at_once = max(most_at_once, len(re.findall(r"\bRunning\b", status)))
            if workers.poll() is not None and "Running" not in status and "Queued" not in status:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"the queue did not finish within 600 s:\n{status}")
    finally:
        if workers.poll() is None:
            os.killpg(workers.pid, signal.SIGKILL)
    assert most_at_once == 2, status
    assert "Failed" not in status and status.count("Success") >= 2, status
    shown = project.run("dvc", "exp", "show", "--csv").stdout
    assert "lr-2" in shown and "lr-3" in shown, shown
    project.run("dvc", "queue", "stop", check=False)


def test_sharing_through_a_remote_needs_no_training(project, tmp_path):
    project.run("dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    project.commit("remote")
    project.run("dvc", "push", "--run-cache")
    clone = tmp_path / "clone"
    project.run("git", "clone", "-q", str(project.path), str(clone), cwd=tmp_path)
    project.run("dvc", "pull", cwd=clone)
    out = project.run("dvc", "repro", cwd=clone)
    assert "Running stage" not in out.stdout + out.stderr, out.stdout
    assert (clone / "reports/index.html").read_bytes() == project.read("reports/index.html")
    assert (clone / "data/models/ex5/model.keras").read_bytes() == project.read("data/models/ex5/model.keras")


def test_workers_spread_the_study_and_a_collector_trains_nothing(tmp_path):
    """Two machines train disjoint halves of the study and push; a third collects and trains nothing.

    The lab's runs (train, evaluate) are results kept in Git: the machine that trains them commits
    and pushes them as usual. The other seeds' runs travel through DVC's run-cache alone.
    """
    project = make_project(tmp_path, study={"seeds": [1, 2, 3], "exercises": ["ex1", "ex2"]})

    def two_exercises(d):
        for name in ("baseline", "ex3", "ex5"):
            del d["exercises"][name]
        del d["inputs"]["cifar10_scaled"], d["datasets"]["cifar10"]

    project.edit(two_exercises)
    project.run("dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    project.commit("a study over two machines")
    bare = tmp_path / "origin.git"
    project.run("git", "init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    project.run("git", "push", "-q", str(bare), "main")

    halves = {
        "worker-a": ["evaluate@ex1", "evaluate@ex2", "replicate@ex1-1", "replicate@ex2-1"],
        "worker-b": ["replicate@ex1-2", "replicate@ex1-3", "replicate@ex2-2", "replicate@ex2-3"],
    }
    trained = {}
    for worker, targets in halves.items():
        clone = tmp_path / worker
        project.run("git", "clone", "-q", str(bare), str(clone), cwd=tmp_path)
        out = project.run("dvc", "repro", *targets, cwd=clone)
        trained[worker] = {r for r in re.findall(r"Running stage '([^']+)'", out.stdout + out.stderr) if TRAINING.match(r)}
        project.run("dvc", "push", "--run-cache", cwd=clone)
        if worker == "worker-a":  # the lab's runs: committed and pushed like any result kept in Git
            project.run("git", "add", "-A", cwd=clone)
            project.run("git", "commit", "-q", "-m", "the lab's runs", cwd=clone)
            project.run("git", "push", "-q", "origin", "main", cwd=clone)
    assert trained["worker-a"] == {"train@ex1", "train@ex2", "replicate@ex1-1", "replicate@ex2-1"}
    assert trained["worker-b"] == set(halves["worker-b"])
    accuracy = {
        name: [json.loads((tmp_path / "worker-a" / f"reports/metrics/{name}.json").read_text())["test_accuracy"]]
        + [json.loads((tmp_path / worker / f"reports/runs/{name}/seed-{seed}.json").read_text())["test_accuracy"]
           for worker, seed in (("worker-a", 1), ("worker-b", 2), ("worker-b", 3))]
        for name in ("ex1", "ex2")
    }

    collector = tmp_path / "collector"
    project.run("git", "clone", "-q", str(bare), str(collector), cwd=tmp_path)
    out = project.run("dvc", "repro", "--pull", cwd=collector)
    log = out.stdout + out.stderr
    ran = set(re.findall(r"Running stage '([^']+)'", log))
    assert not {r for r in ran if re.match(r"^(train|evaluate|replicate)@", r)} and "Epoch" not in log, log
    assert {"aggregate", "report"} <= ran
    assert len(re.findall(r"Stage 'replicate@ex\d-[23]' is cached - skipping run", log)) == 4, log

    from bs4 import BeautifulSoup

    page = BeautifulSoup((collector / "reports/index.html").read_text(), "lxml")
    assert [th.get_text() for th in page.select("table.runs thead th")][1:] == ["seed 42", "seed 1", "seed 2", "seed 3"]
    for name, values in accuracy.items():
        cells = [td.get_text() for td in page.select_one(f'table.runs tr[data-exercise="{name}"]').select("td")[1:]]
        assert cells == [f"{v * 100:.2f}%" for v in values], (name, cells, values)
    assert len(page.select("#comparisons .verdict")) == 1  # ex1 -> ex2, judged over both machines' runs
