"""An exercise's fingerprint: what its study runs train with, checked before they train."""

from __future__ import annotations

import hashlib
import shutil

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


def test_dvc_yaml_and_the_fingerprint_agree_on_code_and_settings():
    """A change that retrains the lab's run must also rerun the study's runs of the exercise."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    train, fingerprint = stages["train"]["do"], stages["fingerprint"]["do"]
    code = {f"stages/{m}.py" for m in F.TRAINING_CODE}
    assert {d for d in train["deps"] if d.startswith("stages/")} <= code
    assert code | {"stages/fingerprint.py"} == {d for d in fingerprint["deps"] if d.startswith("stages/")}
    assert [p.rsplit(".", 1)[1] for p in train["params"] if p != "seed"] == list(TRAINING_KEYS)
    assert fingerprint["params"] == ["exercises.${key}"]  # its output holds only what a run trains with
    # The runs read nothing else that can change their result.
    assert stages["replicate"]["deps"] == ["${paths.params_ok}", "stages/replicate.py", "${paths.fingerprints}/${item.exercise}.json"]
    assert "params" not in stages["replicate"]
