"""explain: scikit-learn's classification report, the mistakes, the hidden-unit diagnostics and the figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from denselab.core.layout import EXERCISE_FIGURES
from denselab.data.datasets import CLASS_NAMES
from denselab.training import diagnostics as D
from stages import explain as X
from tests.fixtures import copy_params
from tests.test_report import evidence_for

DIGITS = CLASS_NAMES["mnist"]


def test_classification_by_hand():
    # 3 classes. Actual 0: predicted 0,0,1; actual 1: 1,1; actual 2: 0.
    found = D.classification(np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 1, 0]), ("a", "b", "c"))
    assert found["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert (found["accuracy"], found["correct"], found["samples"]) == (round(4 / 6, 6), 4, 6)
    c0, c1, c2 = found["per_class"]
    assert (c0["name"], c0["support"], c0["correct"], c0["accuracy"], c0["precision"]) == (
        "a",
        3,
        2,
        round(2 / 3, 6),
        round(2 / 3, 6),
    )
    assert (c1["recall"], c1["precision"], c1["f1"]) == (1.0, round(2 / 3, 6), 0.8)
    # Never predicted: precision undefined (not 0%); F1 is 0, as scikit-learn defines it when recall is 0.
    assert (c2["accuracy"], c2["precision"], c2["f1"]) == (0.0, None, 0.0)


def test_classification_equals_sklearn_and_the_labs_accuracy():
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 9, 500))  # class 9 rarely predicted
    found = D.classification(y_true, y_pred, DIGITS)
    assert found["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=range(10)).tolist()
    assert found["accuracy"] == round(accuracy_score(y_true, y_pred), 6) == round(float(np.mean(y_true == y_pred)), 6)
    report = classification_report(y_true, y_pred, labels=range(10), output_dict=True, zero_division=0)
    for row in found["per_class"]:
        expected = report[str(row["class"])]
        assert row["support"] == expected["support"]
        for key, name in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert row[key] == pytest.approx(expected[name], abs=1e-6), (row["class"], key)


def test_mistakes_most_confident_first_and_the_top_confusion():
    y_true = np.array([0, 1, 2, 3, 3, 3])
    probabilities = np.full((6, 10), 0.1, dtype=np.float32)
    for i, (predicted, p) in enumerate([(0, 0.9), (7, 0.6), (5, 0.95), (8, 0.7), (8, 0.99), (3, 0.8)]):
        probabilities[i, predicted] = p
    wrong = D.mistakes(probabilities, y_true)
    assert wrong["index"].tolist() == [4, 2, 3, 1]
    assert wrong["predicted"].tolist() == [8, 5, 8, 7]
    assert wrong["probability"].iloc[0] == pytest.approx(0.99)
    found = D.explanation(
        {
            **evidence_for([{"units": 10, "activation": "sigmoid"}], probabilities.argmax(1)),
            "probabilities": probabilities,
        },
        y_true,
        DIGITS,
    )
    assert found["pair"]["actual"] == 3 and found["pair"]["predicted"] == 8 and found["pair"]["count"] == 2
    assert [e["index"] for e in found["pair"]["examples"]] == [4, 3]
    assert len(found["mistakes"]) == 4  # fewer than MISTAKES: all of them


def test_unit_diagnostics_by_hand():
    evidence = {
        "layers": np.array(3),
        "activation_0": np.array("relu"),
        "positive_0": np.array([0.0, 0.5, 0.0, 0.25]),
        "low_0": np.zeros(4),
        "high_0": np.zeros(4),
        "median_abs_0": np.array(1500.0),
        "silent_0": np.array(0.3),
        "activation_1": np.array("sigmoid"),
        "positive_1": np.array([0.0, 1.0, 0.5]),
        "low_1": np.array([1.0, 0.0, 0.5]),
        "high_1": np.array([0.0, 1.0, 0.46]),
        "median_abs_1": np.array(9.0),
        "activation_2": np.array("linear"),
        "positive_2": np.array([0.5] * 10),
        "low_2": np.zeros(10),
        "high_2": np.zeros(10),
        "median_abs_2": np.array(2.0),
    }
    relu, sigmoid, linear = D.unit_diagnostics(evidence)
    assert (relu["hidden"], relu["units"], relu["dead"], relu["active_per_sample"], relu["stuck"]) == (
        True,
        4,
        0.5,
        0.75,
        None,
    )
    assert relu["silent"] == 0.3 and sigmoid["silent"] is None
    # Stuck: saturated at the same end on every sample (units 0 and 1); saturated: on >= 95% (unit 2 too).
    assert (sigmoid["stuck"], sigmoid["saturated"], sigmoid["dead"]) == (round(2 / 3, 6), 1.0, None)
    assert (linear["hidden"], linear["dead"], linear["stuck"], linear["saturated"]) == (False, None, None, None)


def _check_pngs(folder, expected: set[str]) -> None:
    from PIL import Image

    assert {p.name for p in folder.iterdir()} == expected
    for path in folder.iterdir():
        with Image.open(path) as image:
            image.verify()


def test_figures_of_a_model_without_hidden_layers_and_without_mistakes(tmp_path):
    import pandas as pd

    y = np.arange(10).repeat(2)
    evidence = evidence_for([{"units": 10, "activation": "sigmoid"}], y)  # predicts every sample right
    found = D.explanation(evidence, y, DIGITS)
    assert found["mistakes"] == [] and found["pair"] is None and found["weight_units"] == []
    assert [u["hidden"] for u in found["units"]] == [False]
    history = pd.DataFrame(
        {
            "epoch": [1, 2],
            "loss": [0.5, 0.4],
            "accuracy": [0.8, 0.9],
            "val_loss": [0.5, 0.45],
            "val_accuracy": [0.8, 0.85],
        }
    )
    x = np.random.default_rng(0).random((20, 784), dtype=np.float32)
    X.write_figures(tmp_path / "figs", found, evidence, x, history, "mnist", 1.0, "en")
    _check_pngs(tmp_path / "figs", {EXERCISE_FIGURES[k] for k in ("curves", "confusion", "units")})


def test_figures_of_cifar_with_markup_in_class_names_and_few_mistakes(tmp_path, monkeypatch):
    import matplotlib.text
    import pandas as pd

    names = ("<b>plane</b>", "$x$ car", "bird & co", *CLASS_NAMES["cifar10"][3:])
    y_true = np.arange(10).repeat(2)
    y_pred = y_true.copy()
    y_pred[[0, 5, 7]] = [1, 0, 1]  # three mistakes: two of them 0/3 -> 1 ... the top pair 0 -> 1
    evidence = evidence_for([{"units": 12, "activation": "relu"}, {"units": 10, "activation": "sigmoid"}], y_pred)
    evidence["weights"] = np.random.default_rng(1).normal(size=(3072, 12)).astype(np.float32)
    found = D.explanation(evidence, y_true, names)
    assert len(found["mistakes"]) == 3 and found["pair"]["actual"] == 0 and found["pair"]["predicted"] == 1
    assert found["weight_units"][:3] == ["dead", "dead", "dead"] and found["weight_units"][3] == ""
    texts = []
    original = matplotlib.text.Text.set_text
    monkeypatch.setattr(matplotlib.text.Text, "set_text", lambda self, s: (texts.append(str(s)), original(self, s))[1])
    history = pd.DataFrame({"epoch": [1], "loss": [0.5], "accuracy": [0.8], "val_loss": [0.5], "val_accuracy": [0.8]})
    x = np.random.default_rng(0).integers(0, 256, (20, 3072)).astype(np.float32)
    X.write_figures(tmp_path / "figs", found, evidence, x, history, "cifar10", 255.0, "en")
    _check_pngs(tmp_path / "figs", set(EXERCISE_FIGURES.values()))
    # `$` is shown literally, not read as mathematical notation; markup is plain text in a PNG.
    assert r"\$x\$ car" in texts and "<b>plane</b>" in texts


@pytest.mark.parametrize("colour", [False, True])
def test_a_gallerys_three_line_titles_stay_clear_of_the_images_above_and_inside_the_figure(colour):
    """Placed by arithmetic (`drawing.image_grid`): a title of three lines (a long class name, the predicted one,
    the probability) sits between its image and the row above, never over an image, never off the figure."""
    import matplotlib.pyplot as plt

    shape = (32, 32, 3) if colour else (28, 28)
    images = [np.full(shape, 0.5)] * 13
    titles = [X.caption("automobile", "truck", "0.10")] * 13
    assert titles[0].count("\n") == 2
    figure = X.gallery_figure(images, titles, columns=10)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    shown = [ax for ax in figure.axes if ax.images]
    assert len(shown) == 13 and len(figure.axes) == 20  # two rows of ten, the last seven empty
    for ax in shown:
        title = ax.title.get_window_extent(renderer)
        assert not any(title.overlaps(other.get_window_extent(renderer)) for other in shown if other is not ax)
        assert 0 <= title.x0 and title.x1 <= figure.bbox.x1 and title.y1 <= figure.bbox.y1, (title, figure.bbox)
    plt.close(figure)


def test_figure_labels_follow_the_language():
    from denselab.core.i18n import Language

    labels = Language("vi").labels(X.LABELS)
    assert labels["predicted"] != X.LABELS["predicted"]
    figure = X.confusion_figure(np.eye(10, dtype=int).tolist(), DIGITS, labels)
    ax = figure.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == (labels["predicted"], labels["actual"])


def test_main_writes_the_numbers_and_the_figures(tmp_path, monkeypatch):
    from denselab.training.evaluation import write_evidence

    monkeypatch.chdir(tmp_path)
    copy_params(tmp_path)
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    y = np.arange(10).repeat(3).astype(np.uint8)
    np.save(prepared / "x_test.npy", np.random.default_rng(0).random((30, 784), dtype=np.float32))
    np.save(prepared / "y_test.npy", y)
    y_pred = (y + (np.arange(30) % 4 == 0)) % 10
    evidence = evidence_for([{"units": 784, "activation": "relu"}, {"units": 10, "activation": "sigmoid"}], y_pred)
    write_evidence(tmp_path / "ex3.npz", evidence)
    (tmp_path / "ex3.csv").write_text(
        "epoch,loss,accuracy,val_loss,val_accuracy\n1,0.5,0.8,0.5,0.8\n2,0.4,0.9,0.45,0.85\n"
    )
    args = "--exercise ex3 --evidence ex3.npz --prepared prepared --history ex3.csv --out out/ex3.json --figures figures/ex3"
    X.main(args.split())
    found = json.loads((tmp_path / "out" / "ex3.json").read_text())
    assert found["correct"] == int(np.sum(y_pred == y)) and len(found["mistakes"]) == int(np.sum(y_pred != y))
    assert found["units"][0]["dead"] == 0.25
    _check_pngs(tmp_path / "figures" / "ex3", set(EXERCISE_FIGURES.values()))
    with pytest.raises(SystemExit):  # a test set that does not match the evidence: one clear line
        np.save(prepared / "y_test.npy", y[:20])
        X.main(args.split())
