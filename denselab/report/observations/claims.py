"""The lab's conclusions on trial, in words (judge's results, `denselab.study.claims`): each verdict, why a claim
was not tested, and the numbers behind a verdict, one function per kind of claim test (EVIDENCE)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from denselab.core.config import Params
from denselab.core.i18n import N_, Language
from denselab.report.observations import SHOWN_CONFIDENCE, Observation, level_shown
from denselab.study.claim_tests import ClaimTest, FactorTest, PairTest, PlateauTest

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
    """A plateau claim's numbers: how much the validation curve still gained after the epoch (or lost, worded by
    its sign: a loss that rose "rose by", never "fell by" a negative number), against the margin."""
    test = found["test"]
    gain = test["gain"]
    worse = gain is not None and gain < 0  # the curve got worse after the epoch: said as a loss, its interval too
    low, high = test.get("ci95_low"), test.get("ci95_high")
    if worse:
        low, high = (None if high is None else -high), (None if low is None else -low)
    accuracy = metric == "val_accuracy"
    show = lang.points if accuracy else (lambda v: "–" if v is None else lang.number(v, 4))
    values = {
        "exercise": exercise,
        "epoch": from_epoch,
        "n": test["n"],
        "gain": show(None if gain is None else abs(gain)).lstrip("+"),
        "low": show(low),
        "high": show(high),
        "margin": show(test["margin"]),
        "p": lang.p_value(test.get("p_adjusted")),
        **SHOWN_CONFIDENCE,
    }
    messages = {
        (True, False): N_(
            "Over %(n)s runs of %(exercise)s, validation accuracy gained %(gain)s points from epoch %(epoch)s to the "
            "last (%(confidence)s%% interval %(low)s to %(high)s), against a margin of %(margin)s (adjusted p %(p)s)."
        ),
        (True, True): N_(
            "Over %(n)s runs of %(exercise)s, validation accuracy lost %(gain)s points from epoch %(epoch)s to the "
            "last (%(confidence)s%% interval %(low)s to %(high)s), against a margin of %(margin)s (adjusted p %(p)s)."
        ),
        (False, False): N_(
            "Over %(n)s runs of %(exercise)s, validation loss fell by %(gain)s from epoch %(epoch)s to the last "
            "(%(confidence)s%% interval %(low)s to %(high)s), against a margin of %(margin)s (adjusted p %(p)s)."
        ),
        (False, True): N_(
            "Over %(n)s runs of %(exercise)s, validation loss rose by %(gain)s from epoch %(epoch)s to the last "
            "(%(confidence)s%% interval %(low)s to %(high)s), against a margin of %(margin)s (adjusted p %(p)s)."
        ),
    }
    return [Observation(messages[accuracy, worse], values)]


def untested_evidence(found: Mapping[str, Any], lang: Language) -> list[Observation]:
    """Why a claim with a test was not tested (judge's entry): the exercises the study does not run, the exercises
    of its comparison that an edit made differ in more (or less) than the claim names, or a curve too short."""
    if found.get("missing") and found.get("profile"):
        return [
            Observation(
                N_(
                    "Not tested yet: the seeds study does not run %(missing)s, which the profile %(profile)s adds. "
                    "Run `python -m denselab.tools.profile %(profile)s`, then `dvc repro` (or the study's runs on a Slurm "
                    "cluster: `python -m denselab.tools.slurm`)."
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
# The sentences of each kind of claim test (`denselab.study.claim_tests.KINDS`), by its class: a new kind adds its own.
EVIDENCE: dict[type[ClaimTest], Evidence] = {FactorTest: _factor, PairTest: _pair, PlateauTest: _plateau}


def evidence(test: ClaimTest, params: Params, found: Mapping[str, Any], lang: Language) -> list[Observation]:
    """The numbers behind a claim's verdict (judge's entry `found`), as sentences of the page, by its kind's
    function in EVIDENCE."""
    if type(test) not in EVIDENCE:
        raise LookupError(f"no sentences for a claim test of kind {type(test).__name__}: add them to EVIDENCE")
    return EVIDENCE[type(test)](test, params, found, lang)
