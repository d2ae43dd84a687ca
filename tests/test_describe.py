"""describe: the shapes the lab prints, class counts and the data's figures, from arrays in the real format."""

from __future__ import annotations

import json

import numpy as np

from stages import describe as D
from stages.layout import DATASET_FIGURES, DATASET_SUMMARY
from tests.fixtures import cifar_arrays, mnist_arrays


def test_shapes_before_and_after_flattening_and_class_counts():
    arrays = mnist_arrays(n_train=120, n_test=40)
    found = D.describe("mnist", arrays)
    assert found["shapes"]["before"] == {"x_train": [120, 28, 28], "y_train": [120], "x_test": [40, 28, 28], "y_test": [40]}
    # What prepare makes of them: flat rows, one-hot training labels (the lab's Hình 2).
    assert found["shapes"]["after"] == {"x_train": [120, 784], "y_train": [120, 10], "x_test": [40, 784], "y_test": [40]}
    assert found["counts"]["train"] == np.bincount(arrays["y_train"], minlength=10).tolist()
    assert found["counts"]["test"] == [4] * 10
    cifar = D.describe("cifar10", cifar_arrays(n_per_batch=20, n_test=20))
    assert cifar["shapes"]["before"]["x_train"] == [100, 32, 32, 3] and cifar["shapes"]["after"]["x_train"] == [100, 3072]
    assert cifar["class_names"][3] == "cat"


def test_main_writes_the_summary_and_every_figure(tmp_path, monkeypatch):
    from PIL import Image

    from stages import datasets
    from tests.conftest import ROOT

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    np.savez(tmp_path / "cifar10.npz", **cifar_arrays(n_per_batch=4, n_test=10))
    # Class names with markup and a `$` draw as plain text and are kept verbatim for the page to escape.
    names = ("<i>plane</i>", "$car$", *datasets.CLASS_NAMES["cifar10"][2:])
    monkeypatch.setitem(datasets.CLASS_NAMES, "cifar10", names)
    D.main(["--dataset", "cifar10", "--raw", "cifar10.npz", "--out", "out/cifar10"])
    folder = tmp_path / "out" / "cifar10"
    assert {p.name for p in folder.iterdir()} == {DATASET_SUMMARY, *DATASET_FIGURES.values()}
    for name in DATASET_FIGURES.values():
        with Image.open(folder / name) as image:
            image.verify()
    summary = json.loads((folder / DATASET_SUMMARY).read_text())
    assert summary["class_names"][:2] == ["<i>plane</i>", "$car$"] and sum(summary["counts"]["train"]) == 20
