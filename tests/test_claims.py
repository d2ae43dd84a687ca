"""The lab's conclusions on trial: the factorial's effects against hand-computed values, and every kind of verdict
reached from a table of runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from denselab.study import claims as C
from denselab.study import verdicts as V
from denselab.study.claim_tests import parse_with_claims

# Five runs per cell, the same spread pattern in every cell (mean-centred), scaled per cell.
NOISE = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) / 1000

ACTIVATION_BY_SCALE = ("ex1", "sigmoid_x255", "ex2", "ex3")  # sigmoid raw, sigmoid x/255, relu raw, relu x/255
BASELINE = ("baseline", "baseline_sigmoid_output", "baseline_sigmoid_hidden", "baseline_sigmoid_both")


def table(means: dict[str, float], spread: dict[str, float] | None = None) -> pd.DataFrame:
    """Five runs per exercise around each mean (spread: a multiple of NOISE, 1 by default)."""
    rows = [
        {"exercise": name, "seed": seed, "test_accuracy": mean + (spread or {}).get(name, 1.0) * noise}
        for name, mean in means.items()
        for seed, noise in enumerate(NOISE)
    ]
    return pd.DataFrame(rows)


def no_curves() -> pd.DataFrame:
    return pd.DataFrame(columns=["exercise", "seed", "epoch", "metric", "split", "value"])


def cells(sigmoid_raw, sigmoid_scaled, relu_raw, relu_scaled, **baseline) -> dict[str, float]:
    """The two factorials' cell means: activation x scale as given, the baseline's as given or the lab's pattern."""
    found = dict(zip(ACTIVATION_BY_SCALE, (sigmoid_raw, sigmoid_scaled, relu_raw, relu_scaled)))
    found |= dict(zip(BASELINE, baseline.get("baseline", (0.10, 0.90, 0.10, 0.88))))
    return found


@pytest.fixture
def params(params_data):
    return parse_with_claims(params_data)


def verdicts_of(params, runs: pd.DataFrame, curves: pd.DataFrame | None = None) -> dict[str, str]:
    found = C.verdicts(params, runs, no_curves() if curves is None else curves)
    return {name: claim["verdict"] for name, claim in found["claims"].items()}


def test_the_factorial_effects_are_the_hand_computed_contrasts(params):
    """Balanced cells: each effect is a contrast of the cell means; its standard error sqrt(sum c^2 s^2 / n) (HC2:
    each cell its own variance), t with the residual degrees of freedom (20 runs - 4 cells)."""
    means = cells(0.88, 0.975, 0.74, 0.978)
    spread = {"ex1": 3.0, "sigmoid_x255": 1.0, "ex2": 8.0, "ex3": 0.5}
    runs = table(means, spread)
    found = C.factorial_effects(params.factorials["activation_by_scale"], runs)
    m = np.array([means[name] for name in ACTIVATION_BY_SCALE])
    variances = np.array([spread[name] ** 2 * NOISE.var(ddof=1) for name in ACTIVATION_BY_SCALE])
    t = stats.t(df=20 - 4)
    for name, weights in C.CONTRASTS.items():
        c = np.array(weights)
        effect, se = c @ m, math.sqrt((c**2 * variances / 5).sum())
        assert found[name]["difference"] == pytest.approx(effect, abs=1e-6), name
        assert found[name]["ci95_low"] == pytest.approx(effect - t.ppf(0.975) * se, abs=1e-6), name
        assert found[name]["ci95_high"] == pytest.approx(effect + t.ppf(0.975) * se, abs=1e-6), name
        assert found[name]["p_value"] == pytest.approx(2 * t.sf(abs(effect) / se), rel=1e-3), name
    # relu - sigmoid on raw pixels, on x/255; the interaction is their difference.
    assert found["rows_at_0"]["difference"] == pytest.approx(0.74 - 0.88)
    assert found["rows_at_1"]["difference"] == pytest.approx(0.978 - 0.975)
    assert found["interaction"]["difference"] == pytest.approx((0.978 - 0.975) - (0.74 - 0.88))


def test_holm_adjusts_over_every_test_of_the_section(params):
    found = C.verdicts(params, table(cells(0.88, 0.975, 0.74, 0.978)), no_curves())
    tests = [t for f in found["factorials"].values() for t in f["effects"].values()] + [
        found["claims"]["ex1_sigmoid"]["test"]
    ]
    assert found["tests"] == len(tests) == 2 * 7 + 1 and found["adjustment"] == "holm"
    raw = sorted(t["p_value"] for t in tests)
    adjusted = sorted(t["p_adjusted"] for t in tests)
    # Holm: the smallest p times the number of tests, then step-down, never below the previous.
    assert adjusted[0] == pytest.approx(min(1.0, raw[0] * len(tests)), rel=1e-3)
    assert all(a >= r for a, r in zip(adjusted, raw)) and adjusted == sorted(adjusted)


def test_relu_worse_only_on_raw_pixels_is_supported_under_a_condition(params):
    found = C.verdicts(params, table(cells(0.88, 0.975, 0.74, 0.978)), no_curves())["claims"]["ex2_relu_worse"]
    assert found["verdict"] == V.CONDITIONAL and found["holds_at"] == ["raw"]
    assert found["better"] == "sigmoid" and found["worse"] == "relu" and found["other_aspect"] == "input scaling"
    raw, scaled = found["simple"]
    assert raw["at"] == "raw" and raw["difference"] == pytest.approx(0.88 - 0.74)  # the claimed direction: positive
    assert scaled["at"] == "x/255" and scaled["difference"] == pytest.approx(0.975 - 0.978)


def test_an_effect_on_both_values_is_supported(params):
    verdicts = verdicts_of(params, table(cells(0.88, 0.975, 0.74, 0.978)))
    assert verdicts["ex3_scaling"] == V.SUPPORTED  # x/255 better under sigmoid (+9.5) and relu (+23.8)
    assert verdicts["baseline_output"] == V.SUPPORTED  # the output's sigmoid, with or without a hidden one
    assert verdicts["ex1_sigmoid"] == V.SUPPORTED  # the pair: both sigmoids against none


def test_no_effect_is_not_supported_and_the_opposite_effect_contradicts(params):
    # The hidden sigmoid does nothing without an output sigmoid and nothing with one: not supported.
    same = cells(0.88, 0.975, 0.74, 0.978, baseline=(0.10, 0.90, 0.10, 0.90))
    assert verdicts_of(params, table(same))["baseline_no_activation"] == V.NOT_SUPPORTED
    # A linear hidden layer does better than a sigmoid one, whatever the output: contradicted.
    worse = cells(0.88, 0.975, 0.74, 0.978, baseline=(0.12, 0.91, 0.10, 0.89))
    assert verdicts_of(params, table(worse))["baseline_no_activation"] == V.CONTRADICTED


def test_an_interaction_alone_decides_by_the_effect_at_each_value(params):
    """No main effect at all (the two simple effects cancel), only a crossing: the claim holds where its
    direction holds."""
    verdicts = verdicts_of(params, table(cells(0.90, 0.90, 0.80, 1.00)))
    found = C.verdicts(params, table(cells(0.90, 0.90, 0.80, 1.00)), no_curves())
    effects = found["factorials"]["activation_by_scale"]["effects"]
    assert effects["rows"]["difference"] == pytest.approx(0.0, abs=1e-9)  # relu - sigmoid on average: nothing
    assert effects["interaction"]["p_adjusted"] < 0.05
    # sigmoid better on raw pixels (0.90 vs 0.80), worse on x/255 (0.90 vs 1.00): only under a condition.
    assert verdicts["ex2_relu_worse"] == V.CONDITIONAL
    assert found["claims"]["ex2_relu_worse"]["against_at"] == ["x/255"]


def test_a_factorial_with_a_cell_missing_is_not_testable_and_says_what_is_missing(params):
    means = cells(0.88, 0.975, 0.74, 0.978)
    del means["sigmoid_x255"]
    found = C.verdicts(params, table(means), no_curves())
    assert found["factorials"]["activation_by_scale"]["missing"] == ["sigmoid_x255"]
    assert "effects" not in found["factorials"]["activation_by_scale"]
    for name in ("ex2_relu_worse", "ex3_scaling"):
        assert found["claims"][name]["verdict"] == V.NOT_TESTED
        assert found["claims"][name]["missing"] == ["sigmoid_x255"]
    assert found["claims"]["ex3_scaling"]["verdict"] == V.NOT_TESTED
    assert found["claims"]["baseline_output"]["verdict"] == V.SUPPORTED  # the other factorial is whole
    # ex5 and its deeper control are the full study's (profiles.yaml): said so, never an error.
    assert found["claims"]["ex5_too_simple"] == {
        "kind": "pair",
        "missing": ["ex5", "ex5_deeper"],
        "confounds": [],
        "profile": "full_study",
        "verdict": V.NOT_TESTED,
    }


def test_cells_without_spread_are_not_tested_for_significance(params):
    flat = {name: 0.0 for name in ACTIVATION_BY_SCALE}
    found = C.verdicts(params, table(cells(0.88, 0.975, 0.74, 0.978), flat), no_curves())
    effects = found["factorials"]["activation_by_scale"]["effects"]
    assert effects["rows"]["p_value"] is None and "p_adjusted" not in effects["rows"]
    assert found["claims"]["ex2_relu_worse"]["verdict"] == V.NOT_SUPPORTED


def curves_of(exercise: str, metric: str, per_run: list[list[float]]) -> pd.DataFrame:
    """Long-form validation curves, one list of per-epoch values per run (seeds 0, 1, ...)."""
    return pd.DataFrame(
        [
            {"exercise": exercise, "seed": seed, "epoch": e + 1, "metric": metric, "split": "validation", "value": v}
            for seed, values in enumerate(per_run)
            for e, v in enumerate(values)
        ]
    )


@pytest.mark.parametrize(
    ("late_gain", "verdict"),
    [
        (0.0, V.SUPPORTED),  # flat after epoch 20: gains well below the 1-point margin
        (0.05, V.CONTRADICTED),  # still 5 points up after epoch 20
        (0.01, V.NOT_SUPPORTED),  # gains around the margin itself: cannot tell
    ],
)
def test_a_plateau_claim_reads_the_curves_of_every_run(params_data, late_gain, verdict):
    params_data = {**params_data, "study": {**params_data["study"], "exercises": ["ex5"]}}
    params = parse_with_claims(params_data)
    runs = table({"ex5": 0.55})
    per_run = [
        [0.3 + 0.01 * min(e, 20) + late_gain * max(0, e - 20) / 10 + noise for e in range(1, 31)] for noise in NOISE * 3
    ]
    per_run = [[v + 0.002 * ((seed * 7 + e) % 3 - 1) for e, v in enumerate(run)] for seed, run in enumerate(per_run)]
    found = C.verdicts(params, runs, curves_of("ex5", "accuracy", per_run))["claims"]["ex5_validation_accuracy"]
    assert found["verdict"] == verdict
    assert found["test"]["n"] == 5 and found["test"]["gain"] == pytest.approx(late_gain, abs=0.005)
    assert found["test"]["ci95_low"] < found["test"]["gain"] < found["test"]["ci95_high"]  # the mean gain's interval
    assert found["test"]["difference"] == pytest.approx(found["test"]["gain"] - 0.01)


def test_a_claim_without_a_test_says_why(params_copy):
    params_copy["claims"]["ex5_too_simple"]["test"] = None
    params_copy["claims"]["ex5_too_simple"]["untested"] = {"en": "It needs a deeper CIFAR-10 control.", "vi": "Cần..."}
    params = parse_with_claims(params_copy)
    claim = params.claims["ex5_too_simple"]
    assert claim.test is None and "CIFAR-10" in claim.untested["en"] and claim.untested["vi"]
    found = C.verdicts(params, table(cells(0.88, 0.975, 0.74, 0.978)), no_curves())["claims"]["ex5_too_simple"]
    assert found == {"kind": "none", "missing": [], "verdict": V.NOT_TESTED}


def test_once_the_full_study_is_applied_all_eight_claims_are_judged(tmp_path):
    """The page's eight verdicts: with the profile written into params.yaml, ex5 and its deeper control are in the
    study, and ex5's three claims are tested like the others (on runs and curves made up here)."""
    from denselab.study.claim_tests import load_with_claims
    from denselab.tools.profile import apply_profile
    from tests.fixtures import copy_params

    copy_params(tmp_path)
    apply_profile(tmp_path, "full_study")
    params = load_with_claims(tmp_path / "params.yaml")
    runs = table(cells(0.88, 0.975, 0.74, 0.978) | {"ex5": 0.55, "ex5_deeper": 0.53})
    # Flat from epoch 15 on but for a wiggle of a fifth of a point, differently in each run.
    late = [
        [0.3 + 0.01 * min(e, 15) + noise + 0.002 * ((seed * 7 + e) % 3 - 1) for e in range(1, 31)]
        for seed, noise in enumerate(NOISE * 3)
    ]
    curves = pd.concat(
        [
            curves_of("ex5", "accuracy", late),
            curves_of("ex5", "loss", [[1.0 - value for value in run] for run in late]),
        ]
    )
    found = C.verdicts(params, runs, curves)["claims"]
    assert len(found) == 8 and not [name for name, claim in found.items() if claim["verdict"] == V.NOT_TESTED]
    assert all("profile" not in claim for claim in found.values())
    assert found["ex5_too_simple"]["verdict"] == V.CONTRADICTED  # the deeper control did worse here
    assert found["ex5_too_simple"]["runs"] == {"ex5": 5, "ex5_deeper": 5}
    assert found["ex5_validation_accuracy"]["verdict"] == V.SUPPORTED  # flat from epoch 15 on
