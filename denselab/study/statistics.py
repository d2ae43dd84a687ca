"""The seeds study's statistics: an exercise's runs described, two exercises' runs compared. SciPy computes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

CONFIDENCE = 0.95


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def describe(accuracies: pd.Series, lab: float | None) -> dict[str, Any]:
    """n, mean, sd, min, max, the Student-t 95% interval of the mean, and where `lab` falls."""
    from scipy import stats

    n = int(accuracies.count())
    mean, sd = float(accuracies.mean()), float(accuracies.std(ddof=1)) if n > 1 else float("nan")
    if n > 1 and sd > 0:
        low, high = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=sd / math.sqrt(n))
    else:  # one run, or runs that all agree: the interval is the mean itself
        low = high = mean
    found = {
        "n": n,
        "mean": _round(mean),
        "sd": _round(sd),
        "min": _round(accuracies.min()),
        "max": _round(accuracies.max()),
        "ci95_low": _round(low),
        "ci95_high": _round(high),
    }
    found["lab"] = lab  # None for a control: the lab did not run it
    if lab is not None:
        found["lab_in_range"] = bool(accuracies.min() <= lab <= accuracies.max())
        found["lab_sds"] = _round((lab - mean) / sd, 2) if n > 1 and sd > 0 else None
    return found


def welch(a: pd.Series, b: pd.Series) -> dict[str, Any]:
    """Mean of b minus mean of a, its 95% interval and the two-sided p-value of Welch's t-test."""
    from scipy import stats

    difference = float(b.mean() - a.mean())
    if len(a) < 2 or len(b) < 2 or (a.std(ddof=1) == 0 and b.std(ddof=1) == 0):
        # No spread to test against: the t statistic is undefined.
        return {"difference": _round(difference), "ci95_low": None, "ci95_high": None, "p_value": None}
    result = stats.ttest_ind(b, a, equal_var=False)
    interval = result.confidence_interval(CONFIDENCE)
    return {
        "difference": _round(difference),
        "ci95_low": _round(interval.low),
        "ci95_high": _round(interval.high),
        "p_value": float(f"{result.pvalue:.4g}"),
    }


def comparison_key(a: str, b: str) -> str:
    """How a comparison is named in the study's metrics: the difference b - a."""
    return f"{b}_minus_{a}"


def lab_position(statistics: Mapping[str, Any]) -> str:
    """Where the lab's number falls against an exercise's runs (`describe`): inside, above or below their range."""
    if statistics["lab_in_range"]:
        return "inside"
    return "above" if statistics["lab"] > statistics["max"] else "below"
