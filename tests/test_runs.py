"""Reading the seeds study's runs: the lab's run and every other seed's, and a missing one named."""

from __future__ import annotations

import pytest

from denselab.core.cli import StageError
from denselab.core.config import parse_params
from denselab.study.runs import read_runs
from tests.fixtures import write_runs

ACCURACY = {"ex1": [0.87, 0.88, 0.86], "ex2": [0.74, 0.70, 0.76], "ex3": [0.977, 0.979, 0.976]}


@pytest.fixture
def study_params(params_copy) -> dict:
    params_copy["study"] = {"seeds": [1, 2], "exercises": ["ex1", "ex2", "ex3"]}
    return params_copy


def test_every_run_and_its_curves_the_labs_first(tmp_path, study_params):
    folders = write_runs(tmp_path, study_params, ACCURACY)
    runs, curves = read_runs(parse_params(study_params), folders["runs"])
    assert list(runs["seed"]) == [42, 1, 2] * 3 and list(runs["lab_run"]) == [True, False, False] * 3
    assert runs["test_accuracy"].tolist() == [a for values in ACCURACY.values() for a in values]
    assert set(curves["split"]) == {"train", "validation"} and set(curves["metric"]) == {"accuracy", "loss"}
    assert len(curves) == 3 * 3 * 4 * 3  # exercises x seeds x columns x epochs
    ex2_seed_1 = curves[(curves["exercise"] == "ex2") & (curves["seed"] == 1) & (curves["split"] == "validation")]
    assert ex2_seed_1[ex2_seed_1["metric"] == "accuracy"]["value"].tolist() == pytest.approx([0.5, 0.6, 0.7])


def test_a_missing_run_names_its_file(tmp_path, study_params):
    folders = write_runs(tmp_path, study_params, ACCURACY)
    (folders["runs"] / "ex2" / "seed-2.json").unlink()
    with pytest.raises(StageError, match=r"ex2, seed 2: missing .*runs/ex2/seed-2.json; run `dvc repro`"):
        read_runs(parse_params(study_params), folders["runs"])
