"""The seeds study's statistics (denselab.study.statistics) against hand-computed values and SciPy."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from denselab.study import statistics as S

A5 = [0.80, 0.82, 0.84, 0.86, 0.88]
B3 = [0.70, 0.74, 0.78]


def test_describe_by_hand():
    s = S.describe(pd.Series(A5), lab=0.9)
    # mean 0.84; squared deviations 0.0016 + 0.0004 + 0 + 0.0004 + 0.0016 = 0.004, / (n - 1) = 0.001
    sd = math.sqrt(0.001)
    half = 2.776445 * sd / math.sqrt(5)  # t(0.975, 4 degrees of freedom) = 2.776445, from a t table
    assert (s["n"], s["mean"], s["min"], s["max"]) == (5, 0.84, 0.8, 0.88)
    assert s["sd"] == pytest.approx(sd, abs=1e-6)
    assert s["ci95_low"] == pytest.approx(0.84 - half, abs=1e-6)
    assert s["ci95_high"] == pytest.approx(0.84 + half, abs=1e-6)
    # The lab's 0.90 lies above our range, (0.90 - 0.84) / 0.0316 = 1.90 sd above the mean.
    assert s["lab"] == 0.9 and s["lab_in_range"] is False and s["lab_sds"] == 1.9
    inside = S.describe(pd.Series(A5), lab=0.81)
    assert inside["lab_in_range"] is True and inside["lab_sds"] == round((0.81 - 0.84) / sd, 2)
    control = S.describe(pd.Series(A5), lab=None)  # a control: the lab ran none
    assert control["lab"] is None and "lab_in_range" not in control and "lab_sds" not in control


def test_describe_matches_scipy():
    values = pd.Series([0.9712, 0.9768, 0.9765, 0.9741, 0.9779])
    s = S.describe(values, lab=None)
    low, high = stats.t.interval(0.95, 4, loc=values.mean(), scale=stats.sem(values))
    assert (s["ci95_low"], s["ci95_high"]) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))
    assert s["sd"] == pytest.approx(stats.tstd(values), abs=1e-6)


def test_welch_by_hand_and_against_scipy():
    a, b = pd.Series(A5), pd.Series(B3)
    w = S.welch(a, b)
    # b - a = 0.74 - 0.84; variances 0.001 (n 5) and 0.0016 (n 3)
    se = math.sqrt(0.001 / 5 + 0.0016 / 3)
    df = (0.001 / 5 + 0.0016 / 3) ** 2 / ((0.001 / 5) ** 2 / 4 + (0.0016 / 3) ** 2 / 2)  # Welch-Satterthwaite
    t = -0.10 / se
    assert df == pytest.approx(3.5328, abs=1e-4)
    assert w["difference"] == pytest.approx(-0.10, abs=1e-9)
    half = stats.t.ppf(0.975, df) * se
    assert (w["ci95_low"], w["ci95_high"]) == (
        pytest.approx(-0.10 - half, abs=1e-6),
        pytest.approx(-0.10 + half, abs=1e-6),
    )
    assert w["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-3)
    assert w["p_value"] == pytest.approx(stats.ttest_ind(B3, A5, equal_var=False).pvalue, rel=1e-3)
    assert w["p_value"] < 0.05


def test_welch_without_spread_is_untestable():
    w = S.welch(pd.Series([0.5, 0.5, 0.5]), pd.Series([0.6, 0.6]))
    assert w == {"difference": 0.1, "ci95_low": None, "ci95_high": None, "p_value": None}
