"""An exercise's fingerprint: what its study runs train with, checked before they train."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages import fingerprint as F
from stages.config import TRAINING_KEYS, load_params
from tests.conftest import ROOT


@pytest.fixture
def prepared(tmp_path):
    folder = tmp_path / "prepared" / "mnist_scaled"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in F.ARRAYS:
        np.save(folder / name, rng.random((8, 4), dtype=np.float32))
    return folder


def test_fingerprint_holds_settings_array_and_code_hashes(prepared):
    spec = load_params(ROOT / "params.yaml").exercises["ex3"]
    found = F.fingerprint("ex3", spec, prepared)
    assert found["settings"] == spec.training_settings() and set(found["settings"]) == set(TRAINING_KEYS)
    assert found["folder"] == prepared.as_posix() and found["inputs"] == "mnist_scaled"
    assert found["arrays"]["x_train.npy"] == hashlib.sha256((prepared / "x_train.npy").read_bytes()).hexdigest()
    assert set(found["code"]) == {f"stages/{m}.py" for m in F.TRAINING_CODE}
    again, folder = F.check(found)
    assert again.training_settings() == spec.training_settings() and again.inputs == spec.inputs
    assert folder == prepared


def test_check_names_changed_arrays_and_code(prepared, tmp_path, monkeypatch):
    spec = load_params(ROOT / "params.yaml").exercises["ex3"]
    found = F.fingerprint("ex3", spec, prepared)
    np.save(prepared / "y_test.npy", np.zeros(3))
    with pytest.raises(F.StageError, match=r"^y_test.npy changed since ex3 was fingerprinted; run `dvc repro`"):
        F.check(found)
    found = F.fingerprint("ex3", spec, prepared)
    code = tmp_path / "stages"
    shutil.copytree(F.STAGES, code, ignore=shutil.ignore_patterns("__pycache__", "templates"))
    (code / "loop.py").write_text((code / "loop.py").read_text() + "\n# edited\n")
    monkeypatch.setattr(F, "STAGES", code)
    with pytest.raises(F.StageError, match=r"^stages/loop.py changed"):
        F.check(found)


def test_fingerprints_cover_the_study_and_hash_each_folder_once(prepared, monkeypatch):
    params = load_params(ROOT / "params.yaml")
    read = []
    monkeypatch.setattr(F, "array_hashes", lambda folder: read.append(folder) or {"x_train.npy": folder.name})
    found = F.fingerprints(params.exercises, ("ex3", "ex1", "ex2"), prepared.parent)
    assert list(found) == ["ex3", "ex1", "ex2"]
    # ex1 and ex2 share the raw arrays, ex3 trains on the scaled ones: two folders read, not three.
    assert read == [prepared.parent / "mnist_scaled", prepared.parent / "mnist_raw"]
    assert found["ex2"]["arrays"] == {"x_train.npy": "mnist_raw"} and found["ex2"]["folder"].endswith("prepared/mnist_raw")
    assert found["ex1"]["settings"] != found["ex2"]["settings"]


def test_main_writes_one_file_per_studied_exercise_and_nothing_else(prepared, tmp_path, monkeypatch):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["study"]["exercises"] = ["ex3"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "fingerprints"
    out.mkdir()
    (out / "ex1.json").write_text("{}")  # from a study that covered ex1: gone once ex1 is no longer studied
    F.main(["--prepared", "prepared", "--out", "fingerprints"])
    assert [p.name for p in out.iterdir()] == [F.fingerprint_file("ex3")]
    again, folder = F.check(json.loads((out / "ex3.json").read_text()))
    assert folder == Path("prepared/mnist_scaled") and again.training_settings()["epochs"] == 20


def test_dvc_yaml_and_the_fingerprint_agree_on_code_and_settings():
    """A change that retrains the lab's run must also rerun the study's runs of the exercise."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    train, fingerprint = stages["train"]["do"], stages["fingerprint"]
    code = {f"stages/{m}.py" for m in F.TRAINING_CODE}
    assert {d for d in train["deps"] if d.startswith("stages/")} <= code
    assert code | {"stages/fingerprint.py"} == {d for d in fingerprint["deps"] if d.startswith("stages/")}
    assert [p.rsplit(".", 1)[1] for p in train["params"] if p != "seed"] == list(TRAINING_KEYS)
    assert fingerprint["params"] == ["exercises", "study.exercises"]  # its files hold only what a run trains with
    assert fingerprint["outs"] == ["${paths.fingerprints}"] and "${paths.prepared}" in fingerprint["deps"]
    # The runs read nothing else that can change their result; each its exercise's file of the folder.
    run_print = "${paths.fingerprints}/" + F.fingerprint_file("${item.exercise}")
    assert stages["replicate"]["deps"] == ["stages/replicate.py", run_print]
    assert f"--fingerprint {run_print}" in stages["replicate"]["cmd"]
    assert "params" not in stages["replicate"]
