"""The kinds of claim test: a new kind is one class in denselab/study/claim_tests.py, added to KINDS, and its
sentence; validation, judge and the page take it with no other change."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest
from pydantic import Field

from denselab.core.cli import ParamsError
from denselab.core.i18n import Language
from denselab.core.schema import ExerciseName, Unique
from denselab.report.observations import Observation
from denselab.report.observations.claims import EVIDENCE
from denselab.report.page import ClaimsView, claim_views
from denselab.study import claim_tests
from denselab.study import claims as C
from denselab.study import verdicts as V
from denselab.study.claim_tests import ClaimTest, PairTest, parse_with_claims
from tests.test_claims import no_curves, table


class TrendTest(ClaimTest):
    """A fourth kind, as a developer would add it: accuracy rises along a sequence of exercises (the slope of
    the runs' accuracy on each exercise's position, tested against zero)."""

    KEY: ClassVar[str] = "trend"
    SHAPE: ClassVar[str] = "{trend}"
    KIND: ClassVar[str] = "trend"

    along: Unique[ExerciseName] = Field(alias="trend")

    def exercises(self, params):
        return self.along

    def run(self, runs, curves) -> dict[str, Any]:
        from scipy import stats

        chosen = runs[runs["exercise"].isin(self.along)]
        fit = stats.linregress([self.along.index(e) for e in chosen["exercise"]], chosen["test_accuracy"])
        return {"test": {"difference": float(fit.slope), "p_value": V.p_rounded(float(fit.pvalue))}}

    def verdict(self, params, entry: Mapping[str, Any], factorials) -> dict[str, Any]:
        return {"verdict": V.signed_verdict(entry["test"])}


def trend_evidence(test: TrendTest, params, found, lang: Language) -> list[Observation]:
    """Its sentence on the page, as the page's own kinds have theirs."""
    values = {"along": ", ".join(test.along), "p": lang.p_value(found["test"]["p_adjusted"])}
    return [Observation("Accuracy rises along %(along)s (adjusted p %(p)s).", values)]


@pytest.fixture
def with_trend() -> Iterator[None]:
    claim_tests.KINDS.append(TrendTest)
    EVIDENCE[TrendTest] = trend_evidence
    yield
    claim_tests.KINDS.remove(TrendTest)
    del EVIDENCE[TrendTest]


RISING = {"text": {"en": "Each step helps", "vi": "Mỗi bước đều giúp"}, "test": {"trend": ["ex2", "ex1", "ex3"]}}


def trend_claim(params_data: dict, along: list[str]) -> dict:
    return {**params_data, "claims": {**params_data["claims"], "rising": {**RISING, "test": {"trend": along}}}}


def test_a_fourth_kind_is_parsed_judged_adjusted_and_shown_with_no_other_module_changed(params_data, with_trend):
    params = parse_with_claims(trend_claim(params_data, ["ex2", "ex1", "ex3"]))
    assert params.claims["rising"].test == TrendTest(along=("ex2", "ex1", "ex3"))
    means = {"ex2": 0.74, "ex1": 0.88, "ex3": 0.978, "sigmoid_x255": 0.975, "baseline": 0.10}
    means |= {"baseline_sigmoid_output": 0.90, "baseline_sigmoid_hidden": 0.10, "baseline_sigmoid_both": 0.88}
    found = C.verdicts(params, table(means), no_curves())
    rising = found["claims"]["rising"]
    assert rising["kind"] == "trend" and rising["verdict"] == "supported"
    assert rising["test"]["p_adjusted"] >= rising["test"]["p_value"]  # it joined the family Holm adjusts
    without = C.verdicts(parse_with_claims(params_data), table(means), no_curves())
    assert found["tests"] == without["tests"] + 1

    # The page, for this claim alone (the others' views would need every exercise's files).
    alone = parse_with_claims({**trend_claim(params_data, ["ex2", "ex1", "ex3"]), "claims": {"rising": RISING}})
    (view,) = claim_views(ClaimsView(found, {}), alone, [], Language("en"))
    assert view.name == "rising" and view.verdict == "supported"
    assert [o.message for o in view.evidence] == ["Accuracy rises along %(along)s (adjusted p %(p)s)."]


def test_a_test_of_two_kinds_names_every_kind_it_could_be(params_data, with_trend):
    data = trend_claim(params_data, ["ex2", "ex3"])
    data["claims"]["rising"]["test"]["than"] = "ex2"
    with pytest.raises(
        ParamsError, match=r"claims.rising.test: expected one kind of test: \{factorial, .* or \{trend\}$"
    ):
        parse_with_claims(data)


def test_every_kind_has_its_own_key_and_name():
    assert len({kind.KEY for kind in claim_tests.KINDS}) == len({kind.KIND for kind in claim_tests.KINDS}) == 3
    assert PairTest in claim_tests.KINDS


def test_a_fourth_kinds_mistakes_are_worded_like_every_other_key(params_data, with_trend):
    with pytest.raises(
        ParamsError, match=r"^claims.rising.test.trend\[1\]: unknown exercise 'ex22'; .* did you mean 'ex2'\?$"
    ):
        parse_with_claims(trend_claim(params_data, ["ex1", "ex22"]))
    with pytest.raises(ParamsError, match=r"^claims.rising.test.trend\[1\]: 'ex1' is already in the list$"):
        parse_with_claims(trend_claim(params_data, ["ex1", "ex1"]))
