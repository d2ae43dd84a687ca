"""Stage `report`: the whole lab on one self-contained HTML page, rendered by Jinja2.

    python -m stages.report --metrics reports/metrics --evaluation reports/evaluation --summary reports/summary \
        --history reports/history --figures reports/figures --datasets reports/datasets \
        --study reports/study.json --study-figures reports/study --out reports/index.html

Only assembles: it reads what train, evaluate, explain, describe and aggregate wrote under `reports/`
and params.yaml, writes the observations, and renders the page. It never draws and never imports
TensorFlow or matplotlib: every figure was drawn by the stage that owns its data and is embedded
here as a PNG data URI; CSS is inlined, so the file opens anywhere, offline.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from stages.aggregate import CONFIDENCE, comparison_key
from stages.cli import StageError, stage_main, write_text
from stages.config import Exercise, InputVariant, Params, load_params, one_change_pairs, settings
from stages.i18n import TEMPLATES, Formatter, translator
from stages.layout import (
    DATASET_FIGURES,
    DATASET_SUMMARY,
    EXERCISE_FIGURES,
    EXERCISE_REQUIRED,
    OVERVIEW_PNG,
    RUNS_CSV,
    curves_png,
)

FOLDERS = ("metrics", "evaluation", "summary", "history")  # what train, evaluate and explain write, a file per exercise
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
    # What the hidden units do on the test set (explain's diagnostics).
    "relu_units": "Layer %(layer)s: %(dead)s of its %(units)s ReLU units (%(share)s) never switch on for any of the "
    "%(samples)s test images: they are dead, pass nothing on and no longer learn. An average image switches on "
    "%(active)s units, and %(silent)s of the images switch on none at all; the median |pre-activation| is %(median)s.",
    "relu_units_all_on": "Layer %(layer)s: %(dead)s of its %(units)s ReLU units (%(share)s) never switch on for any of "
    "the %(samples)s test images: they are dead, pass nothing on and no longer learn. An average image switches on "
    "%(active)s units, and every image switches on at least one; the median |pre-activation| is %(median)s.",
    "sigmoid_units": "Layer %(layer)s: %(saturated)s of its %(units)s sigmoid units are saturated (output below 0.01 "
    "or above 0.99) on at least 95%% of the test images, so they act as on/off switches with almost no gradient; "
    "%(stuck)s (%(share)s) give the same output for every image and carry no information. The median "
    "|pre-activation| is %(median)s.",
    "linear_units": "Layer %(layer)s has no activation: it only scales and mixes its inputs, and the layers together "
    "amount to one linear map (median |pre-activation| %(median)s).",
    "other_units": "Layer %(layer)s (%(activation)s): the median |pre-activation| is %(median)s.",
    "no_hidden": "The model has no hidden layer: the hidden-unit diagnostics do not apply.",
    "units_comparison": "In the first hidden layer, the units that carry no information (dead ReLU units, or sigmoid "
    "units stuck at one output) are %(idle_a)s of %(a)s's and %(idle_b)s of %(b)s's; the median |pre-activation| "
    "goes from %(median_a)s to %(median_b)s.",
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
    # The settings a comparison can name.
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
    """Everything train, evaluate and explain wrote for one exercise, with its settings."""

    name: str
    spec: Exercise
    variant: InputVariant
    metrics: dict
    evaluation: dict
    history: dict[str, list[float]]
    summary: dict
    figures: dict[str, str]  # explain's figures as data URIs, by the keys of layout.EXERCISE_FIGURES it drew
    study: dict | None = None  # the seeds study's statistics, if the exercise is studied
    observations: list[Observation] = field(default_factory=list)
    unit_observations: list[Observation] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        """The dataset's class names, as explain wrote them."""
        return self.evaluation["class_names"]

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
    per_class = [c for c in result.evaluation["per_class"] if c["support"] > 0 and c["accuracy"] is not None]
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


def unit_observations(result: ExerciseResult, fmt: Formatter) -> list[Observation]:
    """What each hidden layer's units do on the test set: dead ReLU units, saturated or stuck sigmoid units."""
    hidden = [u for u in result.evaluation.get("units", []) if u["hidden"]]
    if not hidden:
        return [Observation(MESSAGES["no_hidden"], {})]
    samples = fmt.thousands(result.evaluation["samples"])
    found = []
    for u in hidden:
        values = {
            "layer": u["layer"],
            "units": fmt.thousands(u["units"]),
            "median": fmt.number(u["median_abs"], 2),
            "activation": u["activation"],
            "samples": samples,
        }
        if u["dead"] is not None:
            dead = round(u["dead"] * u["units"])
            values |= {
                "dead": fmt.thousands(dead),
                "share": fmt.percent(u["dead"], 1),
                "active": fmt.number(u["active_per_sample"], 1),
                "silent": fmt.percent(u["silent"], 1),
            }
            found.append(Observation(MESSAGES["relu_units" if u["silent"] else "relu_units_all_on"], values))
        elif u["stuck"] is not None:
            values |= {
                "saturated": fmt.percent(u["saturated"], 1),
                "stuck": fmt.thousands(round(u["stuck"] * u["units"])),
                "share": fmt.percent(u["stuck"], 1),
            }
            found.append(Observation(MESSAGES["sigmoid_units"], values))
        elif u["activation"] == "linear":
            found.append(Observation(MESSAGES["linear_units"], values))
        else:
            found.append(Observation(MESSAGES["other_units"], values))
    return found


def idle_share(evaluation: dict) -> tuple[float | None, float] | None:
    """(share of the first hidden layer's units that carry nothing, median |pre-activation|), or None if
    the model has no hidden layer. The share is None where the activation defines no such unit."""
    hidden = [u for u in evaluation.get("units", []) if u["hidden"]]
    if not hidden:
        return None
    first = hidden[0]
    return (first["dead"] if first["dead"] is not None else first["stuck"]), first["median_abs"]


def units_comparison(a: ExerciseResult, b: ExerciseResult, fmt: Formatter) -> Observation | None:
    """How the first hidden layer's units differ between two exercises, if they say anything."""
    first_a, first_b = idle_share(a.evaluation), idle_share(b.evaluation)
    if first_a is None or first_b is None or (first_a[0] is None and first_b[0] is None):
        return None
    return Observation(
        MESSAGES["units_comparison"],
        {
            "a": a.name,
            "b": b.name,
            "idle_a": fmt.percent(first_a[0], 1),
            "idle_b": fmt.percent(first_b[0], 1),
            "median_a": fmt.number(first_a[1], 2),
            "median_b": fmt.number(first_b[1], 2),
        },
    )


@dataclass(frozen=True)
class Comparison:
    """Two exercises that differ in one setting: what the lab's runs show, and what the study says of it."""

    single: Observation
    study: Observation | None
    units: Observation | None = None


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
            Comparison(
                single,
                study_comparison(a.name, b.name, test, a.study["n"], b.study["n"], fmt)
                if test and a.study and b.study
                else None,
                units_comparison(a, b, fmt),
            )
        )
    return found


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
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension at run time
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
    results: list[ExerciseResult],
    params: Params,
    provenance: dict[str, Any],
    study: StudyView | None = None,
    datasets: list[DatasetView] | None = None,
) -> str:
    """The HTML page for these results: observations, then one render call."""
    language = params.report.language
    env = make_environment(language)
    fmt = Formatter(language)
    translate = translator(language)
    for result in results:
        result.study = study.statistics["exercises"].get(result.name) if study else None
        result.observations = (
            class_observations(result, fmt) + curve_observations(result, fmt) + study_observations(result, fmt)
        )
        result.unit_observations = unit_observations(result, fmt)
        if study is not None and result.study:  # a studied exercise shows its curves across seeds (aggregate drew them)
            result.figures["curves"] = study.figures[result.name]
    return render(
        env,
        results=results,
        comparisons=comparisons(results, params, fmt, translate, study.statistics if study else None),
        study=study,
        data=datasets or [],
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


def figures_of(folder: Path, names: dict[str, str]) -> dict[str, str]:
    """The figures of `names` (key -> file name) that exist in `folder`, as data URIs."""
    return {key: _data_uri(folder / name) for key, name in names.items() if (folder / name).is_file()}


def load_results(params: Params, folders: dict[str, Path]) -> list[ExerciseResult]:
    """Read what train, evaluate and explain wrote (folders: metrics, evaluation, summary, history, figures)."""
    results = []
    for name, spec in params.exercises.items():
        paths = {kind: folders[kind] / f"{name}.{'csv' if kind == 'history' else 'json'}" for kind in FOLDERS}
        figures = folders["figures"] / name
        wanted = [*paths.values(), *(figures / EXERCISE_FIGURES[k] for k in EXERCISE_REQUIRED)]
        missing = [str(p) for p in wanted if not p.is_file()]
        if missing:
            raise StageError(f"{name}: missing {', '.join(missing)}; run `dvc repro` to train, evaluate and explain it")
        results.append(
            ExerciseResult(
                name=name,
                spec=spec,
                variant=params.inputs[spec.inputs],
                metrics=json.loads(paths["metrics"].read_text()),
                evaluation=json.loads(paths["evaluation"].read_text(encoding="utf-8")),
                summary=json.loads(paths["summary"].read_text()),
                history=read_history(paths["history"]),
                figures=figures_of(figures, EXERCISE_FIGURES),
            )
        )
    return results


@dataclass(frozen=True)
class DatasetView:
    """What describe wrote for one dataset: shapes before and after flattening, class counts, figures."""

    name: str
    summary: dict
    figures: dict[str, str]


def load_datasets(params: Params, folder: Path) -> list[DatasetView]:
    """describe's output for every dataset some exercise uses, in the order of `datasets` in params.yaml."""
    used = {params.inputs[e.inputs].dataset for e in params.exercises.values()}
    views = []
    for name in (n for n in params.datasets if n in used):
        summary = folder / name / DATASET_SUMMARY
        if not summary.is_file():
            raise StageError(f"{name}: missing {summary}; run `dvc repro` to describe the dataset")
        views.append(
            DatasetView(
                name, json.loads(summary.read_text(encoding="utf-8")), figures_of(folder / name, DATASET_FIGURES)
            )
        )
    return views


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
    wanted = [
        statistics_file,
        figures / RUNS_CSV,
        figures / OVERVIEW_PNG,
        *(figures / curves_png(n) for n in params.study.exercises),
    ]
    missing = [str(p) for p in wanted if not p.is_file()]
    if missing:
        raise StageError(f"seeds study: missing {', '.join(missing)}; run `dvc repro` to aggregate it")
    statistics = json.loads(statistics_file.read_text())
    absent = [n for n in params.study.exercises if n not in statistics.get("exercises", {})]
    if absent:
        raise StageError(f"{statistics_file}: no statistics for {', '.join(absent)}; run `dvc repro` to aggregate them")
    with open(figures / RUNS_CSV, newline="", encoding="utf-8") as f:
        runs = [
            {
                **row,
                "seed": int(row["seed"]),
                "lab_run": row["lab_run"] == "True",
                "test_accuracy": float(row["test_accuracy"]),
                "test_loss": float(row["test_loss"]),
            }
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
    --figures DIR --datasets DIR --study FILE.json --study-figures DIR --out FILE.html`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for kind in FOLDERS:
        parser.add_argument(f"--{kind}", type=Path, required=True, help=f"the folder of the {kind} files")
    parser.add_argument("--figures", type=Path, required=True, help="the folder of every exercise's figures (explain)")
    parser.add_argument("--datasets", type=Path, required=True, help="the folder of every dataset's figures (describe)")
    parser.add_argument("--study", type=Path, required=True, help="the seeds study's statistics (aggregate)")
    parser.add_argument("--study-figures", type=Path, required=True, help="the study's per-run table and figures")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_params()
    results = load_results(params, {kind: getattr(args, kind) for kind in (*FOLDERS, "figures")})
    study = load_study(params, args.study, args.study_figures)
    datasets = load_datasets(params, args.datasets)
    write_text(args.out, build_report(results, params, provenance(results), study, datasets))
    print(f"report: wrote {args.out} ({len(results)} exercises)", file=sys.stderr)


if __name__ == "__main__":
    main()
