"""Stage `report`: the whole lab on one self-contained HTML page, rendered by Jinja2.

    python -m stages.report --metrics reports/metrics --evaluation reports/evaluation --summary reports/summary \
        --history reports/history --figures reports/figures --datasets reports/datasets \
        --study reports/study.json --study-figures reports/study --claims reports/claims.json \
        --claims-figures reports/claims --out reports/index.html

Only assembles: it reads what train, evaluate, explain, describe, aggregate and judge wrote under `reports/`
and params.yaml (fetching first, from the DVC remote, the exercises' files a student's clone lacks), and hands
them to `denselab.report.page`, which builds one frozen view of the page, with the sentences of
`denselab.report.observations`, and renders it. It never draws and never imports TensorFlow or matplotlib: every figure was drawn by the stage
that owns its data and is embedded here as a PNG data URI; CSS is inlined, so the file opens anywhere, offline.
Everything on the page comes from what dvc.yaml declares for this stage (no clock, no Git revision).
"""

from __future__ import annotations

import base64
import csv
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from denselab.core.cli import StageError, argument_parser, stage_main
from denselab.core.config import Params
from denselab.core.files import write_text
from denselab.core.history import read_history
from denselab.core.i18n import Language
from denselab.core.layout import (
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
from denselab.core.remote import pull_missing
from denselab.report.observations.claims import untested_evidence
from denselab.report.page import (
    ClaimsView,
    DatasetView,
    ExerciseFiles,
    FactorialView,
    StudyView,
    claim_views,
    comparisons,
    exercise_view,
    make_environment,
)
from denselab.study.claim_tests import load_with_claims

FOLDERS = ("metrics", "evaluation", "summary", "history")  # what train, evaluate and explain write, a file per exercise


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


def exercise_files(params: Params, folders: Mapping[str, Path]) -> dict[str, tuple[dict[str, Path], Path]]:
    """Where train, evaluate and explain wrote each exercise's files (folders: metrics, evaluation, summary,
    history, figures): by exercise, its files by kind and its figures' folder."""
    return {
        name: ({kind: folders[kind] / exercise_file(kind, name) for kind in FOLDERS}, folders["figures"] / name)
        for name in params.exercises
    }


def required(files: dict[str, tuple[dict[str, Path], Path]]) -> list[Path]:
    """Every file the page needs of the exercises: their results and the figures explain always draws."""
    return [
        path
        for paths, figures in files.values()
        for path in [*paths.values(), *(figures / EXERCISE_FIGURES[k] for k in EXERCISE_REQUIRED)]
    ]


def load_results(files: dict[str, tuple[dict[str, Path], Path]]) -> list[ExerciseFiles]:
    """Read what train, evaluate and explain wrote for each exercise (`exercise_files`)."""
    results = []
    for name, (paths, figures) in files.items():
        missing = [str(p) for p in required({name: (paths, figures)}) if not p.is_file()]
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
    params = load_with_claims()
    files = exercise_files(params, {kind: getattr(args, kind) for kind in (*FOLDERS, "figures")})
    # A student's clone lacks the training summaries (they travel with the models, which a student does not
    # fetch): those missing come from the DVC remote first (denselab.core.remote), a few kB.
    pull_missing(required(files), "the exercises' results")
    results = load_results(files)
    study = load_study(params, args.study, args.study_figures)
    datasets = load_datasets(params, args.datasets)
    claims = load_claims(params, args.claims, args.claims_figures)
    write_text(args.out, report(results, params, study, datasets, claims))
    print(f"report: wrote {args.out} ({len(results)} exercises)", file=sys.stderr)


if __name__ == "__main__":
    main()
