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


def test_the_samples_mosaic_puts_each_class_on_its_row_with_blank_between_and_where_a_class_is_short():
    x = np.zeros((12, 2, 3), dtype=np.uint8)
    x[:, :, :] = np.arange(1, 13, dtype=np.uint8)[:, None, None]  # image i is filled with i + 1
    y = np.array([0] * 10 + [2] * 2)  # class 0 has more than SAMPLES_PER_CLASS images, class 1 none, class 2 two
    mosaic = D.sample_mosaic(x, y, classes=3, gap=1)
    per_row, per_column = 2 + 1, 3 + 1
    assert mosaic.shape == (3 * per_row - 1, D.SAMPLES_PER_CLASS * per_column - 1)
    row0 = [int(mosaic[0, k * per_column]) for k in range(D.SAMPLES_PER_CLASS)]
    assert len(set(row0)) == D.SAMPLES_PER_CLASS and set(row0) <= set(range(1, 11))  # eight of class 0's ten
    assert row0 == sorted(row0)
    assert not mosaic[per_row : 2 * per_row - 1].any()  # class 1: blank (0 is white in gray_r)
    assert [int(mosaic[2 * per_row, k * per_column]) for k in range(3)] == [11, 12, 0]
    assert not mosaic[2].any() and not mosaic[:, 3].any()  # the gaps
    colour = D.sample_mosaic(np.zeros((2, 2, 2, 3), dtype=np.uint8), np.array([0, 0]), classes=1, gap=1)
    assert colour.shape == (2, D.SAMPLES_PER_CLASS * 3 - 1, 3) and colour[0, 2].tolist() == [255, 255, 255]


def test_the_samples_figure_keeps_every_class_name_inside_the_saved_image(tmp_path):
    """Its axes keep the images' aspect ratio, which tight_layout cannot fit: saved uncropped, the longest name
    ("automobile") runs off the left edge. Cropped, the PNG has a white margin on every side: nothing is cut."""
    import matplotlib.image

    arrays = cifar_arrays(n_per_batch=20, n_test=20)
    figure = D.samples_figure(arrays["x_train"], arrays["y_train"], D.CLASS_NAMES["cifar10"])
    D.save_png(figure, tmp_path / "samples.png", crop=True)
    ink = (matplotlib.image.imread(tmp_path / "samples.png")[:, :, :3] < 0.9).any(axis=2)
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert columns[0] >= 3 and columns[-1] <= ink.shape[1] - 4, (columns[0], columns[-1], ink.shape)
    assert rows[0] >= 3 and rows[-1] <= ink.shape[0] - 4, (rows[0], rows[-1], ink.shape)
