"""The aggregate stage on tiny files: every run read, the study's statistics and figures written."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from scipy import stats

from denselab.core.config import parse_params
from denselab.study.runs import read_runs
from stages import aggregate as A
from tests.fixtures import run_main, write_params, write_runs


@pytest.fixture
def study_params(params_copy) -> dict:
    params_copy["study"] = {"seeds": [1, 2], "exercises": ["ex1", "ex2", "ex3"]}
    return params_copy


ACCURACY = {"ex1": [0.87, 0.88, 0.86], "ex2": [0.74, 0.70, 0.76], "ex3": [0.977, 0.979, 0.976]}


def test_statistics_of_the_runs(tmp_path, study_params):
    params = parse_params(study_params)
    folders = write_runs(tmp_path, study_params, ACCURACY)
    runs, _ = read_runs(params, folders["runs"])
    found = A.aggregate(runs, params)
    assert list(found["exercises"]) == ["ex1", "ex2", "ex3"]
    assert found["exercises"]["ex2"]["mean"] == pytest.approx(0.7333333, abs=1e-6)
    assert found["exercises"]["ex2"]["lab"] == 0.7468 and found["exercises"]["ex2"]["lab_in_range"] is True
    assert found["exercises"]["ex3"]["lab_in_range"] is False  # the lab's 97.98% above 97.6-97.9
    assert list(found["comparisons"]) == ["ex2_minus_ex1", "ex3_minus_ex2"]
    expected = stats.ttest_ind(ACCURACY["ex2"], ACCURACY["ex1"], equal_var=False).pvalue
    assert found["comparisons"]["ex2_minus_ex1"]["p_value"] == pytest.approx(expected, rel=1e-3)


def test_the_figures_come_out_the_same_every_time(tmp_path, study_params):
    """Drawn twice from the same runs, every file is byte for byte the same: the report that embeds them, and DVC
    after them, see no change where there was none (a jittered strip plot drew its dots at random)."""
    params = parse_params(study_params)
    runs, curves = read_runs(params, *write_runs(tmp_path, study_params, ACCURACY).values())
    statistics = A.aggregate(runs, params)
    drawn = []
    for name in ("first", "second"):
        A.write_figures(tmp_path / name, runs, curves, statistics, "en")
        drawn.append({p.name: p.read_bytes() for p in (tmp_path / name).iterdir()})
    assert drawn[0] == drawn[1] and len(drawn[0]) == 2 + 3  # the table, the overview, three exercises' curves


@pytest.mark.e2e
@pytest.mark.parametrize("language", ["en", "vi"])
def test_main_writes_metrics_table_and_figures_without_tensorflow(tmp_path, study_params, language):
    study_params["report"]["language"] = language
    folders = write_runs(tmp_path, study_params, ACCURACY)
    write_params(tmp_path, study_params)
    figures = tmp_path / "study"
    (figures / "stale.png").parent.mkdir()
    (figures / "stale.png").write_bytes(b"old")
    args = [
        "--runs",
        folders["runs"],
        "--out",
        tmp_path / "study.json",
        "--figures",
        figures,
    ]
    out, imported = run_main("aggregate", args, tmp_path)
    assert out.returncode == 0, out.stderr
    assert imported == []
    assert "ex2: 73.33% ± 3.06% over 3 runs" in out.stderr
    metrics = json.loads((tmp_path / "study.json").read_text())
    assert set(metrics) == {"exercises", "comparisons"}
    assert sorted(p.name for p in figures.iterdir()) == [
        "curves-ex1.png",
        "curves-ex2.png",
        "curves-ex3.png",
        "overview.png",
        "runs.csv",
    ]
    for png in figures.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    table = pd.read_csv(figures / "runs.csv")
    assert list(table.columns) == ["exercise", "seed", "lab_run", "test_accuracy", "test_loss"]
    assert table["test_accuracy"].tolist() == [a for values in ACCURACY.values() for a in values]
