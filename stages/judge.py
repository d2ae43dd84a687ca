"""Stage `judge`: the lab's conclusions on trial, each claim of params.yaml tested on the seeds study's runs.

    python -m stages.judge --runs reports/runs \
        --out reports/claims.json --figures reports/claims

Reads every run of every studied exercise (as aggregate does), fits each factorial of params.yaml (main effects,
interaction and simple effects with 95% intervals), tests each claim, adjusts every p-value for the number of
tests (Holm) and gives each claim a verdict (`denselab.study.claims` holds the rules). The results are a DVC metrics
file (`--out`); each factorial's interaction plot goes to `--figures`. Never imports TensorFlow.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from denselab.core.cli import argument_parser, stage_main
from denselab.core.config import Params
from denselab.core.files import replaced_folder, write_text
from denselab.core.i18n import N_, Language
from denselab.core.layout import factorial_png
from denselab.report.drawing import number_axis, save_png, seaborn
from denselab.report.observations import level_shown
from denselab.study.claim_tests import load_with_claims
from denselab.study.claims import NOT_TESTED, untested_because, verdicts
from denselab.study.runs import add_run_arguments, read_runs

LABELS = {
    "accuracy_pct": N_("Test accuracy (%)"),
    "run": N_("One run (seed)"),
    "mean_ci": N_("Mean and 95% interval"),
}


def judge(params: Params, runs: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Any]:
    """Every factorial's effects and every claim's verdict, for the study's runs (the rules: `denselab.study.claims`)."""
    return verdicts(params, runs, curves)


def interaction_figure(factorial: Mapping[str, Any], runs: pd.DataFrame, fmt: Language):
    """A factorial's interaction plot: the columns' two values along x, one line per value of the rows' aspect,
    each cell's mean with its 95% interval and every run as a dot. Parallel lines: no interaction."""
    seaborn()
    import matplotlib.pyplot as plt

    labels = fmt.labels(LABELS)
    figure, ax = plt.subplots(figsize=(4.6, 3.4))
    for r, row in enumerate(factorial["cells"]):
        color, offset = f"C{r}", (r - 0.5) * 0.08
        xs = [c + offset for c in (0, 1)]
        means = [cell["mean"] * 100 for cell in row]
        errors = [
            [(cell["mean"] - cell["ci95_low"]) * 100 for cell in row],
            [(cell["ci95_high"] - cell["mean"]) * 100 for cell in row],
        ]
        level = level_shown(factorial["row_levels"][r], fmt)
        ax.errorbar(xs, means, yerr=errors, fmt="o-", color=color, capsize=4, label=level, linewidth=1.8)
        for c, cell in enumerate(row):
            values = runs.loc[runs["exercise"] == cell["exercise"], "test_accuracy"].to_numpy() * 100
            # Spread sideways by rank, not at random: the figure is the same every time it is drawn.
            spread = [xs[c] + 0.012 * (i - (len(values) - 1) / 2) for i in range(len(values))]
            ax.plot(spread, values, "o", color=color, alpha=0.35, markersize=3.5)
    ax.set_xticks([0, 1], [level_shown(v, fmt) for v in factorial["column_levels"]])
    ax.set_xlim(-0.4, 1.4)
    ax.set_xlabel(fmt.gettext(factorial["columns"]))
    ax.set_ylabel(labels["accuracy_pct"])
    number_axis(ax.yaxis, fmt)
    ax.legend(title=fmt.gettext(factorial["rows"]), frameon=False, fontsize="small")
    figure.tight_layout()
    return figure


def write_figures(folder: Path, found: Mapping[str, Any], runs: pd.DataFrame, language: str) -> None:
    """Each testable factorial's interaction plot into `folder`, replaced as a whole."""
    fmt = Language(language)
    with replaced_folder(folder) as staging:
        for name, factorial in found["factorials"].items():
            if "cells" in factorial:
                save_png(interaction_figure(factorial, runs, fmt), staging / factorial_png(name))


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.judge --runs DIR --out FILE --figures DIR`."""
    parser = argument_parser(__spec__, __doc__)
    add_run_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="the claims' tests and verdicts (a DVC metrics file)")
    parser.add_argument("--figures", type=Path, required=True, help="folder for the factorials' interaction plots")
    args = parser.parse_args(argv)
    params = load_with_claims()
    runs, curves = read_runs(params, args.runs)
    found = judge(params, runs, curves)
    write_text(args.out, json.dumps(found, indent=2) + "\n")
    write_figures(args.figures, found, runs, params.report.language)
    for name, claim in found["claims"].items():
        effect = claim.get("effect") or claim.get("test") or {}
        shown = (
            f" ({effect['difference']:+.2%}, adjusted p {effect.get('p_adjusted')})" if effect.get("difference") else ""
        )
        if claim["verdict"] == NOT_TESTED and params.claims[name].test is not None:
            shown = f" ({'; '.join(untested_because(params.claims[name], params, claim))})"
        print(f"{name}: {claim['verdict']}{shown}", file=sys.stderr)


if __name__ == "__main__":
    main()
