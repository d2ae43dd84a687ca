"""Stage `report`: the whole lab on one self-contained HTML page, rendered by Jinja2.

    python -m stages.report --metrics reports/metrics --evaluation reports/evaluation --summary reports/summary \
        --history reports/history --figures reports/figures --datasets reports/datasets \
        --study reports/study.json --study-figures reports/study --claims reports/claims.json \
        --claims-figures reports/claims --out reports/index.html

Only assembles: it reads what train, evaluate, explain, describe, aggregate and judge wrote under `reports/`
and params.yaml, asks `denselab.observations` for the sentences, builds one frozen view of the page and
renders it. It never draws and never imports TensorFlow or matplotlib: every figure was drawn by the stage
that owns its data and is embedded here as a PNG data URI; CSS is inlined, so the file opens anywhere, offline.
Everything on the page comes from what dvc.yaml declares for this stage (no clock, no Git revision).
"""

from __future__ import annotations

import base64
import csv
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from denselab.cli import StageError, argument_parser, stage_main
from denselab.config import (
    Claim,
    Exercise,
    FactorTest,
    InputVariant,
    PairTest,
    Params,
    PlateauTest,
    load_params,
    one_change_pairs,
    settings,
)
from denselab.files import write_text
from denselab.history import read_history
from denselab.i18n import TEMPLATES, Language
from denselab.layout import (
    DATASET_FIGURES,
    DATASET_SUMMARY,
    EXERCISE_FIGURES,
    EXERCISE_REQUIRED,
    OVERVIEW_PNG,
    RUNS_CSV,
    curves_png,
    exercise_file,
    factorial_png,
)
from denselab.observations import (
    ASPECTS,
    VERDICT_WORDS,
    Observation,
    claim_condition,
    class_observations,
    curve_observations,
    factor_evidence,
    level_shown,
    pair_evidence,
    plateau_evidence,
    single_comparison,
    stalled_training,
    study_comparison,
    study_observations,
    unit_observations,
    units_comparison,
    untested_evidence,
)
from denselab.remote import pull_missing
from denselab.statistics import comparison_key, lab_position

FOLDERS = ("metrics", "evaluation", "summary", "history")  # what train, evaluate and explain write, a file per exercise


@dataclass(frozen=True)
class ExerciseFiles:
    """What train, evaluate and explain wrote for one exercise."""

    name: str
    metrics: Mapping[str, Any]
    evaluation: Mapping[str, Any]
    summary: Mapping[str, Any]
    history: Mapping[str, list[float]]
    figures: Mapping[str, str]  # explain's figures as data URIs, by the keys of layout.EXERCISE_FIGURES it drew


@dataclass(frozen=True)
class DatasetView:
    """What describe wrote for one dataset: shapes before and after flattening, class counts, figures."""

    name: str
    summary: Mapping[str, Any]
    figures: Mapping[str, str]


@dataclass(frozen=True)
class StudyView:
    """What aggregate wrote for the seeds study, ready for the page."""

    statistics: Mapping[str, Any]  # reports/study.json: per exercise and per comparison
    runs: tuple[Mapping[str, Any], ...]  # one row per run: exercise, seed, lab_run, test_accuracy, test_loss
    seeds: tuple[int, ...]  # every run's seed, the lab's first
    figures: Mapping[str, str]  # "overview" and each studied exercise's curves, as data URIs

    def accuracy(self, exercise: str, seed: int) -> float:
        """One run's test accuracy."""
        return next(r["test_accuracy"] for r in self.runs if r["exercise"] == exercise and r["seed"] == seed)

    def position(self, exercise: str) -> str:
        """Where the lab's number falls: inside, above or below our runs' range."""
        return lab_position(self.statistics["exercises"][exercise])


@dataclass(frozen=True)
class ExerciseView(ExerciseFiles):
    """One exercise on the page: what the stages wrote (its figures with the study's curves where studied), its
    settings, and the observations written from them."""

    spec: Exercise
    variant: InputVariant
    study: Mapping[str, Any] | None  # the seeds study's statistics, if the exercise is studied
    observations: tuple[Observation, ...]
    unit_observations: tuple[Observation, ...]

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
class Comparison:
    """Two exercises that differ in one setting: what the lab's runs show, and what the study says of it."""

    single: Observation
    study: Observation | None
    units: Observation | None = None


@dataclass(frozen=True)
class ClaimView:
    """One claim on the page: its words, its verdict, the numbers behind it and, where the diagnostics show one,
    the mechanism (each with the exercise it is about)."""

    name: str
    claim: Claim
    verdict: str
    condition: Observation | None  # where a claim supported only under a condition holds
    evidence: tuple[Observation, ...]
    mechanism: tuple[tuple[str, Observation], ...]
    untested: str  # the claim's own reason, where it has no test


@dataclass(frozen=True)
class FactorialView:
    """One factorial on the page: its aspects and values, each cell's runs described, its interaction plot."""

    name: str
    found: Mapping[str, Any]  # judge's entry: rows, columns, row_levels, column_levels, cells, effects, missing
    figure: str | None
    untested: tuple[Observation, ...]  # why it was not tested (the study lacks a cell, an edit confounds it)


@dataclass(frozen=True)
class ClaimsView:
    """What judge wrote: every claim's verdict, every factorial, and how many tests the adjustment counted."""

    found: Mapping[str, Any]
    figures: Mapping[str, str]  # factorial name -> interaction plot (data URI)


def claim_views(claims: ClaimsView, params: Params, views: list[ExerciseView], lang: Language) -> list[ClaimView]:
    """Every claim of params.yaml, in its order, with its verdict and the sentences that give its reasons."""
    by_name = {v.name: v for v in views}
    found_views = []
    for name, claim in params.claims.items():
        found = claims.found["claims"][name]
        test = claim.test
        evidence: list[Observation] = []
        pairs: list[tuple[str, str]] = []
        if found["verdict"] == "not_tested":
            evidence = untested_evidence(found, lang)
        elif isinstance(test, FactorTest):
            evidence = factor_evidence(found, test.aspect, lang)
            cells = params.factorials[test.factorial].cells
            pairs = (
                [(cells[0][c], cells[1][c]) for c in (0, 1)]
                if test.aspect == params.factorials[test.factorial].rows
                else [(cells[r][0], cells[r][1]) for r in (0, 1)]
            )
        elif isinstance(test, PairTest):
            evidence = pair_evidence(test.better, test.than, test.aspects, found, lang)
            pairs = [(test.than, test.better)]
        elif isinstance(test, PlateauTest):
            evidence = plateau_evidence(test.exercise, test.metric, test.from_epoch, found, lang)
        mechanism: list[tuple[str, Observation]] = []
        for a, b in pairs:
            units = units_comparison(a, b, by_name[a].evaluation, by_name[b].evaluation, lang, both_defined=True)
            if units:
                mechanism.append(("", units))
        involved = dict.fromkeys(e for pair in pairs for e in pair)
        mechanism += [(e, o) for e in involved for o in stalled_training(by_name[e].history, lang)]
        found_views.append(
            ClaimView(
                name=name,
                claim=claim,
                verdict=found["verdict"],
                condition=claim_condition(found, lang),
                evidence=tuple(evidence),
                mechanism=tuple(mechanism),
                untested=claim.untested.get(lang.code) or claim.untested.get("en", ""),
            )
        )
    return found_views


def exercise_view(files: ExerciseFiles, params: Params, study: StudyView | None, lang: Language) -> ExerciseView:
    """The view of one exercise: its files, its settings, and every observation written from them."""
    spec = params.exercises[files.name]
    statistics = study.statistics["exercises"].get(files.name) if study else None
    figures = dict(files.figures)
    if study is not None and statistics:  # a studied exercise shows its curves across seeds (aggregate drew them)
        figures["curves"] = study.figures[files.name]
    return ExerciseView(
        **{**vars(files), "figures": figures},
        spec=spec,
        variant=params.inputs[spec.inputs],
        study=statistics,
        observations=(
            *class_observations(files.evaluation, lang),
            *curve_observations(files.history, lang),
            *study_observations(statistics, lang),
        ),
        unit_observations=tuple(unit_observations(files.evaluation, lang)),
    )


def comparisons(
    views: list[ExerciseView], params: Params, lang: Language, study: StudyView | None = None
) -> list[Comparison]:
    """For each pair of exercises that differ in exactly one setting, what that change did (and, when both
    are in the seeds study, whether the difference is larger than run-to-run noise)."""
    by_name = {v.name: v for v in views}
    found = []
    for name_a, name_b, aspect in one_change_pairs(params, list(by_name)):
        a, b = by_name[name_a], by_name[name_b]
        single = single_comparison(
            a.name,
            b.name,
            aspect,
            settings(a.spec, a.variant),
            settings(b.spec, b.variant),
            a.metrics["test_accuracy"],
            b.metrics["test_accuracy"],
            lang,
        )
        test = study.statistics.get("comparisons", {}).get(comparison_key(a.name, b.name)) if study else None
        verdict = (
            study_comparison(a.name, b.name, test, a.study["n"], b.study["n"], lang)
            if test and a.study and b.study
            else None
        )
        found.append(Comparison(single, verdict, units_comparison(a.name, b.name, a.evaluation, b.evaluation, lang)))
    return found


def make_environment(lang: Language) -> jinja2.Environment:
    """The report's one Jinja2 environment: autoescaping, templates from `denselab/templates`, the language's
    gettext catalog (Jinja2's i18n extension) and number filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(lang.translations, newstyle=True)  # type: ignore[attr-defined]  # i18n extension
    env.filters.update(
        percent=lang.percent,
        thousands=lang.thousands,
        number=lang.number,
        decimal=lang.decimal,
        points=lang.points,
        p_value=lang.p_value,
    )
    env.filters.update(level=lambda text: level_shown(text, lang))
    env.globals.update(language=lang.code, verdict_words=VERDICT_WORDS, aspect_words=ASPECTS)
    return env


def report(
    results: list[ExerciseFiles],
    params: Params,
    study: StudyView | None = None,
    datasets: list[DatasetView] | None = None,
    claims: ClaimsView | None = None,
) -> str:
    """The HTML page for these results: the views, built once, then one render call."""
    lang = Language(params.report.language)
    views = [exercise_view(files, params, study, lang) for files in results]
    factorials = (
        [
            FactorialView(name, found, claims.figures.get(name), tuple(untested_evidence(found, lang)))
            for name, found in ((n, claims.found["factorials"][n]) for n in params.factorials)
        ]
        if claims
        else []
    )
    provenance = {"versions": results[0].summary.get("versions", {}) if results else {}}
    return (
        make_environment(lang)
        .get_template("report.html.j2")
        .render(
            results=views,
            comparisons=comparisons(views, params, lang, study),
            study=study,
            claims=claim_views(claims, params, views, lang) if claims else [],
            claims_tests=claims.found["tests"] if claims else 0,
            factorials=factorials,
            data=datasets or [],
            datasets=params.datasets,
            provenance=provenance,
        )
    )


# ---------------------------------------------------------------------------------------------
# I/O


def figures_of(folder: Path, names: dict[str, str]) -> dict[str, str]:
    """The figures of `names` (key -> file name) that exist in `folder`, as data URIs."""
    return {key: _data_uri(folder / name) for key, name in names.items() if (folder / name).is_file()}


def load_results(params: Params, folders: Mapping[str, Path]) -> list[ExerciseFiles]:
    """Read what train, evaluate and explain wrote (folders: metrics, evaluation, summary, history, figures)."""
    wanted = {}
    for name in params.exercises:
        paths = {kind: folders[kind] / exercise_file(kind, name) for kind in FOLDERS}
        figures = folders["figures"] / name
        wanted[name] = (paths, figures, [*paths.values(), *(figures / EXERCISE_FIGURES[k] for k in EXERCISE_REQUIRED)])
    # A student's clone lacks the training summaries (they travel with the models): fetched, if missing, at once.
    pull_missing([path for *_, files in wanted.values() for path in files], "the exercises' results")
    results = []
    for name, (paths, figures, files) in wanted.items():
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise StageError(f"{name}: missing {', '.join(missing)}; run `dvc repro` to train, evaluate and explain it")
        results.append(
            ExerciseFiles(
                name=name,
                metrics=json.loads(paths["metrics"].read_text()),
                evaluation=json.loads(paths["evaluation"].read_text(encoding="utf-8")),
                summary=json.loads(paths["summary"].read_text()),
                history=read_history(paths["history"]),
                figures=figures_of(figures, EXERCISE_FIGURES),
            )
        )
    return results


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
        runs=tuple(runs),
        seeds=params.study.all_seeds(params.seed),
        figures={"overview": _data_uri(figures / OVERVIEW_PNG)}
        | {name: _data_uri(figures / curves_png(name)) for name in params.study.exercises},
    )


def load_claims(params: Params, claims_file: Path, figures: Path) -> ClaimsView:
    """Read judge's results and interaction plots; every claim and factorial of params.yaml must be there."""
    if not claims_file.is_file():
        raise StageError(f"claims: missing {claims_file}; run `dvc repro` to judge them")
    found = json.loads(claims_file.read_text())
    absent = [n for n in params.claims if n not in found.get("claims", {})] + [
        n for n in params.factorials if n not in found.get("factorials", {})
    ]
    if absent:
        raise StageError(f"{claims_file}: nothing for {', '.join(absent)}; run `dvc repro` to judge them")
    drawn = {}
    for name, factorial in found["factorials"].items():
        if "cells" in factorial:
            path = figures / factorial_png(name)
            if not path.is_file():
                raise StageError(f"claims: missing {path}; run `dvc repro` to judge them")
            drawn[name] = _data_uri(path)
    return ClaimsView(found=found, figures=drawn)


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.report --metrics DIR --evaluation DIR --summary DIR --history DIR
    --figures DIR --datasets DIR --study FILE.json --study-figures DIR --claims FILE.json --claims-figures DIR
    --out FILE.html`."""
    parser = argument_parser(__spec__, __doc__)
    for kind in FOLDERS:
        parser.add_argument(f"--{kind}", type=Path, required=True, help=f"the folder of the {kind} files")
    parser.add_argument("--figures", type=Path, required=True, help="the folder of every exercise's figures (explain)")
    parser.add_argument("--datasets", type=Path, required=True, help="the folder of every dataset's figures (describe)")
    parser.add_argument("--study", type=Path, required=True, help="the seeds study's statistics (aggregate)")
    parser.add_argument("--study-figures", type=Path, required=True, help="the study's per-run table and figures")
    parser.add_argument("--claims", type=Path, required=True, help="the claims' verdicts (judge)")
    parser.add_argument("--claims-figures", type=Path, required=True, help="the factorials' interaction plots")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_params()
    results = load_results(params, {kind: getattr(args, kind) for kind in (*FOLDERS, "figures")})
    study = load_study(params, args.study, args.study_figures)
    datasets = load_datasets(params, args.datasets)
    claims = load_claims(params, args.claims, args.claims_figures)
    write_text(args.out, report(results, params, study, datasets, claims))
    print(f"report: wrote {args.out} ({len(results)} exercises)", file=sys.stderr)


if __name__ == "__main__":
    main()
