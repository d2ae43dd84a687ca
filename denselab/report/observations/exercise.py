"""One exercise's sentences: its best and worst classes, how its curves behave, what its hidden units do, and
where the lab's accuracy falls among the seeds study's runs of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from denselab.core.i18n import N_, Language
from denselab.core.records import Saturation
from denselab.report.observations import Observation
from denselab.study.statistics import lab_position

# A validation curve whose best value moved by less than this over the last epochs has flattened.
PLATEAU_ACCURACY = 0.005
PLATEAU_LOSS_REL = 0.02


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
