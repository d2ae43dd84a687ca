"""The verdict rules of one test, on plain numbers: what a significant difference in the claimed direction is,
how a factorial's effects decide a factorial claim, how a validation curve's gains after an epoch are tested against
a margin. The claim kinds (`denselab.study.claim_tests`) and the section's judge (`denselab.study.claims`) both use them, so
neither imports the other back. A verdict is one of VERDICTS; `denselab.study.claims` says when each is given."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from denselab.study.aspects import Confound, Factorial
from denselab.study.statistics import CONFIDENCE

if TYPE_CHECKING:
    import pandas as pd

# The curves a plateau claim can read, and whether higher is better on each.
PLATEAU_METRICS = {"val_accuracy": True, "val_loss": False}

SUPPORTED = "supported"
CONDITIONAL = "conditional"
NOT_SUPPORTED = "not_supported"
CONTRADICTED = "contradicted"
NOT_TESTED = "not_tested"
VERDICTS = (SUPPORTED, CONDITIONAL, NOT_SUPPORTED, CONTRADICTED, NOT_TESTED)
ALPHA = 1 - CONFIDENCE


def rounded(value: float) -> float | None:
    """A number as the records write it: six decimals, None when it is not finite."""
    return round(float(value), 6) if math.isfinite(value) else None


def p_rounded(value: float) -> float:
    """A p-value to four significant digits (as `statistics.welch` writes them)."""
    return float(f"{value:.4g}")


def confounds_found(confounds: Sequence[Confound]) -> list[dict[str, Any]]:
    """Each confound as judge writes it: the two exercises, the aspects they now differ in as well, and the named
    ones they no longer differ in."""
    return [{"a": c.a, "b": c.b, "extra": list(c.extra), "lacking": list(c.lacking)} for c in confounds]


def plateau_gains(exercise: str, curve: str, from_epoch: int, curves: pd.DataFrame) -> list[float]:
    """Per run of `exercise`, how much its `curve` (a key of PLATEAU_METRICS) improved from `from_epoch` to its
    last epoch (a loss that fell counts as a gain)."""
    higher_is_better = PLATEAU_METRICS[curve]
    split = "validation" if curve.startswith("val_") else "train"
    metric = curve.removeprefix("val_")
    chosen = curves[(curves["exercise"] == exercise) & (curves["metric"] == metric) & (curves["split"] == split)]
    gains = []
    for _, run in chosen.groupby("seed", sort=True):
        values = run.sort_values("epoch")["value"].to_numpy()
        if len(values) <= from_epoch:
            continue
        gain = values[-1] - values[from_epoch - 1]
        gains.append(float(gain if higher_is_better else -gain))
    return gains


def plateau_test(margin: float, gains: Sequence[float]) -> dict[str, Any]:
    """The mean gain after the epoch with its 95% interval, and the two-sided p of its t-test against the margin."""
    import numpy as np
    from scipy import stats

    values = np.asarray(gains, dtype=float)
    mean = float(values.mean()) if len(values) else math.nan  # no run long enough: nothing to test
    # `difference`: the gain beyond the margin; below zero, the curve levelled off.
    found: dict[str, Any] = {
        "n": len(values),
        "gain": rounded(mean),
        "margin": margin,
        "difference": rounded(mean - margin),
    }
    if len(values) < 2 or values.std(ddof=1) == 0:
        return found | {"ci95_low": None, "ci95_high": None, "p_value": None}
    result = stats.ttest_1samp(values, popmean=margin)
    interval = result.confidence_interval(CONFIDENCE)
    return found | {  # the interval is the mean gain's
        "ci95_low": rounded(interval.low),
        "ci95_high": rounded(interval.high),
        "p_value": p_rounded(float(result.pvalue)),
    }


def _significant(test: Mapping[str, Any]) -> bool:
    return test.get("p_adjusted") is not None and test["p_adjusted"] < ALPHA


def _oriented(test: Mapping[str, Any], sign: float) -> dict[str, Any]:
    """A test of `second - first` turned into one of the claimed direction (sign -1 swaps the two)."""
    low, high = test.get("ci95_low"), test.get("ci95_high")
    flipped = dict(test)
    flipped["difference"] = None if test["difference"] is None else rounded(sign * test["difference"])
    if low is not None and high is not None:
        flipped["ci95_low"], flipped["ci95_high"] = (low, high) if sign > 0 else (rounded(-high), rounded(-low))
    return flipped


def _direction(test: Mapping[str, Any]) -> str | None:
    """'for' (significant, in the claimed direction), 'against' (significant, the other way) or None."""
    if not _significant(test):
        return None
    return "for" if test["difference"] > 0 else "against"


def factor_verdict(
    aspect: str, better: str, factorial: Factorial, effects: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The verdict of a claim that `better`, a value of the factorial's `aspect`, does better, from the
    factorial's adjusted effects (see `denselab.study.claims` for the rules)."""
    axis = "rows" if aspect == factorial.rows else "columns"
    levels = factorial.row_levels if axis == "rows" else factorial.column_levels
    others = factorial.column_levels if axis == "rows" else factorial.row_levels
    sign = 1.0 if better == levels[1] else -1.0
    main = _oriented(effects[axis], sign)
    simple = [{"at": others[i], **_oriented(effects[f"{axis}_at_{i}"], sign)} for i in (0, 1)]
    interaction = dict(effects["interaction"])
    found = {
        "worse": levels[0] if sign > 0 else levels[1],
        "better": better,
        "other_aspect": factorial.columns if axis == "rows" else factorial.rows,
        "effect": main,
        "simple": simple,
        "interaction": interaction,
    }
    if not _significant(interaction):
        direction = _direction(main)
        verdict = {"for": SUPPORTED, "against": CONTRADICTED, None: NOT_SUPPORTED}[direction]
        return found | {"verdict": verdict, "holds_at": list(others) if verdict == SUPPORTED else []}
    directions = [_direction(s) for s in simple]
    holds_at = [s["at"] for s, d in zip(simple, directions) if d == "for"]
    against_at = [s["at"] for s, d in zip(simple, directions) if d == "against"]
    if len(holds_at) == 2:
        verdict = SUPPORTED
    elif holds_at:
        verdict = CONDITIONAL
    elif against_at:
        verdict = CONTRADICTED
    else:
        verdict = NOT_SUPPORTED
    return found | {"verdict": verdict, "holds_at": holds_at, "against_at": against_at}


def signed_verdict(test: Mapping[str, Any], better_if_positive: bool = True) -> str:
    """A test of the claimed direction (or against it, `better_if_positive` False): supported, contradicted or
    not supported, by its adjusted p-value."""
    direction = _direction(test if better_if_positive else _oriented(test, -1.0))
    return {"for": SUPPORTED, "against": CONTRADICTED, None: NOT_SUPPORTED}[direction]
