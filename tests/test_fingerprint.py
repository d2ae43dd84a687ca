"""An exercise's fingerprint (denselab.study and the fingerprint stage): what its study runs train with,
checked before they train."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from denselab import study as S
from denselab.cli import StageError
from denselab.config import TRAINING_KEYS, load_params
from denselab.layout import PREPARED, fingerprint_file
from denselab.sources import closure, hashes
from stages import fingerprint as F
from tests.conftest import ROOT


@pytest.fixture
def prepared(tmp_path):
    folder = tmp_path / "prepared" / "mnist_scaled"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in PREPARED.values():
        np.save(folder / name, rng.random((8, 4), dtype=np.float32))
    return folder


@pytest.fixture(scope="module")
def code() -> dict[str, str]:
    return hashes(closure("stages.replicate"))


def test_fingerprint_holds_settings_array_and_code_hashes(prepared, code):
    spec = load_params(ROOT / "params.yaml").exercises["ex3"]
    found = S.fingerprint("ex3", spec, prepared, code)
    assert found["settings"] == spec.training_settings() and set(found["settings"]) == set(TRAINING_KEYS)
    assert found["folder"] == prepared.as_posix() and found["inputs"] == "mnist_scaled"
    assert found["arrays"]["x_train.npy"] == hashlib.sha256((prepared / "x_train.npy").read_bytes()).hexdigest()
    # The code a run executes: the replicate stage and what it imports, training and evaluation included.
    assert {"stages/replicate.py", "denselab/training.py", "denselab/loop.py", "denselab/evaluation.py"} <= set(
        found["code"]
    )
    again, folder = S.check(found)
    assert again.training_settings() == spec.training_settings() and again.inputs == spec.inputs
    assert folder == prepared


def test_check_names_changed_arrays_and_code(prepared, code, tmp_path):
    spec = load_params(ROOT / "params.yaml").exercises["ex3"]
    found = S.fingerprint("ex3", spec, prepared, code)
    np.save(prepared / "y_test.npy", np.zeros(3))
    with pytest.raises(StageError, match=r"^y_test.npy changed since ex3 was fingerprinted; run `dvc repro`"):
        S.check(found)
    found = S.fingerprint("ex3", spec, prepared, code)
    root = tmp_path / "project"
    for package in ("stages", "denselab"):
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "templates"))
    S.check(found, root)  # the same code elsewhere is the same code
    (root / "denselab/loop.py").write_text((root / "denselab/loop.py").read_text() + "\n# edited\n")
    with pytest.raises(StageError, match=r"^denselab/loop.py changed"):
        S.check(found, root)


def test_fingerprints_cover_the_study_and_hash_each_folder_once(prepared, code, monkeypatch):
    params = load_params(ROOT / "params.yaml")
    read = []
    monkeypatch.setattr(F, "array_hashes", lambda folder: read.append(folder) or {"x_train.npy": folder.name})
    found = F.fingerprint(params.exercises, ("ex3", "ex1", "ex2"), prepared.parent, code)
    assert list(found) == ["ex3", "ex1", "ex2"]
    # ex1 and ex2 share the raw arrays, ex3 trains on the scaled ones: two folders read, not three.
    assert read == [prepared.parent / "mnist_scaled", prepared.parent / "mnist_raw"]
    assert found["ex2"]["arrays"] == {"x_train.npy": "mnist_raw"} and found["ex2"]["folder"].endswith(
        "prepared/mnist_raw"
    )
    assert found["ex1"]["settings"] != found["ex2"]["settings"] and found["ex1"]["code"] == code


def test_main_writes_one_file_per_studied_exercise_and_nothing_else(prepared, code, tmp_path, monkeypatch):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["study"]["exercises"] = ["ex3"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "replicate.json").write_text(json.dumps(code))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "fingerprints"
    out.mkdir()
    (out / "ex1.json").write_text("{}")  # from a study that covered ex1: gone once ex1 is no longer studied
    F.main(["--prepared", "prepared", "--sources", "replicate.json", "--out", "fingerprints"])
    assert [p.name for p in out.iterdir()] == [fingerprint_file("ex3")]
    again, folder = S.read_fingerprint(out / "ex3.json", "ex3")
    assert folder == Path("prepared/mnist_scaled") and again.training_settings()["epochs"] == 20
    with pytest.raises(StageError, match=r"is the fingerprint of ex3, not of ex1"):
        S.read_fingerprint(out / "ex3.json", "ex1")


def test_dvc_yaml_and_the_fingerprint_agree_on_code_and_settings():
    """A change that retrains the lab's run must also rerun the study's runs of the exercise."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    train, fingerprint = stages["train"]["do"], stages["fingerprint"]
    # The code that trains the lab's run trains the study's runs too (replicate's sources, which the fingerprint holds).
    training = {
        "denselab/training.py",
        "denselab/models.py",
        "denselab/loop.py",
        "denselab/feed.py",
        "denselab/config.py",
    }
    assert training <= set(closure("stages.train")) and training | {"denselab/evaluation.py"} <= set(
        closure("stages.replicate")
    )
    assert (
        "${paths.sources}/replicate.json" in fingerprint["deps"]
        and "--sources ${paths.sources}/replicate.json" in fingerprint["cmd"]
    )
    assert [p.rsplit(".", 1)[1] for p in train["params"] if p != "seed"] == list(TRAINING_KEYS)
    assert fingerprint["params"] == ["exercises", "study.exercises"]  # its files hold only what a run trains with
    assert fingerprint["outs"] == ["${paths.fingerprints}"] and "${paths.prepared}" in fingerprint["deps"]
    # The runs read nothing else that can change their result; each its exercise's file of the folder.
    run_print = "${paths.fingerprints}/" + fingerprint_file("${item.exercise}")
    assert stages["replicate"]["deps"] == [run_print]
    assert f"--fingerprint {run_print}" in stages["replicate"]["cmd"]
    assert "params" not in stages["replicate"]
