"""The report's observations (denselab.report.observations: one exercise, comparisons, claims): each a pure function of the stages' numbers, in English and
Vietnamese."""

from __future__ import annotations

from pathlib import Path

import pytest

from denselab.core.i18n import Language
from denselab.report.observations import Observation
from denselab.report.observations import comparison as C
from denselab.report.observations import exercise as E

EN, VI = Language("en"), Language("vi")


def said(o: Observation, lang: Language = EN) -> str:
    """The sentence as the page shows it: the message translated, then filled in."""
    return lang.gettext(o.message) % o.values


def evaluation(per_class: list[tuple[int, int]], matrix=None, pair=None) -> dict:
    """explain's numbers, trimmed to what the class observations read: (right, support) per class."""
    return {
        "class_names": [f"c{i}" for i in range(len(per_class))],
        "per_class": [
            {"class": i, "correct": right, "support": n, "accuracy": right / n if n else None}
            for i, (right, n) in enumerate(per_class)
        ],
        "confusion_matrix": matrix or [[0] * len(per_class) for _ in per_class],
        "pair": pair,
    }


def test_class_observations_name_best_worst_and_explains_top_confusion():
    matrix = [[990, 10, 0], [3, 1130, 2], [40, 12, 980]]
    numbers = evaluation([(990, 1000), (1130, 1135), (980, 1032)], matrix, {"actual": 2, "predicted": 0, "count": 40})
    found = E.class_observations(numbers, EN)
    assert [said(o) for o in found] == [
        "Best class: c1, with 1,130 of 1,135 right (99.56%).",
        "Worst class: c2, with 980 of 1,032 right (94.96%); 52 are misclassified.",
        "The most frequent confusion: class c2 is taken for c0 in 40 of 1,032 cases.",
    ]
    best = E.class_observations(numbers, VI)[0]
    assert said(best, VI) == (
        "Mô hình dự đoán chính xác nhất ở class c1 với 1.130/1.135 điểm dữ liệu được dự đoán đúng (chiếm 99,56%)."
    )
    # No confusion at all (explain wrote no pair): no sentence about one; no samples: nothing.
    assert len(E.class_observations(evaluation([(5, 5), (5, 5)]), EN)) == 2
    assert E.class_observations(evaluation([(0, 0)]), EN) == []


@pytest.mark.parametrize(
    "val_acc, train_acc, expected",
    [
        (
            [0.5, 0.7, 0.8, 0.85, 0.9],
            [0.5, 0.7, 0.8, 0.85, 0.9],
            "Validation accuracy is still improving at the last epoch (5)",
        ),
        (
            [0.5, 0.9, 0.9, 0.9, 0.9],
            [0.5, 0.9, 0.95, 0.97, 0.99],
            "Validation accuracy levels off from epoch 2 (0.9000)",
        ),
        (
            [0.5, 0.9, 0.85, 0.8, 0.7],
            [0.5, 0.9, 0.95, 0.97, 0.99],
            "Validation accuracy was best at epoch 2 (0.9000) and fell to 0.7000",
        ),
        ([0.5, 0.9, 0.85, 0.8, 0.7], [0.5, 0.9, 0.8, 0.75, 0.7], "Accuracy got worse after epoch 2 on both sets"),
        ([0.5, 0.9, 0.9, 0.9, 0.9], [0.5, 0.9, 0.9, 0.9, 0.9], "Both accuracy curves are flat from epoch 2"),
    ],
)
def test_curve_observations_follow_the_curves(val_acc, train_acc, expected):
    loss = [1.0, 0.5, 0.4, 0.3, 0.2]
    history = {"accuracy": train_acc, "val_accuracy": val_acc, "loss": loss, "val_loss": loss}
    first, second = E.curve_observations(history, EN)
    assert said(first).startswith(expected)
    assert said(second).startswith("Validation loss is still falling at the last epoch (5)")


def test_curve_observations_need_three_epochs():
    assert (
        E.curve_observations(
            {"loss": [1.0, 0.5], "val_loss": [1.0, 0.5], "accuracy": [0.5, 0.6], "val_accuracy": [0.5, 0.6]}, EN
        )
        == []
    )


def test_unit_observations_per_activation():
    relu = {
        "hidden": True,
        "layer": 1,
        "units": 784,
        "median_abs": 7.2,
        "activation": "relu",
        "dead": 0.5,
        "active_per_sample": 21.6,
        "silent": 0.0,
        "stuck": None,
    }
    sigmoid = {**relu, "activation": "sigmoid", "dead": None, "stuck": 0.25, "saturated": 0.9}
    linear = {**relu, "activation": "linear", "dead": None}
    output = {**relu, "hidden": False}
    saturation = {"z": 4.59512, "below": 0.01, "above": 0.99, "share": 0.95}
    found = E.unit_observations(
        {"samples": 10_000, "units": [relu, sigmoid, linear, output], "saturation": saturation}, EN
    )
    assert len(found) == 3
    assert "An average image switches on 21.6 units, and every image switches on at least one;" in said(found[0])
    assert said(found[0]).startswith("Layer 1: 392 of its 784 ReLU units (50.0%) never switch on for any of the 10,000")
    assert "90.0% of its 784 sigmoid units are saturated (output below 0.01 or above 0.99) on at least 95% of" in said(
        found[1]
    )
    assert "196 (25.0%)" in said(found[1])
    assert said(found[2]).startswith("Layer 1 has no activation")
    silent = E.unit_observations({"samples": 10, "units": [{**relu, "silent": 0.355}]}, EN)[0]
    assert "and 35.5% of the images switch on none at all" in said(silent)
    assert said(E.unit_observations({"samples": 10, "units": [output]}, EN)[0]).startswith(
        "The model has no hidden layer"
    )


def test_study_observations_place_the_labs_number():
    s = {
        "n": 5,
        "mean": 0.9780,
        "sd": 0.0009,
        "min": 0.9765,
        "max": 0.9790,
        "lab": 0.9798,
        "lab_in_range": False,
        "lab_sds": 1.9,
    }
    (above,) = E.study_observations(s, EN)
    assert said(above) == (
        "The lab's 97.98% lies above the range of our 5 runs (97.65% to 97.90%), 1.9 standard "
        "deviations above our mean of 97.80% ± 0.09%: our runs do not reach it."
    )
    assert "97,98%" in said(E.study_observations(s, VI)[0], VI)
    assert E.study_observations({**s, "lab": None}, EN) == [] and E.study_observations(None, EN) == []


@pytest.mark.parametrize(
    "test, expected",
    [
        (
            {"difference": -0.1328, "ci95_low": -0.16, "ci95_high": -0.1056, "p_value": 0.0001},
            "Over 5 and 4 runs, b is 13.28 ± 2.72 points below a (95% interval -16.00 to -10.56; Welch's t-test p < 0.001)",
        ),
        (
            {"difference": 0.004, "ci95_low": 0.001, "ci95_high": 0.007, "p_value": 0.021},
            "Over 5 and 4 runs, b is 0.40 ± 0.30 points above a (95% interval +0.10 to +0.70; Welch's t-test p = 0.021)",
        ),
        (
            {"difference": 0.004, "ci95_low": -0.002, "ci95_high": 0.01, "p_value": 0.17},
            (
                "Over 5 and 4 runs, b differs from a by +0.40 points (95% interval -0.20 to +1.00; Welch's t-test "
                "p = 0.170): within run-to-run noise"
            ),
        ),
        (
            {"difference": 0.1, "ci95_low": None, "ci95_high": None, "p_value": None},
            "Over 5 runs of a and 4 of b, every run of each exercise gave the same accuracy",
        ),
    ],
)
def test_study_verdicts(test, expected):
    assert said(C.study_comparison("a", "b", test, 5, 4, EN)).startswith(expected)


def test_single_comparison_names_the_one_setting_and_translates_it():
    a = {"input scaling": "raw", "activations": ("relu", "sigmoid")}
    b = {"input scaling": "x/255", "activations": ("relu", "sigmoid")}
    o = C.single_comparison("ex2", "ex3", "input scaling", a, b, 0.7468, 0.9798, EN)
    assert said(o) == (
        "ex3 differs from ex2 only in its input scaling (raw → x/255): test accuracy 74.68% → 97.98%, "
        "+23.30 percentage points."
    )
    vi = C.single_comparison("ex2", "ex3", "input scaling", a, b, 0.7468, 0.9798, VI)  # the aspect's name translated
    assert vi.values["aspect"] == VI.gettext("input scaling") != "input scaling" and "+23,30" in said(vi, VI)


def test_units_comparison_only_where_the_first_hidden_layer_says_something():
    dead = {"units": [{"hidden": True, "dead": 0.92, "stuck": None, "median_abs": 1352.97}]}
    alive = {"units": [{"hidden": True, "dead": 0.6, "stuck": None, "median_abs": 2.1}]}
    o = C.units_comparison("ex2", "ex3", dead, alive, EN)
    assert "are 92.0% of ex2's and 60.0% of ex3's; the median |pre-activation| goes from 1,352.97 to 2.10" in said(o)
    linear = {"units": [{"hidden": True, "dead": None, "stuck": None, "median_abs": 3.0}]}
    assert C.units_comparison("a", "b", linear, linear, EN) is None
    assert C.units_comparison("a", "b", {"units": []}, alive, EN) is None


def test_every_interval_a_sentence_gives_takes_its_level_from_statistics():
    """The messages name the intervals' level by a placeholder, filled from statistics.CONFIDENCE; none restates it."""
    import ast

    from denselab.report import observations
    from denselab.study.statistics import CONFIDENCE

    messages = [
        node.args[0].value
        for path in Path(observations.__file__).parent.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", "") == "N_"
        and isinstance(node.args[0], ast.Constant)
    ]
    with_interval = [m for m in messages if "interval" in m]
    assert len(with_interval) == 11  # the plateau sentences come in a gain and a loss each
    assert all("%(confidence)s%% interval" in m for m in with_interval)
    assert observations.SHOWN_CONFIDENCE == {"confidence": f"{CONFIDENCE * 100:g}"} == {"confidence": "95"}


def test_a_plateau_claims_change_after_the_epoch_is_worded_by_its_sign_in_both_languages():
    """A validation loss that rose after the epoch "rose by" its rise (it once read "fell by -0.0057"), its interval
    that of the rise; an accuracy that fell "lost" its points."""
    from denselab.report.observations.claims import plateau_evidence

    def sentence(metric: str, gain: float, low: float, high: float, lang: Language = EN) -> str:
        test = {"n": 4, "gain": gain, "ci95_low": low, "ci95_high": high, "margin": 0.001, "p_adjusted": 0.002}
        (observation,) = plateau_evidence("ex5", metric, 15, {"test": test}, lang)
        return said(observation, lang)

    tail = "from epoch 15 to the last (95% interval 0.0034 to 0.0080), against a margin of 0.0010 (adjusted p = 0.002)."
    assert (
        sentence("val_loss", -0.0057, -0.0080, -0.0034) == f"Over 4 runs of ex5, validation loss rose by 0.0057 {tail}"
    )
    assert sentence("val_loss", 0.0057, 0.0034, 0.0080) == f"Over 4 runs of ex5, validation loss fell by 0.0057 {tail}"
    assert sentence("val_loss", -0.0057, -0.0080, -0.0034, VI) == (
        "Với 4 lần chạy của ex5, loss trên tập validation tăng 0,0057 từ epoch 15 đến epoch cuối (khoảng tin cậy 95%: "
        "0,0034 đến 0,0080), so với ngưỡng 0,0010 (p đã hiệu chỉnh = 0,002)."
    )
    assert sentence("val_accuracy", -0.003, -0.005, -0.001) == (
        "Over 4 runs of ex5, validation accuracy lost 0.30 points from epoch 15 to the last (95% interval +0.10 to "
        "+0.50), against a margin of +0.10 (adjusted p = 0.002)."
    )
    assert sentence("val_accuracy", -0.003, -0.005, -0.001, VI).startswith(
        "Với 4 lần chạy của ex5, accuracy trên tập validation giảm 0,30 điểm phần trăm từ epoch 15"
    )
    assert "gained 0.30 points" in sentence("val_accuracy", 0.003, 0.001, 0.005)
