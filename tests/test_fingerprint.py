"""An exercise's fingerprint (denselab.training.fingerprints and the fingerprint stage): what its runs (the lab's and the
study's) train with, checked before they train."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from denselab.core.cli import StageError
from denselab.core.config import load_params
from denselab.core.exercise import TRAINING_KEYS
from denselab.core.layout import PREPARED
from denselab.data.arrays import array_hashes
from denselab.training import fingerprints as S
from stages import fingerprint as F
from tests.conftest import ROOT
from tests.fixtures import copy_params


@pytest.fixture
def prepared(tmp_path):
    folder = tmp_path / "prepared" / "mnist_scaled"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in PREPARED.values():
        np.save(folder / name, rng.random((8, 4), dtype=np.float32))
    return folder


def _digest(folder: Path, digests: Path) -> Path:
    """What prepare writes beside the arrays of `folder`: their sha256."""
    digests.mkdir(exist_ok=True)
    path = digests / f"{folder.name}.json"
    path.write_text(json.dumps(array_hashes(folder)))
    return path


def test_fingerprint_holds_settings_and_array_hashes(prepared):
    spec = load_params(ROOT / "params.yaml").exercises["ex3"]
    found = S.fingerprint("ex3", spec, prepared, array_hashes(prepared))
    assert found["settings"] == spec.training_settings() and set(found["settings"]) == set(TRAINING_KEYS)
    assert found["folder"] == prepared.as_posix() and found["inputs"] == "mnist_scaled"
    assert found["arrays"]["x_train.npy"] == hashlib.sha256((prepared / "x_train.npy").read_bytes()).hexdigest()
    again, folder = S.check(found)
    assert again.training_settings() == spec.training_settings() and again.inputs == spec.inputs
    assert folder == prepared


def test_check_names_changed_arrays(prepared):
    spec = load_params(ROOT / "params.yaml").exercises["ex3"]
    found = S.fingerprint("ex3", spec, prepared, array_hashes(prepared))
    np.save(prepared / "y_test.npy", np.zeros(3))
    with pytest.raises(StageError, match=r"^y_test.npy changed since ex3 was fingerprinted; run `dvc repro`"):
        S.check(found)
    (prepared / "x_train.npy").unlink()
    with pytest.raises(StageError, match=r"cannot read the prepared arrays"):
        S.check(found)


def test_fingerprint_reads_the_digest_never_an_array(tmp_path):
    exercises = load_params(ROOT / "params.yaml").exercises
    digest = tmp_path / "digests" / "mnist_raw.json"
    digest.parent.mkdir()
    # The raw variant's arrays are not here at all (a student's clone): its digest is all the stage reads.
    raw = {name: f"{name}-sha" for name in PREPARED.values()}
    digest.write_text(json.dumps(raw))
    folder = tmp_path / "prepared" / "mnist_raw"
    one, two = (F.fingerprint(name, exercises[name], folder, digest) for name in ("ex1", "ex2"))
    assert one["arrays"] == two["arrays"] == raw and two["folder"].endswith("prepared/mnist_raw")
    assert one["settings"] != two["settings"] and (one["exercise"], two["exercise"]) == ("ex1", "ex2")
    digest.write_text(json.dumps({"x_train.npy": "sha"}))
    with pytest.raises(StageError, match=r"mnist_raw.json: not a digest of the prepared arrays; run `dvc repro`"):
        F.fingerprint("ex1", exercises["ex1"], folder, digest)
    digest.unlink()
    with pytest.raises(StageError, match=r"mnist_raw.json: cannot read the arrays' digest"):
        F.fingerprint("ex1", exercises["ex1"], folder, digest)


def test_main_writes_the_exercise_fingerprint(prepared, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    copy_params(tmp_path)
    digest = _digest(prepared, tmp_path / "digests")
    out = tmp_path / "fingerprints" / "ex3.json"
    F.main(["--exercise", "ex3", "--prepared", "prepared/mnist_scaled", "--digest", str(digest), "--out", str(out)])
    again, folder = S.read_fingerprint(out, "ex3")
    assert folder == Path("prepared/mnist_scaled") and again.training_settings()["epochs"] == 20
    with pytest.raises(StageError, match=r"is the fingerprint of ex3, not of ex1"):
        S.read_fingerprint(out, "ex1")
    with pytest.raises(SystemExit):
        F.main(["--exercise", "ex9", "--prepared", "prepared/mnist_scaled", "--digest", str(digest), "--out", str(out)])


def test_dvc_yaml_has_the_training_stages_read_the_fingerprint_not_params():
    """A change that retrains the lab's run must also rerun the study's runs of the exercise, and neither
    stage parses params.yaml (DVC would, at every `dvc repro`, once per stage)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    train, fingerprint, replicate = stages["train"]["do"], stages["fingerprint"]["do"], stages["replicate"]
    assert fingerprint["params"] == ["exercises.${key}"]  # its file holds only what a run trains with
    # Its own arrays' digest, not the arrays, nor another dataset's: a clone without arrays fingerprints without
    # fetching them, and an MNIST exercise needs no CIFAR-10 stage.
    assert fingerprint["outs"] == ["${paths.fingerprints}/${key}.json"]
    assert "${paths.digests}/${item.inputs}.json" in fingerprint["deps"]
    assert not any(dep.startswith("${paths.prepared}") for dep in fingerprint["deps"])
    for stage, exercise in ((train, "${key}"), (replicate, "${item.exercise}")):
        own = "${paths.fingerprints}/" + f"{exercise}.json"
        module = stage["cmd"].split()[2].split(".")[1]
        # Its code and its exercise's fingerprint, nothing else that can change its result.
        assert stage["deps"] == ["${paths.sources}/" + f"{module}.json", own] and "params" not in stage
        assert f"--fingerprint {own}" in stage["cmd"]
    assert "--seed ${seed}" in train["cmd"]  # params.yaml's seed: a change reruns the stage (its command changed)
