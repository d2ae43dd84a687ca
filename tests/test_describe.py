"""describe: the shapes the lab prints, class counts and the data's figures, from arrays in the real format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from denselab.core.layout import DATASET_FIGURES, DATASET_SUMMARY, raw_file
from stages import describe as D
from tests.fixtures import cifar_arrays, copy_params, mnist_arrays


def test_shapes_before_and_after_flattening_and_class_counts():
    arrays = mnist_arrays(n_train=120, n_test=40)
    found = D.describe("mnist", arrays)
    assert found["shapes"]["before"] == {
        "x_train": [120, 28, 28],
        "y_train": [120],
        "x_test": [40, 28, 28],
        "y_test": [40],
    }
    # What prepare makes of them: flat rows, one-hot training labels (the lab's Hình 2).
    assert found["shapes"]["after"] == {
        "x_train": [120, 784],
        "y_train": [120, 10],
        "x_test": [40, 784],
        "y_test": [40],
    }
    assert found["counts"]["train"] == np.bincount(arrays["y_train"], minlength=10).tolist()
    assert found["counts"]["test"] == [4] * 10
    cifar = D.describe("cifar10", cifar_arrays(n_per_batch=20, n_test=20))
    assert cifar["shapes"]["before"]["x_train"] == [100, 32, 32, 3] and cifar["shapes"]["after"]["x_train"] == [
        100,
        3072,
    ]
    assert cifar["class_names"][3] == "cat"


def test_main_writes_the_summary_and_every_figure_of_every_dataset(tmp_path, monkeypatch):
    from PIL import Image

    from denselab.data import datasets

    monkeypatch.chdir(tmp_path)
    copy_params(tmp_path)
    raw = tmp_path / "raw"
    raw.mkdir()
    np.savez(raw / raw_file("mnist"), **mnist_arrays(n_train=30, n_test=10))
    np.savez(raw / raw_file("cifar10"), **cifar_arrays(n_per_batch=4, n_test=10))
    # Class names with markup and a `$` draw as plain text and are kept verbatim for the page to escape.
    names = ("<i>plane</i>", "$car$", *datasets.CLASS_NAMES["cifar10"][2:])
    monkeypatch.setitem(datasets.CLASS_NAMES, "cifar10", names)
    for dataset in ("mnist", "cifar10"):
        D.main(["--dataset", dataset, "--raw", f"raw/{raw_file(dataset)}", "--out", f"out/{dataset}"])
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"mnist", "cifar10"}
    for dataset in ("mnist", "cifar10"):
        folder = tmp_path / "out" / dataset
        assert {p.name for p in folder.iterdir()} == {DATASET_SUMMARY, *DATASET_FIGURES.values()}
        for name in DATASET_FIGURES.values():
            with Image.open(folder / name) as image:
                image.verify()
    summary = json.loads((tmp_path / "out" / "cifar10" / DATASET_SUMMARY).read_text())
    assert summary["class_names"][:2] == ["<i>plane</i>", "$car$"] and sum(summary["counts"]["train"]) == 20
    assert json.loads((tmp_path / "out" / "mnist" / DATASET_SUMMARY).read_text())["shapes"]["after"]["x_train"] == [
        30,
        784,
    ]


def test_a_bad_download_stops_the_stage_and_keeps_the_previous_figures(tmp_path, monkeypatch, capsys):

    monkeypatch.chdir(tmp_path)
    copy_params(tmp_path)
    (tmp_path / "raw").mkdir()
    arrays = mnist_arrays(n_train=30, n_test=10)
    np.savez(tmp_path / "raw" / raw_file("mnist"), **(arrays | {"y_train": arrays["y_train"][:5]}))  # cut short
    (tmp_path / "out" / "mnist").mkdir(parents=True)
    (tmp_path / "out" / "mnist" / "kept").write_text("previous")
    with pytest.raises(SystemExit) as stop:
        D.main(["--dataset", "mnist", "--raw", "raw/mnist.npz", "--out", "out/mnist"])
    assert stop.value.code == 2 and "error: mnist" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").rglob("*")] == ["mnist", "kept"]


def test_dvc_yaml_names_the_raw_files_as_describe_reads_them():
    import yaml

    from tests.conftest import ROOT

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages["download"]["do"]["outs"] == ["${paths.raw}/" + raw_file("${item}")]
    describe = stages["describe"]["do"]
    # Its own download, not the raw folder: a clone that lacks the downloads (a student's) leaves it alone.
    assert describe["deps"][-1] == "${paths.raw}/" + raw_file("${item}") and "--raw ${paths.raw}/" in describe["cmd"]
