"""The sentences on two exercises that differ in one setting: what the lab's runs show, whether the seeds
study's runs tell them apart, and how their first hidden layers differ."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from denselab.core.i18n import N_, Language
from denselab.report.observations import SHOWN_CONFIDENCE, Observation, show_setting
from denselab.study.statistics import CONFIDENCE


def single_comparison(
    a: str,
    b: str,
    aspect: str,
    aspects_a: Mapping[str, Any],
    aspects_b: Mapping[str, Any],
    accuracy_a: float,
    accuracy_b: float,
    lang: Language,
) -> Observation:
    """What the lab's runs of two exercises that differ only in `aspect` show."""
    return Observation(
        N_(
            "%(b)s differs from %(a)s only in its %(aspect)s (%(from)s → %(to)s): test accuracy %(acc_a)s → "
            "%(acc_b)s, %(diff)s percentage points."
        ),
        {
            "a": a,
            "b": b,
            "aspect": lang.gettext(aspect),
            "from": show_setting(aspects_a[aspect], lang),
            "to": show_setting(aspects_b[aspect], lang),
            "acc_a": lang.percent(accuracy_a),
            "acc_b": lang.percent(accuracy_b),
            "diff": lang.points(accuracy_b - accuracy_a),
        },
    )


def study_comparison(a: str, b: str, test: Mapping[str, Any], n_a: int, n_b: int, lang: Language) -> Observation:
    """The Welch test of a one-setting comparison, in words: a real difference, or within noise."""
    values: dict[str, Any] = {"a": a, "b": b, "n_a": n_a, "n_b": n_b, "signed": lang.points(test["difference"])}
    values.update(SHOWN_CONFIDENCE)
    if test["p_value"] is None:
        return Observation(
            N_(
                "Over %(n_a)s runs of %(a)s and %(n_b)s of %(b)s, every run of each exercise gave the same accuracy: "
                "there is no spread to test the difference of %(signed)s points against."
            ),
            values,
        )
    values.update(
        diff=lang.points(abs(test["difference"])).lstrip("+"),
        half=lang.points((test["ci95_high"] - test["ci95_low"]) / 2).lstrip("+"),
        low=lang.points(test["ci95_low"]),
        high=lang.points(test["ci95_high"]),
        p=lang.p_value(test["p_value"]),
    )
    if test["p_value"] >= 1 - CONFIDENCE:
        message = N_(
            "Over %(n_a)s and %(n_b)s runs, %(b)s differs from %(a)s by %(signed)s points (%(confidence)s%% interval %(low)s to "
            "%(high)s; Welch's t-test p %(p)s): within run-to-run noise, so single runs cannot tell them apart."
        )
    elif test["difference"] > 0:
        message = N_(
            "Over %(n_a)s and %(n_b)s runs, %(b)s is %(diff)s ± %(half)s points above %(a)s (%(confidence)s%% interval %(low)s to "
            "%(high)s; Welch's t-test p %(p)s): a real difference, not run-to-run noise."
        )
    else:
        message = N_(
            "Over %(n_a)s and %(n_b)s runs, %(b)s is %(diff)s ± %(half)s points below %(a)s (%(confidence)s%% interval %(low)s to "
            "%(high)s; Welch's t-test p %(p)s): a real difference, not run-to-run noise."
        )
    return Observation(message, values)


def idle_share(evaluation: Mapping[str, Any]) -> tuple[float | None, float] | None:
    """(share of the first hidden layer's units that carry nothing, median |pre-activation|), or None if
    the model has no hidden layer. The share is None where the activation defines no such unit."""
    hidden = [u for u in evaluation.get("units", []) if u["hidden"]]
    if not hidden:
        return None
    first = hidden[0]
    return (first["dead"] if first["dead"] is not None else first["stuck"]), first["median_abs"]


def units_comparison(
    a: str,
    b: str,
    evaluation_a: Mapping[str, Any],
    evaluation_b: Mapping[str, Any],
    lang: Language,
    both_defined: bool = False,
) -> Observation | None:
    """How the first hidden layer's units differ between two exercises, if they say anything (with
    `both_defined`, only where both layers' activations define idle units: ReLU or sigmoid, not linear)."""
    first_a, first_b = idle_share(evaluation_a), idle_share(evaluation_b)
    if first_a is None or first_b is None or (first_a[0] is None and first_b[0] is None):
        return None
    if both_defined and (first_a[0] is None or first_b[0] is None):
        return None
    return Observation(
        N_(
            "In the first hidden layer, the units that carry no information (dead ReLU units, or sigmoid units stuck "
            "at one output) are %(idle_a)s of %(a)s's and %(idle_b)s of %(b)s's; the median |pre-activation| goes "
            "from %(median_a)s to %(median_b)s."
        ),
        {
            "a": a,
            "b": b,
            "idle_a": lang.percent(first_a[0], 1),
            "idle_b": lang.percent(first_b[0], 1),
            "median_a": lang.number(first_a[1], 2),
            "median_b": lang.number(first_b[1], 2),
        },
    )
