"""The report's observations: sentences written from the data, each a pure function of what the stages wrote.

An observation is an English message (its gettext id, marked with `N_` where it is written) and its values,
already formatted in the page's language; the template translates the message and fills it in. Nothing here
reads a file or renders: `stages/report.py` loads, `denselab/page.py` calls these and renders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from denselab.claim_tests import ClaimTest, FactorTest, PairTest, PlateauTest
from denselab.config import Params
from denselab.i18n import N_, Language
from denselab.records import Saturation
from denselab.statistics import CONFIDENCE, lab_position

# A validation curve whose best value moved by less than this over the last epochs has flattened.
PLATEAU_ACCURACY = 0.005
PLATEAU_LOSS_REL = 0.02


@dataclass(frozen=True)
class Observation:
    """One sentence of the report: an English message id and its already formatted values."""

    message: str
    values: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# One exercise


def class_observations(evaluation: Mapping[str, Any], lang: Language) -> list[Observation]:
    """Best and worst class, and the most frequent confusion (explain's `pair`), from explain's evaluation."""
    per_class = [c for c in evaluation["per_class"] if c["support"] > 0 and c["accuracy"] is not None]
    if not per_class:
        return []
    names = evaluation["class_names"]
    best = max(per_class, key=lambda c: (c["accuracy"], -c["class"]))
    worst = min(per_class, key=lambda c: (c["accuracy"], c["class"]))

    def described(c: Mapping[str, Any]) -> dict[str, str]:
        return {
            "cls": names[c["class"]],
            "correct": lang.thousands(c["correct"]),
            "support": lang.thousands(c["support"]),
            "accuracy": lang.percent(c["accuracy"]),
            "wrong": lang.thousands(c["support"] - c["correct"]),
        }

    found = [
        Observation(N_("Best class: %(cls)s, with %(correct)s of %(support)s right (%(accuracy)s)."), described(best)),
        Observation(
            N_(
                "Worst class: %(cls)s, with %(correct)s of %(support)s right (%(accuracy)s); %(wrong)s are misclassified."
            ),
            described(worst),
        ),
    ]
    pair = evaluation.get("pair")
    if pair:
        found.append(
            Observation(
                N_(
                    "The most frequent confusion: class %(actual)s is taken for %(predicted)s in %(count)s of %(support)s cases."
                ),
                {
                    "actual": names[pair["actual"]],
                    "predicted": names[pair["predicted"]],
                    "count": lang.thousands(pair["count"]),
                    "support": lang.thousands(sum(evaluation["confusion_matrix"][pair["actual"]])),
                },
            )
        )
    return found


# How a validation curve behaves against its training curve, per metric.
CURVE_MESSAGES = {
    ("accuracy", "overfit"): N_(
        "Validation accuracy levels off from epoch %(epoch)s (%(val)s) while training accuracy keeps rising "
        "(%(start)s → %(end)s by epoch %(epochs)s): more epochs would mostly fit the training set."
    ),
    ("loss", "overfit"): N_(
        "Validation loss levels off from epoch %(epoch)s (%(val)s) while training loss keeps falling "
        "(%(start)s → %(end)s by epoch %(epochs)s)."
    ),
    ("accuracy", "worse"): N_(
        "Validation accuracy was best at epoch %(epoch)s (%(val)s) and fell to %(last)s by epoch %(epochs)s while "
        "training accuracy kept rising (%(start)s → %(end)s): the network overfits."
    ),
    ("loss", "worse"): N_(
        "Validation loss was lowest at epoch %(epoch)s (%(val)s) and rose to %(last)s by epoch %(epochs)s while "
        "training loss kept falling (%(start)s → %(end)s): the network overfits."
    ),
    ("accuracy", "unstable"): N_(
        "Accuracy got worse after epoch %(epoch)s on both sets (validation %(val)s → %(last)s, training %(start)s → "
        "%(end)s): training is unstable; a lower learning rate may help."
    ),
    ("loss", "unstable"): N_(
        "Loss got worse after epoch %(epoch)s on both sets (validation %(val)s → %(last)s, training %(start)s → "
        "%(end)s): training is unstable; a lower learning rate may help."
    ),
    ("accuracy", "flat"): N_("Both accuracy curves are flat from epoch %(epoch)s: training has converged or stalled."),
    ("loss", "flat"): N_("Both loss curves are flat from epoch %(epoch)s: training has converged or stalled."),
    ("accuracy", "improving"): N_(
        "Validation accuracy is still improving at the last epoch (%(epochs)s): more epochs may help."
    ),
    ("loss", "improving"): N_("Validation loss is still falling at the last epoch (%(epochs)s): more epochs may help."),
}


def _plateau_epoch(values: Sequence[float], higher_is_better: bool, tolerance: Callable[[float], float]) -> int:
    """The first epoch (1-based) after which the curve never improves by more than the tolerance."""
    sign = 1.0 if higher_is_better else -1.0
    for i, v in enumerate(values):
        best_later = max(sign * w for w in values[i:])
        if best_later - sign * v <= tolerance(v):
            return i + 1
    return len(values)


# Curves flat from this epoch or earlier never learned: training stalled (later, they have converged).
STALLED_BY_EPOCH = 2


def stalled_training(history: Mapping[str, Sequence[float]], lang: Language) -> list[Observation]:
    """The accuracy curves' observation where training stalled (flat on both sets from the first epochs) or
    collapsed after an early peak (worse on both): a mechanism a verdict can cite. Empty otherwise."""
    return [
        o
        for o in curve_observations(history, lang)
        if o.message == CURVE_MESSAGES["accuracy", "unstable"]
        or (o.message == CURVE_MESSAGES["accuracy", "flat"] and o.values["epoch"] <= STALLED_BY_EPOCH)
    ]


def curve_observations(history: Mapping[str, Sequence[float]], lang: Language) -> list[Observation]:
    """How the validation curves behave against the training curves: worsening, flat or improving."""
    n = len(history.get("loss", []))
    if n < 3:
        return []
    found = []
    for metric, higher, tol in (
        ("accuracy", True, lambda v: PLATEAU_ACCURACY),
        ("loss", False, lambda v: abs(v) * PLATEAU_LOSS_REL),
    ):
        sign = 1.0 if higher else -1.0
        train, val = history[metric], history[f"val_{metric}"]
        best = max(range(n), key=lambda i: (sign * val[i], -i))
        # Worse at the end than at its best, for at least two epochs: not a one-epoch blip.
        worsened = best <= n - 3 and sign * (val[best] - val[-1]) > tol(val[best])
        epoch = best + 1 if worsened else _plateau_epoch(val, higher, tol)
        train_gain = sign * (train[-1] - train[epoch - 1])
        values = {
            "epoch": epoch,
            "epochs": n,
            "start": lang.number(train[epoch - 1], 4),
            "end": lang.number(train[-1], 4),
            "val": lang.number(val[epoch - 1], 4),
            "last": lang.number(val[-1], 4),
        }
        training_improves = train_gain > tol(train[epoch - 1])
        if worsened:
            outcome = "worse" if training_improves else "unstable"
        elif epoch < n:
            outcome = "overfit" if training_improves else "flat"
        else:
            outcome = "improving"
        found.append(Observation(CURVE_MESSAGES[metric, outcome], values))
    return found


def saturation_values(saturation: Saturation, lang: Language) -> dict[str, str]:
    """explain's thresholds of saturation, as the page's sentences write them."""
    return {
        "below": lang.number(saturation["below"], 2),
        "above": lang.number(saturation["above"], 2),
        "at_least": lang.percent(saturation["share"], 0),
    }


def unit_observations(evaluation: Mapping[str, Any], lang: Language) -> list[Observation]:
    """What each hidden layer's units do on the test set: dead ReLU units, saturated or stuck sigmoid units."""
    hidden = [u for u in evaluation.get("units", []) if u["hidden"]]
    if not hidden:
        return [Observation(N_("The model has no hidden layer: the hidden-unit diagnostics do not apply."))]
    samples = lang.thousands(evaluation["samples"])
    found = []
    for u in hidden:
        values = {
            "layer": u["layer"],
            "units": lang.thousands(u["units"]),
            "median": lang.number(u["median_abs"], 2),
            "activation": u["activation"],
            "samples": samples,
        }
        if u["dead"] is not None:
            values |= {
                "dead": lang.thousands(round(u["dead"] * u["units"])),
                "share": lang.percent(u["dead"], 1),
                "active": lang.number(u["active_per_sample"], 1),
                "silent": lang.percent(u["silent"], 1),
            }
            message = (
                N_(
                    "Layer %(layer)s: %(dead)s of its %(units)s ReLU units (%(share)s) never switch on for any of the "
                    "%(samples)s test images: they are dead, pass nothing on and no longer learn. An average image "
                    "switches on %(active)s units, and %(silent)s of the images switch on none at all; the median "
                    "|pre-activation| is %(median)s."
                )
                if u["silent"]
                else N_(
                    "Layer %(layer)s: %(dead)s of its %(units)s ReLU units (%(share)s) never switch on for any of the "
                    "%(samples)s test images: they are dead, pass nothing on and no longer learn. An average image "
                    "switches on %(active)s units, and every image switches on at least one; the median "
                    "|pre-activation| is %(median)s."
                )
            )
            found.append(Observation(message, values))
        elif u["stuck"] is not None:
            values |= saturation_values(evaluation["saturation"], lang) | {
                "saturated": lang.percent(u["saturated"], 1),
                "stuck": lang.thousands(round(u["stuck"] * u["units"])),
                "share": lang.percent(u["stuck"], 1),
            }
            message = N_(
                "Layer %(layer)s: %(saturated)s of its %(units)s sigmoid units are saturated (output below %(below)s or "
                "above %(above)s) on at least %(at_least)s of the test images, so they act as on/off switches with almost no "
                "gradient; %(stuck)s (%(share)s) give the same output for every image and carry no information. The "
                "median |pre-activation| is %(median)s."
            )
            found.append(Observation(message, values))
        elif u["activation"] == "linear":
            message = N_(
                "Layer %(layer)s has no activation: it only scales and mixes its inputs, and the layers together "
                "amount to one linear map (median |pre-activation| %(median)s)."
            )
            found.append(Observation(message, values))
        else:
            found.append(
                Observation(N_("Layer %(layer)s (%(activation)s): the median |pre-activation| is %(median)s."), values)
            )
    return found


def study_observations(statistics: Mapping[str, Any] | None, lang: Language) -> list[Observation]:
    """Where the lab's reported accuracy falls among our runs of an exercise (aggregate's statistics)."""
    s = statistics
    if not s or s.get("lab") is None:
        return []
    values = {
        "lab": lang.percent(s["lab"]),
        "n": s["n"],
        "min": lang.percent(s["min"]),
        "max": lang.percent(s["max"]),
        "mean": lang.percent(s["mean"]),
        "sd": lang.percent(s["sd"]),
        "sds": "–" if s["lab_sds"] is None else lang.number(abs(s["lab_sds"]), 1),
    }
    messages = {
        "inside": N_(
            "The lab's %(lab)s lies inside the range of our %(n)s runs (%(min)s to %(max)s), %(sds)s standard "
            "deviations from our mean of %(mean)s ± %(sd)s."
        ),
        "above": N_(
            "The lab's %(lab)s lies above the range of our %(n)s runs (%(min)s to %(max)s), %(sds)s standard "
            "deviations above our mean of %(mean)s ± %(sd)s: our runs do not reach it."
        ),
        "below": N_(
            "The lab's %(lab)s lies below the range of our %(n)s runs (%(min)s to %(max)s), %(sds)s standard "
            "deviations below our mean of %(mean)s ± %(sd)s: our runs do better."
        ),
    }
    return [Observation(messages[lab_position(s)], values)]


# ---------------------------------------------------------------------------------------------
# Two exercises that differ in one setting

# The level of every interval the page gives (statistics.CONFIDENCE), as its messages write it: "95".
SHOWN_CONFIDENCE = {"confidence": f"{CONFIDENCE * 100:g}"}

# The words `aspects.settings` writes into a setting's value (an input scaling, a missing activation).
SETTING_WORDS = {"raw": N_("raw"), "none": N_("none")}


def _show(value: Any, lang: Language) -> str:
    """A setting's value as the page writes it: words translated, numbers in the language's digits."""
    if isinstance(value, tuple):
        return ", ".join(_show(item, lang) for item in value)
    if isinstance(value, float):
        return lang.decimal(value)
    if isinstance(value, int):
        return lang.thousands(value)
    return lang.gettext(SETTING_WORDS[value]) if value in SETTING_WORDS else str(value)


def level_shown(text: str, lang: Language) -> str:
    """An aspect's value as `aspects.level_text` wrote it (`raw`, `none`, `relu, relu`), as the page shows it."""
    return ", ".join(lang.gettext(SETTING_WORDS[w]) if w in SETTING_WORDS else w for w in text.split(", "))


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
            "from": _show(aspects_a[aspect], lang),
            "to": _show(aspects_b[aspect], lang),
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


# ---------------------------------------------------------------------------------------------
# The lab's conclusions on trial (judge's results, `denselab.claims`)

VERDICT_WORDS = {
    "supported": N_("Supported"),
    "conditional": N_("Supported only under a condition"),
    "not_supported": N_("Not supported"),
    "contradicted": N_("Contradicted"),
    "not_tested": N_("Not tested"),
}


def _interval(test: Mapping[str, Any], lang: Language) -> dict[str, str]:
    """A test's difference (points), its interval and its adjusted p, as the page writes them."""
    return {
        **SHOWN_CONFIDENCE,
        "diff": lang.points(test["difference"]),
        "low": lang.points(test.get("ci95_low")),
        "high": lang.points(test.get("ci95_high")),
        "p": lang.p_value(test.get("p_adjusted")),
    }


def factor_evidence(found: Mapping[str, Any], aspect: str, lang: Language) -> list[Observation]:
    """A factorial claim's numbers: the effect over both values of the other aspect, at each of them, the
    interaction, and what they add up to (the verdict's reason)."""
    words = {
        "aspect": lang.gettext(aspect),
        "other": lang.gettext(found["other_aspect"]),
        "better": level_shown(found["better"], lang),
        "worse": level_shown(found["worse"], lang),
    }
    found_at = [{**words, "at": level_shown(s["at"], lang), **_interval(s, lang)} for s in found["simple"]]
    lines = [
        Observation(
            N_(
                "Averaged over both values of the %(other)s, %(better)s instead of %(worse)s (%(aspect)s) changes "
                "test accuracy by %(diff)s points (%(confidence)s%% interval %(low)s to %(high)s; adjusted p %(p)s)."
            ),
            {**words, **_interval(found["effect"], lang)},
        ),
        *(
            Observation(
                N_(
                    "With %(other)s %(at)s: %(diff)s points (%(confidence)s%% interval %(low)s to %(high)s; adjusted p %(p)s)."
                ),
                values,
            )
            for values in found_at
        ),
        Observation(
            N_(
                "Interaction (how much the effect changes with the %(other)s): %(diff)s points (%(confidence)s%% interval "
                "%(low)s to %(high)s; adjusted p %(p)s)."
            ),
            {**words, **_interval(found["interaction"], lang)},
        ),
    ]
    verdict = found["verdict"]
    if verdict == "supported":
        reason = N_("%(better)s does better than %(worse)s, whatever the %(other)s.")
    elif verdict == "conditional":
        reason = N_("%(better)s does better than %(worse)s only with %(other)s %(at)s.")
        words["at"] = ", ".join(level_shown(v, lang) for v in found["holds_at"])
    elif verdict == "contradicted":
        reason = N_("%(worse)s does better than %(better)s: the opposite of the claim.")
    else:
        reason = N_("No difference between %(better)s and %(worse)s stands out from run-to-run noise.")
    return [*lines, Observation(reason, words)]


def claim_condition(found: Mapping[str, Any], lang: Language) -> Observation | None:
    """Where a claim supported only under a condition holds: the other aspect's value(s), for the verdict."""
    if found.get("verdict") != "conditional":
        return None
    return Observation(
        N_("only with %(other)s %(at)s"),
        {
            "other": lang.gettext(found["other_aspect"]),
            "at": ", ".join(level_shown(v, lang) for v in found["holds_at"]),
        },
    )


def pair_evidence(
    better: str, than: str, aspects: Sequence[str], found: Mapping[str, Any], lang: Language
) -> list[Observation]:
    """A pair claim's numbers: the difference of the two exercises' runs, and what the exercises differ in."""
    test = found["test"]
    values = {
        "better": better,
        "than": than,
        "aspects": ", ".join(lang.gettext(a) for a in aspects),
        "n_a": found["runs"][than],
        "n_b": found["runs"][better],
        **_interval(test, lang),
    }
    if test.get("p_value") is None:
        return [
            Observation(
                N_("Every run of %(than)s and of %(better)s gave the same accuracy: no spread to test against."),
                values,
            )
        ]
    return [
        Observation(
            N_(
                "%(better)s minus %(than)s (they differ only in: %(aspects)s), over %(n_b)s and %(n_a)s runs: "
                "%(diff)s points (%(confidence)s%% interval %(low)s to %(high)s; adjusted p %(p)s)."
            ),
            values,
        )
    ]


def plateau_evidence(
    exercise: str, metric: str, from_epoch: int, found: Mapping[str, Any], lang: Language
) -> list[Observation]:
    """A plateau claim's numbers: how much the validation curve still gained after the epoch, against the margin."""
    test = found["test"]
    show = lang.points if metric == "val_accuracy" else (lambda v: "–" if v is None else lang.number(v, 4))
    values = {
        "exercise": exercise,
        "epoch": from_epoch,
        "n": test["n"],
        "gain": show(test["gain"]),
        "low": show(test.get("ci95_low")),
        "high": show(test.get("ci95_high")),
        "margin": show(test["margin"]),
        "p": lang.p_value(test.get("p_adjusted")),
        **SHOWN_CONFIDENCE,
    }
    message = (
        N_(
            "Over %(n)s runs of %(exercise)s, validation accuracy gained %(gain)s points from epoch %(epoch)s to the "
            "last (%(confidence)s%% interval %(low)s to %(high)s), against a margin of %(margin)s (adjusted p %(p)s)."
        )
        if metric == "val_accuracy"
        else N_(
            "Over %(n)s runs of %(exercise)s, validation loss fell by %(gain)s from epoch %(epoch)s to the last "
            "(%(confidence)s%% interval %(low)s to %(high)s), against a margin of %(margin)s (adjusted p %(p)s)."
        )
    )
    return [Observation(message, values)]


def untested_evidence(found: Mapping[str, Any], lang: Language) -> list[Observation]:
    """Why a claim with a test was not tested (judge's entry): the exercises the study does not run, the exercises
    of its comparison that an edit made differ in more (or less) than the claim names, or a curve too short."""
    if found.get("missing") and found.get("profile"):
        return [
            Observation(
                N_(
                    "Not tested yet: the seeds study does not run %(missing)s, which the profile %(profile)s adds. "
                    "Run `python -m denselab.profile %(profile)s`, then `dvc repro` (or the study's runs on a Slurm "
                    "cluster: `python -m denselab.slurm`)."
                ),
                {"missing": ", ".join(found["missing"]), "profile": found["profile"]},
            )
        ]
    if found.get("missing"):
        return [
            Observation(
                N_(
                    "Not testable here: the seeds study does not run %(missing)s. Add it to study.exercises in "
                    "params.yaml and run `dvc repro`."
                ),
                {"missing": ", ".join(found["missing"])},
            )
        ]
    said = []
    for confound in found.get("confounds", ()):
        names = {"a": confound["a"], "b": confound["b"]}
        if confound["extra"]:
            extra = ", ".join(lang.gettext(a) for a in confound["extra"])
            said.append(
                Observation(
                    N_(
                        "Not tested: %(a)s and %(b)s now differ in %(aspects)s as well, so the comparison no longer "
                        "isolates what the claim names. Set them back in params.yaml to test it."
                    ),
                    {**names, "aspects": extra},
                )
            )
        if confound["lacking"]:
            lacking = ", ".join(lang.gettext(a) for a in confound["lacking"])
            said.append(
                Observation(
                    N_("Not tested: %(a)s and %(b)s no longer differ in %(aspects)s, which the claim is about."),
                    {**names, "aspects": lacking},
                )
            )
    if "too_short" in found:
        short = found["too_short"]
        said.append(
            Observation(
                N_(
                    "Not tested: %(exercise)s's curve now ends at epoch %(epochs)s, and the claim reads it after "
                    "epoch %(from_epoch)s."
                ),
                {k: str(v) for k, v in short.items()},
            )
        )
    return said


def _factor(test: FactorTest, params: Params, found: Mapping[str, Any], lang: Language) -> list[Observation]:
    return factor_evidence(found, test.aspect, lang)


def _pair(test: PairTest, params: Params, found: Mapping[str, Any], lang: Language) -> list[Observation]:
    return pair_evidence(test.better, test.than, test.aspects, found, lang)


def _plateau(test: PlateauTest, params: Params, found: Mapping[str, Any], lang: Language) -> list[Observation]:
    return plateau_evidence(test.exercise, test.metric, test.from_epoch, found, lang)


Evidence = Callable[[Any, Params, Mapping[str, Any], Language], list[Observation]]
# The sentences of each kind of claim test (`denselab.claim_tests.KINDS`), by its class: a new kind adds its own.
EVIDENCE: dict[type[ClaimTest], Evidence] = {FactorTest: _factor, PairTest: _pair, PlateauTest: _plateau}


def evidence(test: ClaimTest, params: Params, found: Mapping[str, Any], lang: Language) -> list[Observation]:
    """The numbers behind a claim's verdict (judge's entry `found`), as sentences of the page, by its kind's
    function in EVIDENCE."""
    if type(test) not in EVIDENCE:
        raise LookupError(f"no sentences for a claim test of kind {type(test).__name__}: add them to EVIDENCE")
    return EVIDENCE[type(test)](test, params, found, lang)
