"""Stage `aggregate`: the seeds study's statistics and figures, from every run of every studied exercise.

    python -m stages.aggregate --metrics reports/metrics --history reports/history --runs reports/runs \
        --out reports/study.json --figures reports/study

A run is the lab's run (train and evaluate, the top-level seed) or a `replicate` run (another seed).
Per studied exercise: n, mean, standard deviation, min, max and the 95% confidence interval of the
mean test accuracy (Student t), and where the lab's reported number falls. Per pair of studied
exercises that differ in exactly one setting (the lab's comparisons): the difference of means with
its 95% interval and Welch's t-test p-value. The statistics are DVC metrics (`--out`); the per-run
table and the figures go to `--figures`. Never imports TensorFlow; pandas, SciPy and seaborn only
when computing or drawing, so the report can import the file names defined here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from stages.cli import StageError, replaced_folder, stage_main, write_text
from stages.config import Params, load_params, one_change_pairs
from stages.drawing import curves_figure, long_history, number_axis, save_png, seaborn
from stages.i18n import Formatter, translator
from stages.layout import OVERVIEW_PNG, RUNS_CSV, curves_png, run_file

CONFIDENCE = 0.95

# The figures' texts; message ids of the catalogs in templates/messages/.
LABELS = {
    "accuracy_pct": "Test accuracy (%)",
    "run": "One run (seed)",
    "mean_ci": "Mean and 95% interval",
    "lab": "Lab's reported accuracy",
    "train": "Train",
    "validation": "Validation",
    "accuracy": "Accuracy",
    "loss": "Loss",
    "epoch": "Epoch",
}


# ---------------------------------------------------------------------------------------------
# Reading the runs


def read_runs(
    params: Params, metrics_dir: Path, history_dir: Path, runs_dir: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run of every studied exercise, the lab's run first.

    Returns (runs: one row per run with exercise, seed, lab_run, test_accuracy, test_loss;
    curves: long-form history with exercise, seed, epoch, metric, split, value).
    """
    import numpy as np
    import pandas as pd

    rows, curves = [], []
    for name in params.study.exercises:
        for seed in params.study.all_seeds(params.seed):
            lab_run = seed == params.seed
            paths = (
                [metrics_dir / f"{name}.json", history_dir / f"{name}.csv"]
                if lab_run
                else [runs_dir / name / run_file(seed)]
            )
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise StageError(f"{name}, seed {seed}: missing {', '.join(missing)}; run `dvc repro` to train it")
            metrics = json.loads(paths[0].read_text())
            if lab_run:
                history = pd.read_csv(paths[1])
            else:
                history = pd.DataFrame(metrics["history"]).assign(epoch=lambda d: np.arange(1, len(d) + 1))
            rows.append(
                {
                    "exercise": name,
                    "seed": seed,
                    "lab_run": lab_run,
                    "test_accuracy": metrics["test_accuracy"],
                    "test_loss": metrics["test_loss"],
                }
            )
            curves.append(long_history(history).assign(exercise=name, seed=seed))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Statistics


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
    if lab is not None:
        found["lab"] = lab
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


def study_statistics(runs: pd.DataFrame, params: Params) -> dict[str, Any]:
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


def overview_figure(runs: pd.DataFrame, statistics: dict[str, Any], labels: dict[str, str], fmt: Formatter):
    """One panel per studied exercise: each run a dot, the mean with its 95% interval, the lab's number a line."""
    sns = seaborn()
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    names = list(statistics["exercises"])
    figure, axes = plt.subplots(1, len(names), figsize=(2.3 * len(names) + 0.6, 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        s = statistics["exercises"][name]
        data = runs[runs["exercise"] == name].assign(percent=lambda d: d["test_accuracy"] * 100)
        sns.stripplot(data=data, y="percent", ax=ax, jitter=0.12, size=6, color="C0", alpha=0.75)
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
    translate, fmt = translator(language), Formatter(language)
    labels = {key: translate(text) for key, text in LABELS.items()}
    with replaced_folder(folder) as staging:
        runs.to_csv(staging / RUNS_CSV, index=False, float_format="%.6g")
        save_png(overview_figure(runs, statistics, labels, fmt), staging / OVERVIEW_PNG)
        for name, group in curves.groupby("exercise", sort=False):
            save_png(curves_figure(group, labels, fmt), staging / curves_png(str(name)))


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.aggregate --metrics DIR --history DIR --runs DIR --out FILE --figures DIR`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, required=True, help="the lab's runs' metrics (evaluate)")
    parser.add_argument("--history", type=Path, required=True, help="the lab's runs' histories (train)")
    parser.add_argument("--runs", type=Path, required=True, help="the other seeds' runs (replicate)")
    parser.add_argument("--out", type=Path, required=True, help="the study's statistics (a DVC metrics file)")
    parser.add_argument("--figures", type=Path, required=True, help="folder for the per-run table and the figures")
    args = parser.parse_args(argv)
    params = load_params()
    runs, curves = read_runs(params, args.metrics, args.history, args.runs)
    statistics = study_statistics(runs, params)
    write_text(args.out, json.dumps(statistics, indent=2) + "\n")
    write_figures(args.figures, runs, curves, statistics, params.report.language)
    for name, s in statistics["exercises"].items():
        print(
            f"{name}: {s['mean']:.2%} ± {s['sd'] or 0:.2%} over {s['n']} runs (min {s['min']:.2%}, max {s['max']:.2%})",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
