"""The judge stage on tiny files: the verdicts as a metrics file, one interaction plot per factorial, no TensorFlow."""

from __future__ import annotations

import json

import pytest

from denselab.core.layout import factorial_png
from denselab.study.claim_tests import parse_with_claims
from denselab.study.runs import read_runs
from stages import judge as J
from tests.fixtures import run_main, write_params, write_runs
from tests.test_report import STUDY_ACCURACY


def test_the_plots_come_out_the_same_every_time(tmp_path, params_data):
    params = parse_with_claims(params_data)
    runs, curves = read_runs(params, *write_runs(tmp_path, params_data, STUDY_ACCURACY).values())
    found = J.judge(params, runs, curves)
    drawn = []
    for name in ("first", "second"):
        J.write_figures(tmp_path / name, found, runs, "en")
        drawn.append({p.name: p.read_bytes() for p in (tmp_path / name).iterdir()})
    assert drawn[0] == drawn[1]
    assert sorted(drawn[0]) == sorted(factorial_png(name) for name in params.factorials)


def test_a_factorial_with_a_cell_missing_draws_no_plot(tmp_path, params_copy):
    params_copy["study"]["exercises"].remove("sigmoid_x255")
    params = parse_with_claims(params_copy)
    accuracy = {k: v for k, v in STUDY_ACCURACY.items() if k != "sigmoid_x255"}
    runs, curves = read_runs(params, *write_runs(tmp_path, params_copy, accuracy).values())
    found = J.judge(params, runs, curves)
    J.write_figures(tmp_path / "claims", found, runs, "en")
    assert [p.name for p in (tmp_path / "claims").iterdir()] == [factorial_png("baseline_activations")]
    assert found["claims"]["ex3_scaling"]["verdict"] == "not_tested"


@pytest.mark.e2e
@pytest.mark.parametrize("language", ["en", "vi"])
def test_main_writes_the_verdicts_and_plots_without_tensorflow(tmp_path, params_copy, language):
    params_copy["report"]["language"] = language
    folders = write_runs(tmp_path, params_copy, STUDY_ACCURACY)
    write_params(tmp_path, params_copy)
    figures = tmp_path / "claims"
    figures.mkdir()
    (figures / "stale.png").write_bytes(b"old")
    args = [str(a) for k, folder in folders.items() for a in (f"--{k}", folder)]
    args += ["--out", str(tmp_path / "claims.json"), "--figures", str(figures)]
    out, imported = run_main("judge", args, tmp_path)
    assert out.returncode == 0, out.stderr
    assert imported == []
    found = json.loads((tmp_path / "claims.json").read_text())
    assert set(found) == {"factorials", "claims", "tests", "adjustment"}
    # STUDY_ACCURACY: sigmoid on x/255 as good as ReLU, the baseline's output decides.
    assert found["claims"]["ex2_relu_worse"]["verdict"] == "conditional"
    assert found["claims"]["baseline_output"]["verdict"] == "supported"
    assert found["claims"]["ex5_validation_accuracy"] == {
        "kind": "plateau",
        "missing": ["ex5"],
        "profile": "full_study",  # the profile whose study runs it: the page says how to apply it
        "verdict": "not_tested",
    }
    assert "ex2_relu_worse: conditional" in out.stderr
    assert sorted(p.name for p in figures.iterdir()) == [
        factorial_png("activation_by_scale"),
        factorial_png("baseline_activations"),
    ]
    for png in figures.iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000


def test_an_edit_that_confounds_a_factorial_leaves_its_claims_not_tested_and_says_why(tmp_path, params_copy):
    """A student's experiment (ex2's learning rate) is judged, not refused: the claims that rest on the factorial
    it confounds are not tested, the others keep their verdicts."""
    from denselab.core.i18n import Language
    from denselab.report.observations.claims import untested_evidence

    params_copy["exercises"]["ex2"]["learning_rate"] = 0.001
    params = parse_with_claims(params_copy)
    runs, curves = read_runs(params, *write_runs(tmp_path, params_copy, STUDY_ACCURACY).values())
    found = J.judge(params, runs, curves)
    factorial = found["factorials"]["activation_by_scale"]
    assert "cells" not in factorial and "effects" not in factorial
    assert factorial["confounds"][0] == {"a": "ex2", "b": "ex3", "extra": ["learning rate"], "lacking": []}
    for name in ("ex2_relu_worse", "ex3_scaling"):
        assert found["claims"][name]["verdict"] == "not_tested"
    assert found["claims"]["baseline_output"]["verdict"] == "supported"  # the other factorial is whole
    said = {lang: untested_evidence(found["claims"]["ex3_scaling"], Language(lang)) for lang in ("en", "vi")}
    english = [o.message % o.values for o in said["en"]]
    assert english[0] == (
        "Not tested: ex2 and ex3 now differ in learning rate as well, so the comparison no longer isolates what the "
        "claim names. Set them back in params.yaml to test it."
    )
    vi = Language("vi")
    assert vi.gettext(said["vi"][0].message) % said["vi"][0].values == (
        "Chưa kiểm định: ex2 và ex3 nay còn khác nhau cả ở tốc độ học, nên phép so sánh không còn tách riêng điều mà "
        "nhận xét nêu ra. Hãy đặt chúng lại như cũ trong params.yaml để kiểm định."
    )
