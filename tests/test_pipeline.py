"""End to end: real `dvc repro` on a temporary copy of the project, with tiny data in the real formats.

The tests share one project and run in file order, each starting from the state the
previous one left (as a user would work): build, rebuild, edit, revert, compare.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.fixtures import cifar_arrays, mnist_arrays, sha256, write_cifar_tar, write_mnist_npz

PROJECT_FILES = (
    "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", ".dvc/config", ".dvc/.gitignore", ".dvc/plots/curves.json",
)
ALL_STAGES = {
    "download@mnist", "download@cifar10",
    "prepare@mnist_raw", "prepare@mnist_scaled", "prepare@cifar10_scaled",
    *(f"{kind}@{ex}" for kind in ("train", "evaluate") for ex in ("baseline", "ex1", "ex2", "ex3", "ex5")),
    "report",
}


class Project:
    """A git + DVC copy of DenseLab in a temporary folder, fed by a local data mirror."""

    def __init__(self, path: Path, mirror: Path):
        self.path = path
        self.env = {**os.environ, "DENSELAB_DATA_MIRROR": str(mirror), "GIT_AUTHOR_NAME": "t",
                    "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
        self.env.pop("PYTHONPATH", None)

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

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-qm", message)

    def read(self, relative: str) -> bytes:
        return (self.path / relative).read_bytes()


def make_project(tmp: Path) -> Project:
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

    project.edit(tiny)
    project.run("git", "init", "-q", "-b", "main")
    project.commit("tiny DenseLab")
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return make_project(tmp_path_factory.mktemp("e2e"))


def test_fresh_repro_runs_every_stage_once(project):
    ran, log = project.repro()
    assert ran == ALL_STAGES, log
    assert len(re.findall(r"Running stage", log)) == len(ALL_STAGES)
    for ex in ("baseline", "ex1", "ex2", "ex3", "ex5"):
        metrics = json.loads(project.read(f"reports/metrics/{ex}.json"))
        assert set(metrics) == {"test_accuracy", "test_loss"} and 0 <= metrics["test_accuracy"] <= 1
        assert (project.path / f"data/models/{ex}/model.keras").stat().st_size > 10_000
    summary = json.loads(project.read("reports/summary/ex5.json"))
    assert summary["total_params"] == 11_018_762
    assert b"<html" in project.read("reports/index.html")
    # Training logs one line per epoch: no carriage-return progress bars.
    assert "\r" not in log and "Epoch 2/2" in log
    project.commit("built")


def test_second_repro_runs_nothing(project):
    ran, log = project.repro()
    assert ran == set(), log
    assert "Data and pipelines are up to date" in log


def test_editing_one_exercise_stales_only_its_train_evaluate_and_report(project):
    project.edit(lambda d: d["exercises"]["ex2"].update(epochs=3))
    # `dvc status` names the stages whose own deps changed; evaluate@ex2 follows from train@ex2.
    assert project.status() == {"train@ex2", "report"}
    ran, log = project.repro()
    assert ran == {"train@ex2", "evaluate@ex2", "report"}, log
    assert "Epoch 3/3" in log


def test_reverting_an_edit_restores_outputs_from_the_run_cache(project):
    project.edit(lambda d: d["exercises"]["ex2"].update(epochs=2))
    ran, log = project.repro()
    assert "train@ex2" not in ran and "Epoch" not in log, log
    assert re.search(r"Stage 'train@ex2' is cached - skipping run", log), log
    assert project.status() == set()


def test_forced_rerun_gives_byte_identical_metrics(project):
    before = {p: project.read(p) for p in ("reports/metrics/ex3.json", "reports/history/ex3.csv", "reports/evaluation/ex3.json")}
    ran, log = project.repro("--force", "--single-item", "train@ex3", "evaluate@ex3")
    assert ran == {"train@ex3", "evaluate@ex3"}, log
    after = {p: project.read(p) for p in before}
    assert after == before


def test_deleted_model_is_restored_without_training(project):
    (project.path / "data/models/ex1/model.keras").unlink()
    ran, log = project.repro()
    assert "train@ex1" not in ran and "Epoch" not in log, log
    assert (project.path / "data/models/ex1/model.keras").is_file()


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
    assert ran == {"train@ex2", "evaluate@ex2", "report"}, log
    # ex5 switches to a variant that does not exist yet: only that prepare runs, then ex5's stages.
    def raw_cifar(d):
        d["inputs"]["cifar10_raw"] = {"dataset": "cifar10", "divide_by_255": False}
        d["exercises"]["ex5"]["inputs"] = "cifar10_raw"
    project.edit(raw_cifar)
    ran, log = project.repro()
    assert ran == {"prepare@cifar10_raw", "train@ex5", "evaluate@ex5", "report"}, log
    project.run("git", "checkout", "params.yaml")
    ran, log = project.repro()
    assert not {r for r in ran if r.startswith("train")}, log  # back to cached results


def test_metrics_and_plots_compare_two_commits(project):
    project.commit("state A")
    project.edit(lambda d: d["exercises"]["ex2"].update(learning_rate=0.001))
    project.repro()
    project.commit("state B: ex2 learning rate 0.001")
    diff = json.loads(project.run("dvc", "metrics", "diff", "HEAD~1", "--json").stdout)
    changed = {path for path, values in diff.items() if any(v.get("diff") not in (0, None) for v in values.values())}
    assert changed == {"reports/metrics/ex2.json"}, diff
    assert diff["reports/metrics/ex2.json"]["test_loss"]["diff"] != 0
    params = json.loads(project.run("dvc", "params", "diff", "HEAD~1", "--json").stdout)
    assert list(params["params.yaml"]) == ["exercises.ex2.learning_rate"]
    assert params["params.yaml"]["exercises.ex2.learning_rate"]["old"] == 0.01
    assert params["params.yaml"]["exercises.ex2.learning_rate"]["new"] == 0.001
    out = project.run("dvc", "plots", "diff", "HEAD~1", "--json").stdout
    plots = json.loads(out[out.index("{"):])
    assert "errors" not in plots, plots.get("errors")
    for name in ("reports/history/ex2.csv", "reports/predictions/ex2.csv"):
        (entry,) = plots["data"][name]
        assert sorted(entry["revisions"]) == ["HEAD~1", "workspace"]
        revisions = {row["rev"] for row in entry["content"]["data"]["values"]}
        assert revisions == {"HEAD~1", "workspace"}
    assert plots["data"]["reports/predictions/ex2.csv"][0]["content"]["title"]["text"] == "ex2 confusion matrix"
    # `dvc plots show` writes the HTML page users open.
    project.run("dvc", "plots", "show", "-o", "dvc_plots")
    page = (project.path / "dvc_plots" / "index.html").read_text()
    assert "ex5 learning curves" in page and "ex3 confusion matrix" in page
