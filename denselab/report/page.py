"""The report's page, built from what the stages wrote: one frozen view per part (an exercise, a dataset, the
seeds study, a claim, a factorial), the sentences `denselab.report.observations` writes from them, and the one Jinja2
environment that renders them. Pure: it reads no file but the templates; `stages/report.py` loads and writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from denselab.core.config import Exercise, InputVariant, Params
from denselab.core.i18n import Language
from denselab.report.observations import Observation, level_shown
from denselab.report.observations.claims import VERDICT_WORDS, claim_condition, untested_evidence
from denselab.report.observations.claims import evidence as claim_evidence
from denselab.report.observations.comparison import single_comparison, study_comparison, units_comparison
from denselab.report.observations.exercise import (
    class_observations,
    curve_observations,
    saturation_values,
    stalled_training,
    study_observations,
    unit_observations,
)
from denselab.study.aspects import one_change_pairs, settings
from denselab.study.claim_tests import Claim
from denselab.study.statistics import comparison_key, lab_position

TEMPLATES = Path(__file__).with_name("templates")  # the page, its partials and its style sheet


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
    saturation: Mapping[str, str]  # explain's thresholds, as the units' note states them

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
        if test is None or found["verdict"] == "not_tested":
            evidence, pairs = untested_evidence(found, lang), []
        else:
            evidence, pairs = claim_evidence(test, params, found, lang), test.compared(params)
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
                untested=claim.untested.get(lang.code) or claim.untested.en or "",
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
        saturation=saturation_values(files.evaluation["saturation"], lang),
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
    """The report's one Jinja2 environment: autoescaping, templates from `denselab/report/templates`, the language's
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
    env.globals.update(language=lang.code, verdict_words=VERDICT_WORDS)
    return env
