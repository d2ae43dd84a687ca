"""End to end: real `dvc repro` on a temporary copy of the project, with tiny data in the real formats.

The project is built once from nothing and tagged; every test starts from that tag, with the files, the outputs
and DVC's run-cache as the build left them, so each passes alone and in any order, and no test sees a run
another test trained.
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

from denselab.core.exercise import TRAINING_KEYS
from denselab.core.layout import run_file
from tests.classroom import FETCH, RECOMMENDED_SSHD, REPORT, STUDENT_PULL, Classroom, cache_intact
from tests.fixtures import set_key, sha256
from tests.project import (
    EXERCISES,
    STUDY,
    Project,
    as_built,
    build,
    make_project,
    ran_stages,
    shared_study,
    wait_for,
)
from tests.slurm import AS_BASH_4, slurm_cluster
from tests.slurm import installed as slurm_installed
from tests.sshd import NEEDS_SSHD, pending_handshakes, ssh_server

# Every test here runs dvc on a copy of the project. pytest-xdist runs each group on one worker, beside the other
# groups: each worker builds the tiny project once (the `built` fixture) for the tests of its group.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("pipeline-edits")]
SHARING = pytest.mark.xdist_group("pipeline-sharing")

ALL_STAGES = {
    "sources",
    "validate",
    "download@mnist",
    "download@cifar10",
    "prepare@mnist_raw",
    "prepare@mnist_scaled",
    "prepare@cifar10_scaled",
    *(f"{kind}@{ex}" for kind in ("train", "evaluate", "explain") for ex in EXERCISES),
    "describe@mnist",
    "describe@cifar10",
    *(f"fingerprint@{ex}" for ex in EXERCISES),
    *(f"replicate@{ex}-{seed}" for ex in STUDY["exercises"] for seed in STUDY["seeds"]),
    "aggregate",
    "judge",
    "report",
}
TRAINING = re.compile(r"^(train|replicate)@")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Project:
    """Every exercise and the tiny study: for the tests of what an edit reruns."""
    return build(tmp_path_factory.mktemp("e2e"))


@pytest.fixture
def project(built) -> Project:
    return as_built(built)


# For the tests of running, sharing and comparing: ex2 (the exercise they edit), ex5 (CIFAR-10) and the smallest
# study, one seed of ex1: about half the stages of the full tiny project to build. ex5's hidden layers are cut to
# 64 and 32 units: these tests push, pull, clone and check out its model many times, and the lab's layers make it
# 132 MB (the edits' project trains those: `test_fresh_repro_runs_every_stage_once`).
SMALL = {"exercises": ("ex1", "ex2", "ex5"), "study": {"seeds": [1], "exercises": ["ex1"]}, "ex5_hidden": (64, 32)}


@pytest.fixture(scope="module")
def built_small(tmp_path_factory) -> Project:
    return build(tmp_path_factory.mktemp("e2e-small"), **SMALL)


@pytest.fixture
def small(built_small) -> Project:
    return as_built(built_small)


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
    assert {name: s["n"] for name, s in study["exercises"].items()} == {"ex1": 3}
    run = json.loads(project.read("reports/runs/ex1/seed-2.json"))
    assert run["seed"] == 2 and len(run["history"]["val_accuracy"]) == 2
    assert b"<html" in project.read("reports/index.html")
    for ex in EXERCISES:
        assert {p.name for p in (project.path / "reports/figures" / ex).iterdir()} >= {
            "curves.png",
            "confusion.png",
            "units.png",
        }
    assert json.loads(project.read("reports/datasets/mnist/summary.json"))["shapes"]["after"]["x_train"][1] == 784
    # Training logs one line per epoch: no carriage-return progress bars, and none of TensorFlow's start-up lines.
    assert "\r" not in log and "Epoch 2/2" in log
    assert "absl::InitializeLog" not in log and "oneDNN custom operations" not in log


def test_second_repro_runs_nothing(project):
    ran, log = project.repro()
    assert ran == set(), log
    assert "Data and pipelines are up to date" in log


# What a student changes first (the README's examples among them), one edit each: (dotted key, value, the exercise
# that retrains, what validate's warning says, the claims it holds back). None: no claim of the tiny project rests
# on it.
EDITS = [
    (
        "exercises.ex2.learning_rate",
        0.001,
        "ex2",
        (
            "factorials.activation_by_scale: ex2 and ex3 now differ in learning rate as well; ex1 and ex2 now differ in "
            "learning rate as well"
        ),
        ("ex2_relu_worse", "ex3_scaling"),
    ),
    (
        "exercises.ex2.layers.0.activation",
        "sigmoid",
        "ex2",
        (
            "factorials.activation_by_scale: ex2 and ex3 now differ in hidden activations as well; ex1 and ex2 no longer "
            "differ in hidden activations"
        ),
        ("ex2_relu_worse", "ex3_scaling"),
    ),
    ("exercises.baseline.epochs", 1, "baseline", None, ()),
    (
        "exercises.ex5.epochs",
        1,
        "ex5",
        "claims.ex5_validation_accuracy.test: ex5's curve now ends at epoch 1, the claim reads it after epoch 1",
        ("ex5_validation_accuracy", "ex5_validation_loss"),
    ),
]


@pytest.mark.parametrize("key, value, exercise, warning, held_back", EDITS, ids=[f"{k}={v}" for k, v, *_ in EDITS])
def test_a_students_edit_retrains_only_its_exercise_and_a_confounded_claim_is_not_tested(
    project, key, value, exercise, warning, held_back
):
    """One edit of one exercise: DVC names the stages whose own inputs changed, the exercise retrains alone, only
    its fingerprint and figures change, the datasets' summaries not at all, and after `dvc plots show` Git sees only
    the edit and results to commit. A claim the edit confounds is said by validate and judged not tested, never
    refused."""

    def files(folder: str) -> dict[str, bytes]:
        return {
            str(f.relative_to(project.path)): f.read_bytes() for f in (project.path / folder).rglob("*") if f.is_file()
        }

    before = {folder: files(folder) for folder in ("data/fingerprints", "reports/figures", "reports/datasets")}
    project.edit(lambda d: set_key(d, key, value))
    # train follows from the fingerprint, evaluate from train. `validate` checks every params change (its unchanged
    # marker makes nothing else stale); `aggregate` reads every exercise's settings (the one-change comparisons).
    assert project.status() == {"validate", f"fingerprint@{exercise}", "aggregate", "judge", "report"}
    ran, log = project.repro()
    own = {f"{kind}@{exercise}" for kind in ("fingerprint", "train", "evaluate", "explain")}
    assert ran == {"validate", *own, "aggregate", "judge", "report"}, log
    epochs = project.params()["exercises"][exercise]["epochs"]
    assert f"Epoch {epochs}/{epochs}" in log, log

    after = {folder: files(folder) for folder in before}
    changed = {
        path
        for folder in before
        for path in before[folder] | after[folder]
        if before[folder].get(path) != after[folder].get(path)
    }
    figures = f"reports/figures/{exercise}/"
    assert {p for p in changed if not p.startswith(figures)} == {f"data/fingerprints/{exercise}.json"}, changed
    assert f"{figures}curves.png" in changed
    project.run("dvc", "plots", "show")
    assert (project.path / "dvc_plots/index.html").is_file()
    status = project.run("git", "status", "--porcelain", "--untracked-files=all").stdout.splitlines()
    kept = re.compile(
        rf"^[ M][ M] (params\.yaml|dvc\.lock|reports/(metrics|history|predictions)/{exercise}\.(json|csv)"
        rf"|reports/runs/{exercise}/seed-42\.json|reports/(claims|study)\.json)$"
    )
    assert status and all(kept.match(line) for line in status), status

    warnings = [line for line in log.splitlines() if line.startswith("warning: ")]
    if warning is None:
        assert warnings == [], log
        return
    assert any(line.startswith(f"warning: claims.yaml: {warning}") for line in warnings), log
    named = {claim for line in warnings for claim in line.rsplit(": ", 1)[1].split(" will be judged")[0].split(", ")}
    assert named == set(held_back), warnings
    claims = json.loads(project.read("reports/claims.json"))
    for name in held_back:
        assert claims["claims"][name]["verdict"] == "not_tested", claims["claims"][name]
    if warning.startswith("factorials."):  # the factorial records what else now differs between its cells
        factorial = warning.split(".")[1].split(":")[0]
        assert claims["factorials"][factorial]["confounds"], claims["factorials"][factorial]
    assert 'data-verdict="not_tested"' in project.read("reports/index.html").decode()
    assert project.status() == set()


def test_forced_rerun_gives_byte_identical_results_and_the_model_settings_hold_only_what_train_declares(project):
    """An edit of keys train does not list (a description, the lab's number) does not make train stale; forced to
    run anyway, train, evaluate and explain write the same bytes, params.json beside the model included."""
    paths = (
        "reports/metrics/ex3.json",
        "reports/history/ex3.csv",
        "reports/evaluation/ex3.json",
        "data/models/ex3/params.json",
        *(str(p.relative_to(project.path)) for p in (project.path / "reports/figures/ex3").iterdir()),
    )
    before = {p: project.read(p) for p in paths}

    def edit(d):
        d["descriptions"]["ex3"]["en"] = "another text"
        d["exercises"]["ex3"]["lab_test_accuracy"] = 0.5

    project.edit(edit)
    assert not {"train@ex3", "evaluate@ex3", "explain@ex3"} & project.status()
    ran, log = project.repro("--force", "--single-item", "train@ex3", "evaluate@ex3", "explain@ex3")
    assert ran == {"train@ex3", "evaluate@ex3", "explain@ex3"} and "Epoch 2/2" in log, log
    after = {p: project.read(p) for p in before}
    assert after == before
    assert set(json.loads(before["data/models/ex3/params.json"])) == {"exercise", "seed", "prepared", *TRAINING_KEYS}


def test_deleted_model_is_restored_without_training(project):
    (project.path / "data/models/ex1/model.keras").unlink()
    ran, log = project.repro()
    assert "train@ex1" not in ran and "Epoch" not in log, log
    assert (project.path / "data/models/ex1/model.keras").is_file()


def test_the_report_holds_only_what_its_stage_declares(project):
    """A commit that changes nothing leaves the report up to date, and rendering it again gives the same bytes
    (the page shows no Git revision or clock, which dvc.yaml could not declare)."""
    page = project.read("reports/index.html")
    project.commit("a commit that changes nothing")
    assert project.status() == set()
    ran, log = project.repro("--force", "--single-item", "report")
    assert ran == {"report"}, log
    assert project.read("reports/index.html") == page


def test_adding_a_seed_trains_only_its_runs_and_removing_it_trains_nothing(project):
    project.edit(lambda d: d["study"]["seeds"].append(5))
    ran, log = project.repro()
    assert ran == {"validate", "replicate@ex1-5", "aggregate", "judge", "report"}, log
    study = json.loads(project.read("reports/study.json"))
    assert {s["n"] for s in study["exercises"].values()} == {4}
    project.edit(lambda d: d["study"]["seeds"].remove(5))
    ran, log = project.repro()
    # The removed runs' files stay on disk (DVC leaves them), so aggregate runs; it writes what the build wrote,
    # and the report comes back from the run-cache.
    assert ran == {"validate", "aggregate", "judge"} and "Epoch" not in log, log
    assert "Stage 'report' is cached - skipping run" in log, log
    study = json.loads(project.read("reports/study.json"))
    assert {s["n"] for s in study["exercises"].values()} == {3}
    assert project.status() == set()


def test_adding_a_control_and_its_claim_trains_only_the_control(project):
    """A teacher adds a control (exercise 1's network on x/255) to the study and a claim that tests it: only the
    control's stages and runs train; the study, the verdicts and the page follow."""

    def add(data):
        control = {**data["exercises"]["ex1"], "inputs": "mnist_scaled", "control": True}
        del control["lab_test_accuracy"]
        data["exercises"]["ex1_x255"] = control
        data["study"]["exercises"].append("ex1_x255")
        data["claims"]["scaling_helps_sigmoid"] = {
            "text": {"en": "Scaling helps the sigmoid network too."},
            "test": {"better": "ex1_x255", "than": "ex1", "aspects": ["input scaling"]},
        }

    project.edit(add)
    ran, log = project.repro()
    assert ran == {
        *("validate", "train@ex1_x255", "evaluate@ex1_x255", "explain@ex1_x255", "fingerprint@ex1_x255"),
        *(f"replicate@ex1_x255-{seed}" for seed in STUDY["seeds"]),
        *("aggregate", "judge", "report"),
    }, log
    claims = json.loads(project.read("reports/claims.json"))
    found = claims["claims"]["scaling_helps_sigmoid"]
    assert found["kind"] == "pair" and found["runs"] == {"ex1": 3, "ex1_x255": 3}
    assert found["verdict"] in {"supported", "not_supported", "contradicted"} and "p_adjusted" in found["test"]
    page = project.read("reports/index.html").decode()
    assert 'data-claim="scaling_helps_sigmoid"' in page and "Scaling helps the sigmoid network too." in page
    assert project.status() == set()


def test_editing_a_template_reruns_only_the_report(project):
    style = project.path / "denselab/report/templates/style.css"
    style.write_text(style.read_text() + "\n/* tweak */\n")
    # sources reruns on any edit of the code folders; of its files only the report's changes (it lists the templates).
    assert project.status() == {"sources"}
    ran, _ = project.repro()
    assert ran == {"sources", "report"}
    assert b"/* tweak */" in project.read("reports/index.html")


def test_editing_a_library_module_reruns_exactly_the_stages_that_import_it(project):
    """statistics.py is imported by aggregate, by judge through claims.py, by report through observations.py, and
    by validate through the claim kinds it checks claims.yaml with (and by no other stage): those four rerun,
    whatever else they share with the rest. validate's marker comes out the same, so the downloads after it do not."""
    statistics = project.path / "denselab/study/statistics.py"
    statistics.write_text(statistics.read_text() + "\n# an edit that changes no number\n")
    ran, log = project.repro()
    assert ran == {"sources", "validate", "aggregate", "judge", "report"}, log
    assert project.status() == set()


@SHARING
def test_input_scaling_edit_reuses_or_builds_the_arrays(small):
    """ex2 switches to a variant that exists (mnist_scaled: no prepare runs for it), ex5 to one that does not yet
    (cifar10_raw: only that prepare runs); then each exercise's own stages."""

    def switch(d):
        d["exercises"]["ex2"]["inputs"] = "mnist_scaled"
        d["inputs"]["cifar10_raw"] = {"dataset": "cifar10", "divide_by_255": False}
        d["exercises"]["ex5"]["inputs"] = "cifar10_raw"

    small.edit(switch)
    ran, log = small.repro()
    own = {f"{kind}@{ex}" for kind in ("fingerprint", "train", "evaluate", "explain") for ex in ("ex2", "ex5")}
    assert ran == {"validate", "prepare@cifar10_raw", *own, "aggregate", "judge", "report"}, log
    print_ = json.loads(small.read("data/fingerprints/ex2.json"))
    assert (print_["inputs"], print_["folder"]) == ("mnist_scaled", "data/prepared/mnist_scaled"), print_


@pytest.mark.xdist_group("pipeline-mnist-only")  # a project of its own: it can run beside any group
def test_one_mnist_exercise_needs_only_mnist(tmp_path):
    """The README's quick path: one exercise from nothing, with a mirror that holds MNIST only. No CIFAR-10
    stage is in its graph, so none runs and nothing asks for the file."""
    project = make_project(tmp_path, study={"seeds": [1], "exercises": ["ex3"]}, exercises=("ex3", "ex5"))
    (tmp_path / "mirror" / "cifar-10-python.tar.gz").unlink()
    ran, log = project.repro("evaluate@ex3")
    assert ran == {
        *("sources", "validate", "download@mnist", "prepare@mnist_scaled"),
        *("fingerprint@ex3", "train@ex3", "evaluate@ex3"),
    }, log
    assert json.loads(project.read("reports/metrics/ex3.json"))["test_accuracy"] >= 0


# --- bad params, interruptions, concurrent runs ---------------------------------------------------

BAD_PARAMS = [
    # (dotted key, value, text the error must contain). Every kind of bad value is a unit test (tests/test_config.py,
    # tests/test_validate.py); these few show that `dvc repro` stops at validate with that message, touching nothing.
    ("exercises.ex2.epochs", "ten", "exercises.ex2.epochs: expected an integer >= 1, got str 'ten'"),
    # A misspelt top-level key: DVC tracks only the keys a stage lists, so validate depends on the whole file.
    ("studdy", {"seeds": [5]}, "studdy: unknown key; allowed here: claims, datasets, descriptions, exercises,"),
    # Values that parse, but cannot train here: caught by validate before TensorFlow, with the figures.
    (
        "exercises.ex2.layers.0.units",
        100_000_000,
        "exercises.ex2.layers: layers of 100000000, 10 units on 784 inputs need about",
    ),
    ("study.exercises", ["ex1", "ex9"], "study.exercises[1]: unknown exercise 'ex9'"),
    # A claim naming an exercise that does not exist.
    ("claims.ex5_too_simple.exercise", "ex9", "claims.ex5_too_simple.exercise: unknown exercise 'ex9'"),
]


@SHARING
def test_bad_params_fail_fast_and_touch_nothing(small):
    good, good_claims = small.read("params.yaml"), small.read("claims.yaml")
    before = small.snapshot()
    try:
        for key, value, message in BAD_PARAMS:
            small.edit(lambda d, key=key, value=value: set_key(d, key, value))
            out = small.run("dvc", "repro", check=False)
            log = out.stdout + out.stderr
            assert out.returncode != 0, (key, log)
            assert message in log, (key, log)
            assert "Running stage 'validate'" in log and len(re.findall("Running stage", log)) == 1, log
            assert "Traceback" not in log, (key, log)
            assert small.snapshot() == before, key
            (small.path / "params.yaml").write_bytes(good)
            (small.path / "claims.yaml").write_bytes(good_claims)
        # Broken YAML: DVC itself refuses to read the pipeline, and names the file.
        (small.path / "params.yaml").write_text(good.decode() + "\nexercises: [\n")
        out = small.run("dvc", "repro", check=False)
        assert out.returncode != 0 and "params.yaml" in out.stdout + out.stderr
        assert small.snapshot() == before
    finally:
        (small.path / "params.yaml").write_bytes(good)
        (small.path / "claims.yaml").write_bytes(good_claims)
    ran, log = small.repro()
    assert ran <= {"validate"}, log


@SHARING
def test_a_stale_fingerprint_stops_training_before_tensorflow_is_imported(small):
    """The training stages read no params (validate checked them); what they read, the exercise's fingerprint, is
    checked against the arrays in milliseconds, before TensorFlow is imported."""
    print_ = json.loads(small.read("data/fingerprints/ex2.json"))
    print_["arrays"]["y_train.npy"] = "0" * 64  # arrays rebuilt since, outside DVC
    (small.path.parent / "stale.json").write_text(json.dumps(print_))
    code = (
        "import sys\n"
        "from stages.train import main\n"
        "try:\n    main(['--exercise', 'ex2', '--seed', '1', '--fingerprint', '../stale.json', '--model-dir', 'y',"
        " '--history', 'z', '--summary', 'w'])\n"
        "except SystemExit as e:\n    print(e.code, 'tensorflow' in sys.modules)\n"
    )
    env = {**small.env, "PYTHONPATH": str(small.path)}
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=small.path, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["2", "False"], out.stderr
    assert out.stderr.strip() == "error: y_train.npy changed since ex2 was fingerprinted; run `dvc repro`"


@SHARING
def test_a_second_repro_fails_fast_while_one_trains_and_a_sigkilled_one_is_recovered_by_the_next(small):
    """While `dvc repro` trains, a second one fails at once with DVC's lock message instead of waiting. The first,
    killed with SIGKILL mid-training, leaves nothing the next `dvc repro` cannot finish: a whole model, its
    metrics, no temporary file. The edit set back, nothing trains: the build's run comes back from the run-cache."""
    small.edit(lambda d: d["exercises"]["ex2"].update(epochs=100))
    first = small.popen("repro")
    try:
        # The second tries while the first's train stage starts (TensorFlow's import, then 100 short epochs).
        wait_for(first, r"Running stage 'train@ex2'")
        second = small.run("dvc", "repro", check=False)
        # The repo lock, or the per-output lock a running stage holds.
        assert second.returncode != 0
        assert re.search(r"Unable to acquire lock|is busy, it is being blocked by", second.stdout + second.stderr)
        assert first.poll() is None, "the first repro ended while the second tried"
        wait_for(first, r"Epoch 3/100")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    first.log.seek(0)
    assert "Epoch 100/100" not in first.log.read(), "killed after training, not during it"
    ran, log = small.repro()
    # evaluate loaded the model the recovered train saved: whole, and ex2's.
    assert {"train@ex2", "evaluate@ex2"} <= ran and "Epoch 100/100" in log, log
    assert json.loads(small.read("reports/summary/ex2.json"))["total_params"] == 623_290
    metrics = json.loads(small.read("reports/metrics/ex2.json"))
    assert set(metrics) == {"test_accuracy", "test_loss"}
    assert small.status() == set()
    assert not list((small.path / "data").rglob(".*.tmp*"))
    # The edit set back: the build's runs come back from the run-cache, nothing trains.
    small.restore("params.yaml")
    ran, log = small.repro()
    assert not {r for r in ran if TRAINING.match(r)} and "Epoch" not in log, log
    assert re.search(r"Stage 'train@ex2' is cached - skipping run", log), log
    assert small.status() == set()


# --- experiments and sharing ----------------------------------------------------------------------


@SHARING
def test_queued_experiments_run_two_at_a_time_and_one_on_a_branch_compares_with_main_on_a_fresh_clone(small, tmp_path):
    """A student queues two experiments on ex2 (another learning rate, more epochs): `dvc queue start -j 2` runs them
    side by side, `dvc exp show` lists each with its params and metrics. One promoted to a branch holds its results
    whole; a fresh clone of the branch (nothing pulled) compares it with main: metrics, params and plots."""
    for name, setting in (("lr-small", "exercises.ex2.learning_rate=0.001"), ("epochs-3", "exercises.ex2.epochs=3")):
        small.run("dvc", "exp", "run", "--queue", "-n", name, "-S", setting)
    # `dvc queue start` returns when its workers are done: watch the status from beside it meanwhile.
    workers = small.popen("queue", "start", "-j", "2")
    deadline = time.monotonic() + 600
    most_at_once = 0  # the most experiments `dvc queue status` showed running at the same moment
    try:
        while time.monotonic() < deadline:
            status = small.run("dvc", "queue", "status").stdout
            most_at_once = max(most_at_once, len(re.findall(r"\bRunning\b", status)))
            if workers.poll() is not None and "Running" not in status and "Queued" not in status:
                break
            time.sleep(3)  # each look is a DVC process; both experiments run together for longer than this
        else:
            pytest.fail(f"the queue did not finish within 600 s:\n{status}")
    finally:
        if workers.poll() is None:
            os.killpg(workers.pid, signal.SIGKILL)
        small.run("dvc", "queue", "stop", check=False)
    assert most_at_once == 2, status
    assert "Failed" not in status and status.count("Success") >= 2, status
    table = json.loads(small.run("dvc", "exp", "show", "--json").stdout)
    exps = [e for rev in table for e in (rev.get("experiments") or [])]
    names = {run["name"]: run["data"] for e in exps for run in e.get("revs", [])}
    assert {"lr-small", "epochs-3"} <= set(names), table
    ex2 = {name: names[name]["params"]["params.yaml"]["data"]["exercises"]["ex2"] for name in ("lr-small", "epochs-3")}
    assert (ex2["lr-small"]["learning_rate"], ex2["epochs-3"]["epochs"]) == (0.001, 3), ex2
    assert "test_accuracy" in names["lr-small"]["metrics"]["reports/metrics/ex2.json"]["data"]

    # Promoted to a branch, the experiment is a commit with its results: checked out, nothing is stale.
    small.run("dvc", "exp", "branch", "lr-small", "faster-ex2")
    small.run("git", "checkout", "-q", "faster-ex2")
    small.run("dvc", "checkout", "--quiet")
    assert small.status() == set()
    clone = tmp_path / "fresh"
    small.run("git", "clone", "-q", "--branch", "faster-ex2", str(small.path), str(clone), cwd=tmp_path)
    small.run("git", "branch", "-q", "main", "origin/main", cwd=clone)
    assert not (clone / "data/models/ex2/model.keras").exists()  # nothing pulled: only what Git holds

    diff = json.loads(small.run("dvc", "metrics", "diff", "main", "--json", cwd=clone).stdout)
    changed = {path for path, values in diff.items() if any(v.get("diff") not in (0, None) for v in values.values())}
    assert changed == {"reports/metrics/ex2.json"}, diff
    assert diff["reports/metrics/ex2.json"]["test_loss"]["diff"] != 0
    params = json.loads(small.run("dvc", "params", "diff", "main", "--json", cwd=clone).stdout)
    assert list(params["params.yaml"]) == ["exercises.ex2.learning_rate"]
    assert params["params.yaml"]["exercises.ex2.learning_rate"]["old"] == 0.01
    assert params["params.yaml"]["exercises.ex2.learning_rate"]["new"] == 0.001

    out = small.run("dvc", "plots", "diff", "main", "--json", cwd=clone).stdout
    plots = json.loads(out[out.index("{") :])
    assert "errors" not in plots, plots.get("errors")
    for name in ("reports/history/ex2.csv", "reports/predictions/ex2.csv"):
        (entry,) = plots["data"][name]
        assert sorted(entry["revisions"]) == ["main", "workspace"]
        assert {row["rev"] for row in entry["content"]["data"]["values"]} == {"main", "workspace"}
    assert plots["data"]["reports/predictions/ex2.csv"][0]["content"]["title"]["text"] == "ex2 confusion matrix"
    # `dvc plots show` writes the HTML page users open.
    small.run("dvc", "plots", "show", "-o", "dvc_plots", cwd=clone)
    page = (clone / "dvc_plots" / "index.html").read_text()
    assert "ex5 learning curves" in page and "ex2 confusion matrix" in page


@SHARING
def test_sharing_through_a_remote_needs_no_training(small, tmp_path):
    small.run("dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    small.commit("remote")
    small.run("dvc", "push", "--run-cache")
    clone = tmp_path / "clone"
    small.run("git", "clone", "-q", str(small.path), str(clone), cwd=tmp_path)
    small.run("dvc", "pull", cwd=clone)
    out = small.run("dvc", "repro", cwd=clone)
    assert "Running stage" not in out.stdout + out.stderr, out.stdout
    assert (clone / "reports/index.html").read_bytes() == small.read("reports/index.html")
    assert (clone / "data/models/ex5/model.keras").read_bytes() == small.read("data/models/ex5/model.keras")


def _cache_checksums(folder: Path) -> dict[str, str]:
    """Every file of a DVC cache and the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def _objects(project: Path, stages: set[str], under: str = "") -> set[str]:
    """The md5 of every cache object the cached outputs of `stages` under the folder `under` are made of (a
    folder's manifest and its files), as the project's dvc.lock and cache hold them; `stages` names stages or,
    for a foreach or matrix, groups. Outputs kept in Git are not fetched from a remote: they are left out."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    listed = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True, check=True)
    in_git = set(listed.stdout.split())
    found = set()
    for name, stage in lock.items():
        if name in stages or name.split("@")[0] in stages:
            for out in stage.get("outs", []):
                if out["path"] in in_git or not out["path"].startswith(under):
                    continue
                found.add(out["md5"])
                if out["md5"].endswith(".dir"):
                    manifest = project / ".dvc/cache/files/md5" / out["md5"][:2] / out["md5"][2:]
                    found |= {entry["md5"] for entry in json.loads(manifest.read_text())}
    return found


def _cached(project: Path) -> set[str]:
    """The md5 of every object in the project's DVC cache (not its run-cache)."""
    folder = project / ".dvc/cache/files/md5"
    return {p.parent.name + p.name for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()


@SHARING
@NEEDS_SSHD
def test_a_class_remote_over_ssh_students_fetch_only_what_they_read_and_cannot_write(small, tmp_path):
    """A real sshd on loopback holds the class's cache. The teacher pushes what the pipeline built; a student's
    clone, with a read-only key, fetches the report and what it is made of, nothing else; an edit of a studied
    exercise trains only that exercise and fetches only the arrays it trains on; the student's push is refused,
    the cache intact."""
    with ssh_server(tmp_path / "server") as server:
        storage = server.storage
        home = tmp_path / "home"  # the users' ~/.ssh: the server's host key, as a teacher hands it out
        (home / ".ssh").mkdir(parents=True)
        shutil.copy(server.known_hosts, home / ".ssh" / "known_hosts")
        env = {**small.env, "HOME": str(home)}

        def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
            out = subprocess.run(
                [sys.executable, "-m", "dvc", *args],
                check=False,
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert out.returncode == 0 or not check, out.stdout + out.stderr
            return out

        # docs/class.md: the repository names the students' URL; the teacher's own URL and key are local.
        dvc("remote", "add", "-d", "class", server.url("student"), cwd=small.path)
        small.commit("the class remote")
        dvc("remote", "modify", "--local", "class", "url", server.url("teacher"), cwd=small.path)
        dvc("remote", "modify", "--local", "class", "keyfile", str(server.keys["teacher"]), cwd=small.path)
        dvc("push", "--run-cache", cwd=small.path)
        before = _cache_checksums(storage)
        assert len(before) > 20

        def access(cwd: Path) -> str:  # the README's one-line check of what this clone may do on the remote
            out = subprocess.run(
                [sys.executable, "-m", "denselab.tools.access"],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert out.returncode == 0 and len(out.stdout.splitlines()) == 1, out.stdout + out.stderr
            return re.sub(r"^the DVC remote 'class' \(ssh://127\.0\.0\.1:\d+/\S+\): ", "", out.stdout)

        assert access(small.path).startswith("may read and write")

        clone = tmp_path / "student"
        small.run("git", "clone", "-q", str(small.path), str(clone), cwd=tmp_path)
        dvc("remote", "modify", "--local", "class", "keyfile", str(server.keys["student"]), cwd=clone)
        assert access(clone).startswith("may read, may not write")
        dvc("pull", *STUDENT_PULL, cwd=clone)
        assert (clone / "reports/index.html").read_bytes() == small.read("reports/index.html")
        # Exactly the report and what it is made of came over: no array, no model, no download.
        assert _cached(clone) == _objects(small.path, set(STUDENT_PULL))
        # Nothing trains. The report may run once: a folder it depends on (the training summaries) holds DVC's
        # .gitignore in a clone, so DVC sees it changed, not missing; it fetches what it reads (a few kB) and writes
        # the same page again.
        out = dvc("repro", "--pull", "--allow-missing", cwd=clone)
        assert ran_stages(out.stdout + out.stderr) <= {"report"}
        assert (clone / "reports/index.html").read_bytes() == small.read("reports/index.html")
        heavy = _objects(small.path, {"download", "prepare", "train", "evaluate"}, under="data/")
        digests = _objects(small.path, {"prepare"}, under="data/digests")
        assert "Epoch" not in out.stdout + out.stderr and _cached(clone) & heavy <= digests

        # The student edits a studied exercise: only its runs train, and only the arrays they read come over.
        params = yaml.safe_load((clone / "params.yaml").read_text())
        params["exercises"]["ex1"]["learning_rate"] = 0.02
        (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
        out = dvc("repro", "--pull", "--allow-missing", cwd=clone)
        ran = ran_stages(out.stdout + out.stderr)
        assert ran == {
            *("validate", "fingerprint@ex1", "train@ex1", "evaluate@ex1", "explain@ex1", "replicate@ex1-1"),
            *("aggregate", "judge", "report"),
        }, out.stdout
        arrays = _objects(small.path, {"prepare@mnist_raw"}, under="data/prepared")
        assert _cached(clone) & (heavy - digests) == arrays, "fetched more than ex1's arrays"
        assert "ex1's arrays: fetching data/prepared/mnist_raw/x_train.npy" in out.stdout + out.stderr
        assert json.loads((clone / "reports/metrics/ex1.json").read_text()) != json.loads(
            small.read("reports/metrics/ex1.json")
        )

        # The student's new results cannot go to the class's storage: the server refuses every write.
        refused = dvc("push", cwd=clone, check=False)
        assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused.stderr
        assert _cache_checksums(storage) == before


@SHARING
@NEEDS_SSHD
def test_a_class_fetching_at_once_gets_every_report_through_dropped_connections(small, tmp_path):
    """Eight students fetch the report at the same moment from a server that drops new connections once three
    handshakes are pending, while three other clients sit in theirs: with the README's fetch, every student retries,
    saying so, and ends with the teacher's report once the three are gone. Without retries (three students: the
    server drops every one alike) every fetch fails, leaving no report and a cache of whole objects only."""
    with ssh_server(tmp_path / "server", "MaxStartups 3\nLoginGraceTime 120\n") as server:
        classroom = Classroom(small, server, tmp_path / "class")
        clones = [classroom.enrol(f"no-retry-{i}") for i in range(3)]
        with pending_handshakes(server, 3):
            results = classroom.fetch_all(clones, (*FETCH, "--retries", "0"))
        assert all(r.returncode == 2 and r.report is None for r in results), results
        assert all("Connection" in r.error and "the DVC remote 'class'" in r.error for r in results), results
        assert all(cache_intact(clone) for clone in clones)

        clones = [classroom.enrol(f"student-{i}") for i in range(8)]
        with pending_handshakes(server, 3):
            procs = [classroom.start(clone) for clone in clones]
            for proc in procs:  # every student has been dropped once, and is waiting to try again
                wait_for(proc, r"dropped the connection .*; retry 1 of 5 in \d+ s", timeout=300)
        results = [classroom.finish(clone, proc) for clone, proc in zip(clones, procs, strict=True)]
    assert all(r.ok and r.report == sha256(small.path / REPORT) for r in results), results
    assert all(r.retries >= 1 for r in results)


@SHARING
@NEEDS_SSHD
def test_a_push_while_students_fetch_leaves_each_with_one_commits_report_whole(small, tmp_path):
    """The teacher pushes new results (ex2 retrained at another learning rate) while students fetch. A student
    whose clone is at the old commit ends with the old report, one at the new commit (cloned, or pulled with Git,
    during the push) with the new one: each report whole and the one its commit names, never a mix."""
    with ssh_server(tmp_path / "server", RECOMMENDED_SSHD) as server:
        classroom = Classroom(small, server, tmp_path / "class")
        old = small.run("git", "rev-parse", "HEAD").stdout.strip()
        reports = {old: sha256(small.path / REPORT)}
        returning = classroom.enrol("returning")  # fetched the old results yesterday; pulls with Git today
        assert classroom.finish(returning, classroom.start(returning)).ok

        small.edit(lambda data: set_key(data, "exercises.ex2.learning_rate", 0.003))
        small.repro()
        small.commit("ex2 at learning rate 0.003")
        new = small.run("git", "rev-parse", "HEAD").stdout.strip()
        reports[new] = sha256(small.path / REPORT)
        assert reports[new] != reports[old]

        early = [classroom.enrol(f"early-{i}") for i in range(4)]  # cloned before the teacher's push
        procs = [classroom.start(clone) for clone in early]
        classroom.publish()  # `dvc push --run-cache`, then `git push`, while the early ones fetch
        late = [classroom.enrol(f"late-{i}") for i in range(3)]
        small.run("git", "pull", "-q", cwd=returning)
        procs += [classroom.start(clone) for clone in [*late, returning]]
        results = [classroom.finish(c, p) for c, p in zip([*early, *late, returning], procs, strict=True)]
    assert all(r.ok for r in results), results
    assert [r.commit for r in results] == [old] * 4 + [new] * 4
    assert all(r.report == reports[r.commit] for r in results), results
    assert all(cache_intact(clone) for clone in [*early, *late, returning])


NEEDS_SLURM = pytest.mark.skipif(
    not (slurm_installed() and os.geteuid() == 0) and not os.environ.get("DENSELAB_REQUIRE_SLURM"),
    reason="needs Debian's slurmctld, slurmd, slurm-client and munge, and root (.ci/run installs them)",
)


@SHARING
@NEEDS_SLURM
def test_the_study_fans_out_over_slurm_a_killed_run_is_named_and_resubmitted_alone(small, tmp_path):
    """A teacher adds two seeds to the study and fans it out over a real one-node Slurm (tests/slurm.py) from a
    clone: the run the remote's run-cache has is not submitted, the two others are. One task is cancelled on
    purpose: the command names it with its log's last line and builds no page. Run again, it submits that run alone,
    then renders the page, byte for byte the page `dvc repro` renders on one machine from the same commit."""
    small.run("dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    small.run("dvc", "push", "--run-cache")  # the build's results and runs, the study's seed 1 among them
    small.edit(lambda d: set_key(d, "study.seeds", [1, 2, 3]))
    small.commit("two more seeds, on the cluster")
    origin = tmp_path / "origin.git"
    small.run("git", "init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    small.run("git", "push", "-q", str(origin), "main")
    teacher = tmp_path / "login-node"
    small.run("git", "clone", "-q", str(origin), str(teacher), cwd=tmp_path)

    command = [sys.executable, "-m", "denselab.tools.slurm", "--cpus-per-task", "1", "--poll", "0.5"]
    # The tasks run as on RHEL 8's bash 4.4: Slurm passes the environment on, and bash reads BASH_ENV first. Each
    # task's first bash (the task script) notes its task in a file, never on stdout: in CI `python` is pyenv's shim, a
    # bash script whose own command substitutions would read such a line.
    seen = tmp_path / "bash4.seen"
    (tmp_path / "bash4.env").write_text(
        f"{AS_BASH_4}"
        'if [ -n "${SLURM_ARRAY_TASK_ID:-}" ] && [ -z "${BASH4_SEEN:-}" ]; then\n'
        "  export BASH4_SEEN=1\n"
        f'  echo "$SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID $0" >>{seen}\n'
        "fi\n"
    )
    with slurm_cluster(tmp_path / "slurm", memory_mb=8192) as cluster:
        env = {**small.env, "SLURM_CONF": cluster.env["SLURM_CONF"], "BASH_ENV": str(tmp_path / "bash4.env")}
        log = open(tmp_path / "first.log", "w+")  # noqa: SIM115  (wait_for reads it while the command writes)
        first = subprocess.Popen(command, cwd=teacher, env=env, stdout=log, stderr=subprocess.STDOUT)
        first.log = log
        wait_for(first, r"denselab: job \d+: .*; logs in \S+")
        log.seek(0)
        job, logs = re.search(r"denselab: job (\d+): .*; logs in (\S+)", log.read()).groups()
        second = small.run(*command, cwd=teacher, env=env, check=False)  # while the first array is live
        victim = Path(logs) / "1.log"  # replicate@ex1-3: cancelled once its task is building
        deadline = time.monotonic() + 300
        while "denselab: checkout" not in (victim.read_text() if victim.is_file() else ""):
            assert time.monotonic() < deadline and first.poll() is None, victim
            time.sleep(0.2)
        assert cluster.run("scancel", f"{job}_1").returncode == 0
        assert first.wait(timeout=600) == 1
        log.seek(0)
        said = log.read()
        page_before = (teacher / "reports/index.html").exists()
        # Run again; while it waits for its one task, the controller restarts, down for longer than squeue's own
        # attempts to connect (9 to 13 s, measured): the command asks again until it answers.
        again_log = open(tmp_path / "again.log", "w+")  # noqa: SIM115
        again = subprocess.Popen(command, cwd=teacher, env=env, stdout=again_log, stderr=subprocess.STDOUT)
        again.log = again_log
        wait_for(again, r"denselab: job \d+: ")
        # The same commit built on one machine, for the page to compare: it trains while the controller is down.
        local = small.popen("repro")
        cluster.restart_controller(down=20)
        assert again.wait(timeout=600) == 0
        again_log.seek(0)
        out = again_log.read()
        task_logs = [p.read_text() for p in Path(logs).parent.parent.glob("*/logs/*.log")]

    assert second.returncode == 2 and second.stdout == "", second.stdout
    commit = small.run("git", "rev-parse", "--short=7", "HEAD", cwd=teacher).stdout.strip()
    refused = (
        f"error: job {job} is already building this study's runs of commit {commit} (`squeue --jobs={job}`): wait "
        f"until it has ended, then run this again to collect them; `scancel {job}` stops it"
    )
    assert second.stderr.splitlines() == [refused]
    assert "denselab: 1 of 3 runs in the run-cache" in said, said
    assert re.search(r": 2 runs \(--cpus-per-task=1, --mem=1536M, --time=11\)", said), said
    assert re.search(r"\[\d/2\] replicate@ex1-2 pushed", said), said
    failed = re.findall(r"\[\d/2\] replicate@ex1-3 failed \(CANCELLED\): (.*)", said)
    assert failed == ["denselab: replicate@ex1-3 stopped by Slurm (cancelled, out of time, or its node went down)"]
    assert f"replicate@ex1-3 is missing: {failed[0]}" in said
    assert "1 of 2 runs failed; run this again to submit only those" in said
    assert not page_before  # no page from a study with a run missing
    assert "2 of 3 runs in the run-cache" in out and re.search(r": 1 run \(", out), out
    # The controller's restart: squeue asked again until it answered, and the wait went on.
    assert re.search(r"denselab: squeue failed \(.*Unable to contact slurm controller.*\); asking again in 2 s", out), (
        out
    )
    assert re.search(r"\[1/1\] replicate@ex1-3 pushed", out), out
    # Each task trained its own run and nothing else; the collector trained nothing.
    finished = [text for text in task_logs if "denselab: done" in text]
    assert len(task_logs) == 3 and len(finished) == 2
    # Every task's script ran as bash 4 runs it: three tasks (two of the first array, one of the second), once each.
    tasks = [line.split()[:2] for line in seen.read_text().splitlines()]
    assert len(tasks) == 3 and len({tuple(t) for t in tasks}) == 3 and {t[0] for t in tasks} >= {job}, tasks
    for text in finished:
        (stage,) = re.findall(r"denselab: done (\S+)", text)
        assert re.findall(r"Running stage '((?:train|replicate)@[^']+)'", text) == [stage], text
    assert not [s for s in ran_stages(out) if TRAINING.match(s)], out
    # Seed 1's run is the commit's (dvc.lock): pulled; the cluster's two come from the run-cache.
    assert len(re.findall(r"Stage 'replicate@ex1-[23]' is cached - skipping run", out)) == 2, out

    assert local.wait(timeout=600) == 0  # one machine, the same commit: the two new runs trained here
    local.log.seek(0)
    log_text = local.log.read()
    ran = ran_stages(log_text)
    assert {s for s in ran if TRAINING.match(s)} == {"replicate@ex1-2", "replicate@ex1-3"}, log_text
    for result in ("reports/study.json", "reports/claims.json", "reports/index.html"):
        assert (teacher / result).read_bytes() == small.read(result), result


@pytest.mark.xdist_group("pipeline-workers")  # a project of its own
def test_workers_spread_the_study_and_a_collector_trains_nothing(tmp_path):
    """Two machines train disjoint halves of the study and push; a third collects and trains nothing.

    The lab's runs (train, evaluate) are results kept in Git: the machine that trains them commits
    and pushes them as usual. The other seeds' runs travel through DVC's run-cache alone.
    """
    project, bare = shared_study(tmp_path, "a study over two machines")

    halves = {
        "worker-a": ["evaluate@ex1", "evaluate@ex2"],  # the lab's runs
        "worker-b": ["replicate@ex1-1", "replicate@ex2-1"],  # the study's other seed
    }
    trained = {}
    for worker, targets in halves.items():
        clone = tmp_path / worker
        project.run("git", "clone", "-q", str(bare), str(clone), cwd=tmp_path)
        out = project.run("dvc", "repro", *targets, cwd=clone)
        trained[worker] = {r for r in ran_stages(out.stdout + out.stderr) if TRAINING.match(r)}
        project.run("dvc", "push", "--run-cache", cwd=clone)
        if worker == "worker-a":  # the lab's runs: committed and pushed like any result kept in Git
            project.run("git", "add", "-A", cwd=clone)
            project.run("git", "commit", "-q", "-m", "the lab's runs", cwd=clone)
            project.run("git", "push", "-q", "origin", "main", cwd=clone)
    assert trained["worker-a"] == {"train@ex1", "train@ex2"}
    assert trained["worker-b"] == set(halves["worker-b"])
    accuracy = {
        name: [
            json.loads((tmp_path / "worker-a" / f"reports/metrics/{name}.json").read_text())["test_accuracy"],
            json.loads((tmp_path / "worker-b" / "reports/runs" / name / run_file(1)).read_text())["test_accuracy"],
        ]
        for name in ("ex1", "ex2")
    }

    collector = tmp_path / "collector"
    project.run("git", "clone", "-q", str(bare), str(collector), cwd=tmp_path)
    out = project.run("dvc", "repro", "--pull", cwd=collector)
    log = out.stdout + out.stderr
    ran = ran_stages(log)
    assert not {r for r in ran if re.match(r"^(train|evaluate|replicate)@", r)} and "Epoch" not in log, log
    assert {"aggregate", "report"} <= ran
    assert len(re.findall(r"Stage 'replicate@ex\d-1' is cached - skipping run", log)) == 2, log

    from bs4 import BeautifulSoup

    page = BeautifulSoup((collector / "reports/index.html").read_text(), "lxml")
    assert [th.get_text() for th in page.select("table.runs thead th")][1:] == ["seed 42", "seed 1"]
    for name, values in accuracy.items():
        cells = [td.get_text() for td in page.select_one(f'table.runs tr[data-exercise="{name}"]').select("td")[1:]]
        assert cells == [f"{v * 100:.2f}%" for v in values], (name, cells, values)
    assert len(page.select("#comparisons .verdict")) == 1  # ex1 -> ex2, judged over both machines' runs
