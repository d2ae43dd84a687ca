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

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from denselab.core.config import Params
from denselab.study.aspects import Factorial
from denselab.study.claim_tests import Claim, why_untestable
from denselab.study.statistics import describe
from denselab.study.verdicts import ALPHA, NOT_TESTED, confounds_found, p_rounded, rounded

if TYPE_CHECKING:
    import pandas as pd

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


def untested_because(claim: Claim, params: Params, entry: Mapping[str, Any]) -> list[str]:
    """Why a claim with a test was not tested, in English (judge's log; the report words it per language)."""
    if entry.get("missing"):
        profile = entry.get("profile")
        then = f"; the profile {profile} does: `python -m denselab.tools.profile {profile}`" if profile else ""
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
            found[name] = {"difference": rounded(difference), "ci95_low": None, "ci95_high": None, "p_value": None}
            continue
        low, high = np.squeeze(test.conf_int(alpha=ALPHA))
        found[name] = {
            "difference": rounded(difference),
            "ci95_low": rounded(low),
            "ci95_high": rounded(high),
            "p_value": p_rounded(float(np.squeeze(test.pvalue))),
        }
    return found


def cell_statistics(factorial: Factorial, runs: pd.DataFrame) -> list[list[dict[str, Any]]]:
    """Each cell's exercise and its runs described (n, mean, sd, interval), row by row."""
    return [
        [{"exercise": name, **describe(runs.loc[runs["exercise"] == name, "test_accuracy"], None)} for name in row]
        for row in factorial.cells
    ]


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
        test["p_adjusted"] = p_rounded(adjusted)
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
