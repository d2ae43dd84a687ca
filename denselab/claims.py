"""The lab's conclusions on trial: each claim of params.yaml tested on the seeds study's runs, and a verdict.

Pure functions: the runs (one row per run: exercise, seed, test_accuracy) and their curves in, plain data out.
statsmodels fits each factorial (a 2x2 of exercises) as one linear model of the runs' accuracies, one mean per
cell, with heteroscedasticity-consistent errors (HC2: each cell keeps its own spread, as in Welch's test), and
tests the main effects, the interaction and the simple effects as contrasts of that model; SciPy tests a pair of
exercises (Welch) and a curve's plateau. Every p-value of the section is then adjusted for the number of tests
made (Holm, statsmodels), and the verdicts read the adjusted p-values:

- a factorial claim, no interaction: the main effect decides; with an interaction, the claimed value's effect at
  each value of the other aspect decides: significant in the claimed direction at both, `supported`; at one,
  `conditional` (supported only there); only against it, `contradicted`; nowhere, `not_supported`;
- a pair claim: the difference in the claimed direction `supported`, against it `contradicted`, else
  `not_supported`;
- a plateau claim: the curve's gain after the epoch below the margin `supported`, above it `contradicted`, else
  `not_supported`;
- a claim whose exercises are not all in the study (or without a test): `not_tested`, saying what is missing;
- a claim whose comparison params.yaml no longer isolates (its exercises now differ in more, or other, than it
  names: `aspects.Confound`; a plateau after the curve's last epoch): `not_tested`, saying what changed. A
  student's experiment is judged, never refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from denselab.aspects import Confound
from denselab.claim_tests import PLATEAU_METRICS, Claim, Factorial, FactorTest, PlateauTest, why_untestable
from denselab.config import Params
from denselab.statistics import CONFIDENCE, describe

if TYPE_CHECKING:
    import pandas as pd

SUPPORTED = "supported"
CONDITIONAL = "conditional"
NOT_SUPPORTED = "not_supported"
CONTRADICTED = "contradicted"
NOT_TESTED = "not_tested"
VERDICTS = (SUPPORTED, CONDITIONAL, NOT_SUPPORTED, CONTRADICTED, NOT_TESTED)
ALPHA = 1 - CONFIDENCE

# A factorial's contrasts over its cells (r0c0, r0c1, r1c0, r1c1): each effect is the second value minus the first.
CONTRASTS = {
    "rows": (-0.5, -0.5, 0.5, 0.5),  # main effect of the rows' aspect, averaged over the columns' values
    "columns": (-0.5, 0.5, -0.5, 0.5),
    "interaction": (1.0, -1.0, -1.0, 1.0),  # how much the columns' effect changes with the rows' value
    "rows_at_0": (-1.0, 0.0, 1.0, 0.0),  # the rows' effect at the first value of the columns' aspect
    "rows_at_1": (0.0, -1.0, 0.0, 1.0),
    "columns_at_0": (-1.0, 1.0, 0.0, 0.0),  # the columns' effect at the first value of the rows' aspect
    "columns_at_1": (0.0, 0.0, -1.0, 1.0),
}


def _round(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None


def _p(value: float) -> float:
    """A p-value to four significant digits (as `statistics.welch` writes them)."""
    return float(f"{value:.4g}")


def confounds_found(confounds: Sequence[Confound]) -> list[dict[str, Any]]:
    """Each confound as judge writes it: the two exercises, the aspects they now differ in as well, and the named
    ones they no longer differ in."""
    return [{"a": c.a, "b": c.b, "extra": list(c.extra), "lacking": list(c.lacking)} for c in confounds]


def untested_because(claim: Claim, params: Params, entry: Mapping[str, Any]) -> list[str]:
    """Why a claim with a test was not tested, in English (judge's log; the report words it per language)."""
    if entry.get("missing"):
        profile = entry.get("profile")
        then = f"; the profile {profile} does: `python -m denselab.profile {profile}`" if profile else ""
        return [f"the study does not run {', '.join(entry['missing'])}{then}"]
    return why_untestable(claim.test, params)


def missing_exercises(exercises: Sequence[str], runs: pd.DataFrame) -> list[str]:
    """Those of `exercises` without at least two runs in the study (none tests anything)."""
    counts = runs["exercise"].value_counts()
    return [name for name in dict.fromkeys(exercises) if counts.get(name, 0) < 2]


def profile_for(missing: Sequence[str], params: Params) -> str | None:
    """The first profile (profiles.yaml) whose study would run every exercise of `missing`, if one would."""
    for name, profile in params.profiles.items():
        if set(missing) <= {*params.study.exercises, *profile.study.exercises}:
            return name
    return None


def factorial_effects(factorial: Factorial, runs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every contrast of CONTRASTS: the difference, its 95% interval and its (unadjusted) p-value, from one
    least-squares fit of all the factorial's runs (one mean per cell, HC2 errors, t with the residual df)."""
    import numpy as np
    import statsmodels.api as sm

    cells = factorial.exercises()
    rows = runs[runs["exercise"].isin(cells)]
    design = np.array([[float(name == cell) for cell in cells] for name in rows["exercise"]])
    fit = sm.OLS(rows["test_accuracy"].to_numpy(dtype=float), design).fit(cov_type="HC2", use_t=True)
    found = {}
    for name, weights in CONTRASTS.items():
        test = fit.t_test(np.array([weights]))
        difference = float(np.squeeze(test.effect))
        se = float(np.squeeze(test.sd))
        if not se > 1e-12:  # every run of the cells involved agrees (to rounding): no spread to test against
            found[name] = {"difference": _round(difference), "ci95_low": None, "ci95_high": None, "p_value": None}
            continue
        low, high = np.squeeze(test.conf_int(alpha=ALPHA))
        found[name] = {
            "difference": _round(difference),
            "ci95_low": _round(low),
            "ci95_high": _round(high),
            "p_value": _p(float(np.squeeze(test.pvalue))),
        }
    return found


def cell_statistics(factorial: Factorial, runs: pd.DataFrame) -> list[list[dict[str, Any]]]:
    """Each cell's exercise and its runs described (n, mean, sd, interval), row by row."""
    return [
        [{"exercise": name, **describe(runs.loc[runs["exercise"] == name, "test_accuracy"], None)} for name in row]
        for row in factorial.cells
    ]


def plateau_gains(test: PlateauTest, curves: pd.DataFrame) -> list[float]:
    """Per run of the exercise, how much the curve improved from `from_epoch` to its last epoch (a loss that
    fell counts as a gain)."""
    higher_is_better = PLATEAU_METRICS[test.metric]
    split = "validation" if test.metric.startswith("val_") else "train"
    metric = test.metric.removeprefix("val_")
    chosen = curves[(curves["exercise"] == test.exercise) & (curves["metric"] == metric) & (curves["split"] == split)]
    gains = []
    for _, run in chosen.groupby("seed", sort=True):
        values = run.sort_values("epoch")["value"].to_numpy()
        if len(values) <= test.from_epoch:
            continue
        gain = values[-1] - values[test.from_epoch - 1]
        gains.append(float(gain if higher_is_better else -gain))
    return gains


def plateau_test(test: PlateauTest, gains: Sequence[float]) -> dict[str, Any]:
    """The mean gain after the epoch with its 95% interval, and the two-sided p of its t-test against the margin."""
    import numpy as np
    from scipy import stats

    values = np.asarray(gains, dtype=float)
    mean = float(values.mean()) if len(values) else math.nan  # no run long enough: nothing to test
    # `difference`: the gain beyond the margin; below zero, the curve levelled off.
    found: dict[str, Any] = {
        "n": len(values),
        "gain": _round(mean),
        "margin": test.margin,
        "difference": _round(mean - test.margin),
    }
    if len(values) < 2 or values.std(ddof=1) == 0:
        return found | {"ci95_low": None, "ci95_high": None, "p_value": None}
    result = stats.ttest_1samp(values, popmean=test.margin)
    interval = result.confidence_interval(CONFIDENCE)
    return found | {  # the interval is the mean gain's
        "ci95_low": _round(interval.low),
        "ci95_high": _round(interval.high),
        "p_value": _p(float(result.pvalue)),
    }


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (statsmodels)."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(p_values), alpha=ALPHA, method="holm")[1]]


def _tests_in(found: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every test (a mapping with a p_value) inside the section's results, in a fixed order."""
    tests = []
    for factorial in found["factorials"].values():
        tests.extend(factorial.get("effects", {}).values())
    for claim in found["claims"].values():
        if "test" in claim:  # a factorial claim's tests are its factorial's effects
            tests.append(claim["test"])
    return [t for t in tests if t.get("p_value") is not None]


def _significant(test: Mapping[str, Any]) -> bool:
    return test.get("p_adjusted") is not None and test["p_adjusted"] < ALPHA


def _oriented(test: Mapping[str, Any], sign: float) -> dict[str, Any]:
    """A test of `second - first` turned into one of the claimed direction (sign -1 swaps the two)."""
    low, high = test.get("ci95_low"), test.get("ci95_high")
    flipped = dict(test)
    flipped["difference"] = None if test["difference"] is None else _round(sign * test["difference"])
    if low is not None and high is not None:
        flipped["ci95_low"], flipped["ci95_high"] = (low, high) if sign > 0 else (_round(-high), _round(-low))
    return flipped


def _direction(test: Mapping[str, Any]) -> str | None:
    """'for' (significant, in the claimed direction), 'against' (significant, the other way) or None."""
    if not _significant(test):
        return None
    return "for" if test["difference"] > 0 else "against"


def factor_verdict(test: FactorTest, factorial: Factorial, effects: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The verdict of a factorial claim from the factorial's adjusted effects (see the module's rules)."""
    axis = "rows" if test.aspect == factorial.rows else "columns"
    levels = factorial.row_levels if axis == "rows" else factorial.column_levels
    others = factorial.column_levels if axis == "rows" else factorial.row_levels
    sign = 1.0 if test.better == levels[1] else -1.0
    main = _oriented(effects[axis], sign)
    simple = [{"at": others[i], **_oriented(effects[f"{axis}_at_{i}"], sign)} for i in (0, 1)]
    interaction = dict(effects["interaction"])
    found = {
        "worse": levels[0] if sign > 0 else levels[1],
        "better": test.better,
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


def verdicts(params: Params, runs: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Any]:
    """Every factorial's cells and effects and every claim's test and verdict, p-values adjusted (Holm) over
    all the tests made."""
    factorials: dict[str, dict[str, Any]] = {}
    for name, factorial in params.factorials.items():
        entry: dict[str, Any] = {
            "rows": factorial.rows,
            "columns": factorial.columns,
            "row_levels": list(factorial.row_levels),
            "column_levels": list(factorial.column_levels),
            "missing": missing_exercises(factorial.exercises(), runs),
            "confounds": confounds_found(factorial.confounds),
        }
        if not entry["missing"] and not entry["confounds"]:
            entry["cells"] = cell_statistics(factorial, runs)
            entry["effects"] = factorial_effects(factorial, runs)
        factorials[name] = entry

    claims: dict[str, dict[str, Any]] = {}
    for name, claim in params.claims.items():
        claims[name] = _claim_tests(claim, params, runs, curves, factorials)

    found: dict[str, Any] = {"factorials": factorials, "claims": claims}
    tests = _tests_in(found)
    for test, adjusted in zip(tests, holm([t["p_value"] for t in tests])):
        test["p_adjusted"] = _p(adjusted)
    for name, claim in params.claims.items():
        claims[name].update(_verdict(claim, params, claims[name], factorials))
    found["tests"] = len(tests)
    found["adjustment"] = "holm"
    return found


def _claim_tests(
    claim: Claim, params: Params, runs: pd.DataFrame, curves: pd.DataFrame, factorials: Mapping[str, Any]
) -> dict[str, Any]:
    """What a claim's test computed before the adjustment, or what is missing, or what keeps it from being made."""
    test = claim.test
    if test is None:
        return {"kind": "none", "missing": []}
    missing = missing_exercises(test.exercises(params), runs)
    held_back = test.held_back(params, factorials)
    entry: dict[str, Any] = {"kind": test.KIND, "missing": missing, **held_back}
    if missing and (profile := profile_for(missing, params)):
        entry["profile"] = profile
    if missing or any(held_back.values()):
        return entry
    return entry | test.run(runs, curves)


def _verdict(claim: Claim, params: Params, entry: Mapping[str, Any], factorials: Mapping[str, Any]) -> dict[str, Any]:
    test = claim.test
    if test is None or entry["missing"] or any(entry.get(k) for k in test.held_back(params, factorials)):
        return {"verdict": NOT_TESTED}
    return test.verdict(params, entry, factorials)
