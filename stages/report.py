"""Stage `report`: the whole lab on one self-contained HTML page, rendered by Jinja2.

    python -m stages.report --metrics reports/metrics --evaluation reports/evaluation --summary reports/summary \
        --history reports/history --study reports/study.json --study-figures reports/study --out reports/index.html

Reads only what train, evaluate and aggregate wrote under `reports/` and params.yaml; never
imports TensorFlow. Figures are embedded as PNG data URIs (the study's as aggregate drew them,
curves and confusion matrices drawn here with matplotlib), CSS is inlined: the file opens
anywhere, offline.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jinja2

from stages.cli import StageError, stage_main, write_text
from stages.config import Exercise, InputVariant, Params, load_params, one_change_pairs, settings
from stages.aggregate import CONFIDENCE, OVERVIEW_PNG, RUNS_CSV, comparison_key, curves_png
from stages.i18n import TEMPLATES, Formatter, translator

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
FOLDERS = ("metrics", "evaluation", "summary", "history")  # what train and evaluate write, one file per exercise
# A validation curve whose best value moved by less than this over the last epochs has flattened.
PLATEAU_ACCURACY = 0.005
PLATEAU_LOSS_REL = 0.02

# Every fixed text the Python side puts on the page; the templates hold the rest.
# Each is a message id of the catalogs in templates/messages/.
MESSAGES = {
    "best_class": "Best class: %(cls)s, with %(correct)s of %(support)s right (%(accuracy)s).",
    "worst_class": "Worst class: %(cls)s, with %(correct)s of %(support)s right (%(accuracy)s); "
    "%(wrong)s are misclassified.",
    "confusion": "The most frequent confusion: class %(actual)s is taken for %(predicted)s "
    "in %(count)s of %(support)s cases.",
    "accuracy_overfit": "Validation accuracy levels off from epoch %(epoch)s (%(val)s) while training accuracy "
    "keeps rising (%(start)s → %(end)s by epoch %(epochs)s): more epochs would mostly fit the training set.",
    "loss_overfit": "Validation loss levels off from epoch %(epoch)s (%(val)s) while training loss keeps "
    "falling (%(start)s → %(end)s by epoch %(epochs)s).",
    "accuracy_worse": "Validation accuracy was best at epoch %(epoch)s (%(val)s) and fell to %(last)s by epoch "
    "%(epochs)s while training accuracy kept rising (%(start)s → %(end)s): the network overfits.",
    "loss_worse": "Validation loss was lowest at epoch %(epoch)s (%(val)s) and rose to %(last)s by epoch %(epochs)s "
    "while training loss kept falling (%(start)s → %(end)s): the network overfits.",
    "accuracy_unstable": "Accuracy got worse after epoch %(epoch)s on both sets (validation %(val)s → %(last)s, "
    "training %(start)s → %(end)s): training is unstable; a lower learning rate may help.",
    "loss_unstable": "Loss got worse after epoch %(epoch)s on both sets (validation %(val)s → %(last)s, "
    "training %(start)s → %(end)s): training is unstable; a lower learning rate may help.",
    "accuracy_flat": "Both accuracy curves are flat from epoch %(epoch)s: training has converged or stalled.",
    "loss_flat": "Both loss curves are flat from epoch %(epoch)s: training has converged or stalled.",
    "accuracy_improving": "Validation accuracy is still improving at the last epoch (%(epochs)s): "
    "more epochs may help.",
    "loss_improving": "Validation loss is still falling at the last epoch (%(epochs)s): more epochs may help.",
    "comparison": "%(b)s differs from %(a)s only in its %(aspect)s (%(from)s → %(to)s): test accuracy "
    "%(acc_a)s → %(acc_b)s, %(diff)s percentage points.",
    # The seeds study.
    "lab_inside": "The lab's %(lab)s lies inside the range of our %(n)s runs (%(min)s to %(max)s), "
    "%(sds)s standard deviations from our mean of %(mean)s ± %(sd)s.",
    "lab_above": "The lab's %(lab)s lies above the range of our %(n)s runs (%(min)s to %(max)s), "
    "%(sds)s standard deviations above our mean of %(mean)s ± %(sd)s: our runs do not reach it.",
    "lab_below": "The lab's %(lab)s lies below the range of our %(n)s runs (%(min)s to %(max)s), "
    "%(sds)s standard deviations below our mean of %(mean)s ± %(sd)s: our runs do better.",
    "study_above": "Over %(n_a)s and %(n_b)s runs, %(b)s is %(diff)s ± %(half)s points above %(a)s "
    "(95%% interval %(low)s to %(high)s; Welch's t-test p %(p)s): a real difference, not run-to-run noise.",
    "study_below": "Over %(n_a)s and %(n_b)s runs, %(b)s is %(diff)s ± %(half)s points below %(a)s "
    "(95%% interval %(low)s to %(high)s; Welch's t-test p %(p)s): a real difference, not run-to-run noise.",
    "study_noise": "Over %(n_a)s and %(n_b)s runs, %(b)s differs from %(a)s by %(signed)s points (95%% interval "
    "%(low)s to %(high)s; Welch's t-test p %(p)s): within run-to-run noise, so single runs cannot tell them apart.",
    "study_untestable": "Over %(n_a)s and %(n_b)s runs, every run of each exercise gave the same accuracy: "
    "there is no spread to test the difference of %(signed)s points against.",
    # Figure labels and the settings a comparison can name.
    "train": "Train",
    "validation": "Validation",
    "accuracy": "Accuracy",
    "loss": "Loss",
    "epoch": "Epoch",
    "predicted": "Predicted class",
    "actual": "Actual class",
    "dataset": "dataset",
    "layer sizes": "layer sizes",
    "activations": "activations",
    "input scaling": "input scaling",
    "optimizer": "optimizer",
    "learning rate": "learning rate",
    "loss function": "loss function",
    "batch size": "batch size",
    "epochs": "epochs",
    "validation split": "validation split",
}


@dataclass
class ExerciseResult:
    """Everything train and evaluate wrote for one exercise, with its settings."""

    name: str
    spec: Exercise
    variant: InputVariant
    metrics: dict
    evaluation: dict
    history: dict[str, list[float]]
    summary: dict
    class_names: list[str]
    study: dict | None = None  # the seeds study's statistics, if the exercise is studied
    observations: list[Observation] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)

    @property
    def difference(self) -> float | None:
        """Test accuracy minus the lab's, as a fraction (None if the lab reported none)."""
        lab = self.spec.lab_test_accuracy
        return None if lab is None else self.metrics["test_accuracy"] - lab


@dataclass(frozen=True)
class Observation:
    """One sentence of the report: an English message id and its already formatted values."""

    message: str
    values: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Observations derived from the data


def class_observations(result: ExerciseResult, fmt: Formatter) -> list[Observation]:
    """Best and worst class, and the most frequent confusion, from the confusion matrix."""
    per_class = [c for c in result.evaluation["per_class"] if c["support"] > 0]
    if not per_class:
        return []
    names = result.class_names
    best = max(per_class, key=lambda c: (c["accuracy"], -c["class"]))
    worst = min(per_class, key=lambda c: (c["accuracy"], c["class"]))

    def described(c: dict) -> dict:
        return {
            "cls": names[c["class"]],
            "correct": fmt.thousands(c["correct"]),
            "support": fmt.thousands(c["support"]),
            "accuracy": fmt.percent(c["accuracy"]),
            "wrong": fmt.thousands(c["support"] - c["correct"]),
        }

    found = [
        Observation(MESSAGES["best_class"], described(best)),
        Observation(MESSAGES["worst_class"], described(worst)),
    ]
    matrix = result.evaluation["confusion_matrix"]
    off_diagonal = [(matrix[a][p], a, p) for a in range(len(matrix)) for p in range(len(matrix)) if a != p]
    count, actual, predicted = max(off_diagonal, key=lambda t: (t[0], -t[1], -t[2]))
    if count > 0:
        found.append(
            Observation(
                MESSAGES["confusion"],
                {
                    "actual": names[actual],
                    "predicted": names[predicted],
                    "count": fmt.thousands(count),
                    "support": fmt.thousands(sum(matrix[actual])),
                },
            )
        )
    return found


def _plateau_epoch(values: list[float], higher_is_better: bool, tolerance: Callable[[float], float]) -> int:
    """The first epoch (1-based) after which the curve never improves by more than the tolerance."""
    sign = 1.0 if higher_is_better else -1.0
    for i, v in enumerate(values):
        best_later = max(sign * w for w in values[i:])
        if best_later - sign * v <= tolerance(v):
            return i + 1
    return len(values)


def curve_observations(result: ExerciseResult, fmt: Formatter) -> list[Observation]:
    """How the validation curves behave against the training curves: worsening, flat or improving."""
    h = result.history
    n = len(h.get("loss", []))
    if n < 3:
        return []
    found = []
    for metric, higher, tol in (
        ("accuracy", True, lambda v: PLATEAU_ACCURACY),
        ("loss", False, lambda v: abs(v) * PLATEAU_LOSS_REL),
    ):
        sign = 1.0 if higher else -1.0
        train, val = h[metric], h[f"val_{metric}"]
        best = max(range(n), key=lambda i: (sign * val[i], -i))
        # Worse at the end than at its best, for at least two epochs: not a one-epoch blip.
        worsened = best <= n - 3 and sign * (val[best] - val[-1]) > tol(val[best])
        epoch = best + 1 if worsened else _plateau_epoch(val, higher, tol)
        train_gain = sign * (train[-1] - train[epoch - 1])
        values = {
            "epoch": epoch,
            "epochs": n,
            "start": fmt.number(train[epoch - 1], 4),
            "end": fmt.number(train[-1], 4),
            "val": fmt.number(val[epoch - 1], 4),
            "last": fmt.number(val[-1], 4),
        }
        training_improves = train_gain > tol(train[epoch - 1])
        if worsened:
            outcome = "worse" if training_improves else "unstable"
        elif epoch < n:
            outcome = "overfit" if training_improves else "flat"
        else:
            outcome = "improving"
        found.append(Observation(MESSAGES[f"{metric}_{outcome}"], values))
    return found


@dataclass(frozen=True)
class Comparison:
    """Two exercises that differ in one setting: what the lab's runs show, and what the study says of it."""

    single: Observation
    study: Observation | None


def lab_position(statistics: dict) -> str:
    """Where the lab's number falls against an exercise's runs: inside, above or below their range."""
    if statistics["lab_in_range"]:
        return "inside"
    return "above" if statistics["lab"] > statistics["max"] else "below"


def study_observations(result: ExerciseResult, fmt: Formatter) -> list[Observation]:
    """Where the lab's reported accuracy falls among our runs."""
    s = result.study
    if not s or s.get("lab") is None:
        return []
    values = {
        "lab": fmt.percent(s["lab"]),
        "n": s["n"],
        "min": fmt.percent(s["min"]),
        "max": fmt.percent(s["max"]),
        "mean": fmt.percent(s["mean"]),
        "sd": fmt.percent(s["sd"]),
        "sds": "–" if s["lab_sds"] is None else fmt.number(abs(s["lab_sds"]), 1),
    }
    return [Observation(MESSAGES[f"lab_{lab_position(s)}"], values)]


def study_comparison(a: str, b: str, test: dict, n_a: int, n_b: int, fmt: Formatter) -> Observation:
    """The Welch test of a one-setting comparison, in words: a real difference, or within noise."""
    values = {"a": a, "b": b, "n_a": n_a, "n_b": n_b, "signed": fmt.points(test["difference"])}
    if test["p_value"] is None:
        return Observation(MESSAGES["study_untestable"], values)
    values.update(
        diff=fmt.points(abs(test["difference"])).lstrip("+"),
        half=fmt.points((test["ci95_high"] - test["ci95_low"]) / 2).lstrip("+"),
        low=fmt.points(test["ci95_low"]),
        high=fmt.points(test["ci95_high"]),
        p=fmt.p_value(test["p_value"]),
    )
    if test["p_value"] >= 1 - CONFIDENCE:
        return Observation(MESSAGES["study_noise"], values)
    return Observation(MESSAGES["study_above" if test["difference"] > 0 else "study_below"], values)


def _show(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def comparisons(
    results: list[ExerciseResult],
    params: Params,
    fmt: Formatter,
    translate: Callable[[str], str] = str,
    study: dict | None = None,
) -> list[Comparison]:
    """For each pair of exercises that differ in exactly one setting, what that change did (and, when both
    are in the seeds study, whether the difference is larger than run-to-run noise)."""
    by_name = {r.name: r for r in results}
    found = []
    for name_a, name_b, aspect in one_change_pairs(params, list(by_name)):
        a, b = by_name[name_a], by_name[name_b]
        aspects_a, aspects_b = settings(a.spec, a.variant), settings(b.spec, b.variant)
        diff = b.metrics["test_accuracy"] - a.metrics["test_accuracy"]
        single = Observation(
            MESSAGES["comparison"],
            {
                "a": a.name,
                "b": b.name,
                "aspect": translate(MESSAGES[aspect]),
                "from": _show(aspects_a[aspect]),
                "to": _show(aspects_b[aspect]),
                "acc_a": fmt.percent(a.metrics["test_accuracy"]),
                "acc_b": fmt.percent(b.metrics["test_accuracy"]),
                "diff": fmt.points(diff),
            },
        )
        test = (study or {}).get("comparisons", {}).get(comparison_key(a.name, b.name))
        found.append(
            Comparison(single, test and study_comparison(a.name, b.name, test, a.study["n"], b.study["n"], fmt))
        )
    return found


# ---------------------------------------------------------------------------------------------
# Figures


def _png_data_uri(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to PNG
    import matplotlib.pyplot as plt

    return plt


def curves_figure(history: dict[str, list[float]], labels: dict[str, str]) -> str:
    """Accuracy and loss, train vs validation, side by side, as a PNG data URI."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = list(range(1, len(history["loss"]) + 1))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        ax.plot(epochs, history[metric], marker="o", markersize=3, label=labels["train"])
        ax.plot(epochs, history[f"val_{metric}"], marker="o", markersize=3, label=labels["validation"])
        ax.set_title(labels[metric])
        ax.set_xlabel(labels["epoch"])
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    return _png_data_uri(figure)


def confusion_figure(matrix: list[list[int]], class_names: list[str], labels: dict[str, str]) -> str:
    """The confusion matrix as an annotated heatmap (the lab's Hình 9/14), as a PNG data URI.

    Drawn with plain matplotlib: importing seaborn alone costs more than a second.
    """
    plt = _pyplot()
    n = len(matrix)
    figure, ax = plt.subplots(figsize=(6.4, 5.2))
    image = ax.imshow(matrix, cmap="Blues")
    peak = max(max(row) for row in matrix) or 1
    for a in range(n):
        for p in range(n):
            value = matrix[a][p]
            ax.text(p, a, str(value), ha="center", va="center", fontsize=8, color="white" if value > peak / 2 else "black")
    ax.set_xticks(range(n), class_names, rotation=45 if max(map(len, class_names)) > 2 else 0)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel(labels["predicted"])
    ax.set_ylabel(labels["actual"])
    figure.colorbar(image, ax=ax, fraction=0.046)
    figure.tight_layout()
    return _png_data_uri(figure)


# ---------------------------------------------------------------------------------------------
# Jinja2


def make_environment(language: str = "en") -> jinja2.Environment:
    """The report's one Jinja2 environment: autoescaping, templates beside this module, filters, i18n."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    translate = translator(language)
    fmt = Formatter(language)
    env.install_gettext_callables(
        gettext=translate,
        ngettext=lambda singular, plural, n: translate(singular if n == 1 else plural),
        newstyle=True,
    )
    env.filters.update(
        percent=fmt.percent, thousands=fmt.thousands, number=fmt.number, points=fmt.points, p_value=fmt.p_value
    )
    env.globals.update(language=language)
    return env


def render(env: jinja2.Environment, **context: Any) -> str:
    """Render the page from named values."""
    return env.get_template("report.html.j2").render(**context)


def build_report(
    results: list[ExerciseResult], params: Params, provenance: dict[str, Any], study: StudyView | None = None
) -> str:
    """The HTML page for these results: observations, figures, then one render call."""
    language = params.report.language
    env = make_environment(language)
    fmt = Formatter(language)
    translate = translator(language)
    labels = {key: translate(MESSAGES[key]) for key in ("train", "validation", "accuracy", "loss", "epoch", "predicted", "actual")}
    for result in results:
        result.study = study.statistics["exercises"].get(result.name) if study else None
        result.observations = (
            class_observations(result, fmt) + curve_observations(result, fmt) + study_observations(result, fmt)
        )
        result.figures = {
            # A studied exercise shows its curves across seeds (aggregate drew them); the others their one run.
            "curves": study.figures[result.name] if result.study else curves_figure(result.history, labels),
            "confusion": confusion_figure(result.evaluation["confusion_matrix"], result.class_names, labels),
        }
    return render(
        env,
        results=results,
        comparisons=comparisons(results, params, fmt, translate, study.statistics if study else None),
        study=study,
        datasets=params.datasets,
        provenance=provenance,
    )


# ---------------------------------------------------------------------------------------------
# I/O


def read_history(path: Path) -> dict[str, list[float]]:
    """A history CSV (epoch, loss, accuracy, val_loss, val_accuracy) as columns of floats."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {column: [float(row[column]) for row in rows] for column in (rows[0] if rows else {})}


def load_results(params: Params, folders: dict[str, Path]) -> list[ExerciseResult]:
    """Read what train and evaluate wrote (folders: metrics, evaluation, summary, history) for every exercise."""
    results = []
    for name, spec in params.exercises.items():
        paths = {kind: folders[kind] / f"{name}.{'csv' if kind == 'history' else 'json'}" for kind in FOLDERS}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise StageError(f"{name}: missing {', '.join(missing)}; run `dvc repro` to train and evaluate it")
        variant = params.inputs[spec.inputs]
        results.append(
            ExerciseResult(
                name=name,
                spec=spec,
                variant=variant,
                metrics=json.loads(paths["metrics"].read_text()),
                evaluation=json.loads(paths["evaluation"].read_text()),
                summary=json.loads(paths["summary"].read_text()),
                history=read_history(paths["history"]),
                class_names=CLASS_NAMES[variant.dataset],
            )
        )
    return results


@dataclass(frozen=True)
class StudyView:
    """What aggregate wrote for the seeds study, ready for the page."""

    statistics: dict  # reports/study.json: per exercise and per comparison
    runs: list[dict]  # one row per run: exercise, seed, lab_run, test_accuracy, test_loss
    seeds: tuple[int, ...]  # every run's seed, the lab's first
    figures: dict[str, str]  # "overview" and each studied exercise's curves, as data URIs

    def accuracy(self, exercise: str, seed: int) -> float:
        """One run's test accuracy."""
        return next(r["test_accuracy"] for r in self.runs if r["exercise"] == exercise and r["seed"] == seed)

    def position(self, exercise: str) -> str:
        """Where the lab's number falls: inside, above or below our runs' range."""
        return lab_position(self.statistics["exercises"][exercise])


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def load_study(params: Params, statistics_file: Path, figures: Path) -> StudyView:
    """Read the study's statistics, per-run table and figures; every studied exercise must be there."""
    wanted = [statistics_file, figures / RUNS_CSV, figures / OVERVIEW_PNG, *(figures / curves_png(n) for n in params.study.exercises)]
    missing = [str(p) for p in wanted if not p.is_file()]
    if missing:
        raise StageError(f"seeds study: missing {', '.join(missing)}; run `dvc repro` to aggregate it")
    statistics = json.loads(statistics_file.read_text())
    absent = [n for n in params.study.exercises if n not in statistics.get("exercises", {})]
    if absent:
        raise StageError(f"{statistics_file}: no statistics for {', '.join(absent)}; run `dvc repro` to aggregate them")
    with open(figures / RUNS_CSV, newline="", encoding="utf-8") as f:
        runs = [
            {**row, "seed": int(row["seed"]), "lab_run": row["lab_run"] == "True",
             "test_accuracy": float(row["test_accuracy"]), "test_loss": float(row["test_loss"])}
            for row in csv.DictReader(f)
        ]
    return StudyView(
        statistics=statistics,
        runs=runs,
        seeds=params.study.all_seeds(params.seed),
        figures={"overview": _data_uri(figures / OVERVIEW_PNG)}
        | {name: _data_uri(figures / curves_png(name)) for name in params.study.exercises},
    )


def provenance(results: list[ExerciseResult]) -> dict[str, Any]:
    """Git revision and library versions the results came from."""
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision = None
    versions = results[0].summary.get("versions", {}) if results else {}
    return {"revision": revision, "versions": versions}


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.report --metrics DIR --evaluation DIR --summary DIR --history DIR
    --study FILE.json --study-figures DIR --out FILE.html`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for kind in FOLDERS:
        parser.add_argument(f"--{kind}", type=Path, required=True, help=f"the folder of the {kind} files")
    parser.add_argument("--study", type=Path, required=True, help="the seeds study's statistics (aggregate)")
    parser.add_argument("--study-figures", type=Path, required=True, help="the study's per-run table and figures")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_params()
    results = load_results(params, {kind: getattr(args, kind) for kind in FOLDERS})
    study = load_study(params, args.study, args.study_figures)
    write_text(args.out, build_report(results, params, provenance(results), study))
    print(f"report: wrote {args.out} ({len(results)} exercises)", file=sys.stderr)


if __name__ == "__main__":
    main()
