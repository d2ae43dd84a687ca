"""Stage `aggregate`: the seeds study's statistics and figures, from every run of every studied exercise.

    python -m stages.aggregate --runs reports/runs \
        --out reports/study.json --figures reports/study

A run is the lab's run (train and evaluate, the top-level seed) or a `replicate` run (another seed).
Per studied exercise: n, mean, standard deviation, min, max and the 95% confidence interval of the
mean test accuracy (Student t), and where the lab's reported number falls. Per pair of studied
exercises that differ in exactly one setting (the lab's comparisons): the difference of means with
its 95% interval and Welch's t-test p-value. The statistics are DVC metrics (`--out`); the per-run
table and the figures go to `--figures`. Never imports TensorFlow; pandas, SciPy and seaborn only
when computing or drawing; the statistics themselves are in `denselab.study.statistics`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from denselab.core.cli import argument_parser, stage_main
from denselab.core.config import Params, load_params
from denselab.core.files import replaced_folder, write_text
from denselab.core.i18n import N_, Language
from denselab.core.layout import OVERVIEW_PNG, RUNS_CSV, curves_png
from denselab.report.drawing import CURVE_LABELS, curves_figure, number_axis, save_png, seaborn
from denselab.study.aspects import one_change_pairs
from denselab.study.runs import add_run_arguments, read_runs
from denselab.study.statistics import comparison_key, describe, welch

# The figures' texts; message ids of the catalogs in templates/messages/.
LABELS = {
    "accuracy_pct": N_("Test accuracy (%)"),
    "run": N_("One run (seed)"),
    "mean_ci": N_("Mean and 95% interval"),
    "lab": N_("Lab's reported accuracy"),
    **CURVE_LABELS,
}


# ---------------------------------------------------------------------------------------------
# Statistics


def aggregate(runs: pd.DataFrame, params: Params) -> dict[str, Any]:
    """The study's metrics: per exercise its description, per one-setting comparison its Welch test."""
    by_exercise = {name: group["test_accuracy"] for name, group in runs.groupby("exercise", sort=False)}
    return {
        "exercises": {
            name: describe(accuracies, params.exercises[name].lab_test_accuracy)
            for name, accuracies in by_exercise.items()
        },
        "comparisons": {
            comparison_key(a, b): welch(by_exercise[a], by_exercise[b])
            for a, b, _ in one_change_pairs(params, list(by_exercise))
        },
    }


# ---------------------------------------------------------------------------------------------
# Figures


def overview_figure(runs: pd.DataFrame, statistics: dict[str, Any], labels: dict[str, str], fmt: Language):
    """One panel per studied exercise: each run a dot, the mean with its 95% interval, the lab's number a line."""
    sns = seaborn()
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    names = list(statistics["exercises"])
    figure, axes = plt.subplots(1, len(names), figsize=(2.3 * len(names) + 0.6, 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        s = statistics["exercises"][name]
        data = runs[runs["exercise"] == name].assign(percent=lambda d: d["test_accuracy"] * 100)
        # A swarm, not a jittered strip: its positions are computed, not drawn at random, so the figure (and the
        # report that embeds it) comes out byte for byte the same every time.
        sns.swarmplot(data=data, y="percent", ax=ax, size=6, color="C0", alpha=0.75)
        ax.errorbar(
            [0.32],
            [s["mean"] * 100],
            yerr=[[(s["mean"] - s["ci95_low"]) * 100], [(s["ci95_high"] - s["mean"]) * 100]],
            fmt="o",
            color="black",
            capsize=5,
            markersize=5,
        )
        if s.get("lab") is not None:
            ax.axhline(s["lab"] * 100, color="C3", linestyle="--", linewidth=1.5)
        ax.set_xlim(-0.5, 0.6)
        ax.set_xticks([])
        ax.set_title(name)
        ax.set_xlabel("")
        ax.set_ylabel(labels["accuracy_pct"] if ax is axes[0][0] else "")
        number_axis(ax.yaxis, fmt)
    handles = [
        Line2D([], [], marker="o", linestyle="", color="C0", alpha=0.75, label=labels["run"]),
        Line2D([], [], marker="o", linestyle="-", color="black", label=labels["mean_ci"]),
        Line2D([], [], linestyle="--", color="C3", label=labels["lab"]),
    ]
    figure.legend(handles=handles, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.02))
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    return figure


def write_figures(folder: Path, runs: pd.DataFrame, curves: pd.DataFrame, statistics: dict, language: str) -> None:
    """The per-run table and every figure into `folder`, replaced as a whole (no stale files survive)."""
    fmt = Language(language)
    labels = fmt.labels(LABELS)
    with replaced_folder(folder) as staging:
        runs.to_csv(staging / RUNS_CSV, index=False, float_format="%.6g")
        save_png(overview_figure(runs, statistics, labels, fmt), staging / OVERVIEW_PNG, crop=True)
        for name, group in curves.groupby("exercise", sort=False):
            save_png(curves_figure(group, labels, fmt), staging / curves_png(str(name)))


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.aggregate --runs DIR --out FILE --figures DIR`."""
    parser = argument_parser(__spec__, __doc__)
    add_run_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="the study's statistics (a DVC metrics file)")
    parser.add_argument("--figures", type=Path, required=True, help="folder for the per-run table and the figures")
    args = parser.parse_args(argv)
    params = load_params()
    runs, curves = read_runs(params, args.runs)
    statistics = aggregate(runs, params)
    write_text(args.out, json.dumps(statistics, indent=2) + "\n")
    write_figures(args.figures, runs, curves, statistics, params.report.language)
    for name, s in statistics["exercises"].items():
        print(
            f"{name}: {s['mean']:.2%} ± {s['sd'] or 0:.2%} over {s['n']} runs (min {s['min']:.2%}, max {s['max']:.2%})",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
