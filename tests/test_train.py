"""Training: the lab's fit on tiny data, reproducible from the seed; history as CSV."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from denselab.core.config import InputVariant, load_params
from stages.prepare import prepare
from tests.conftest import ROOT
from tests.fixtures import mnist_arrays

pytest.importorskip("keras")

from denselab.core.history import COLUMNS as HISTORY_COLUMNS
from denselab.core.history import history_csv
from denselab.training.fit import fit_exercise
from stages.train import train


@pytest.fixture(scope="module")
def tiny():
    data = prepare(mnist_arrays(n_train=200), InputVariant(dataset="mnist", divide_by_255=True))
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], epochs=3)
    return data, spec


def test_train_fits_the_labs_way_and_learns(tiny):
    data, spec = tiny
    epochs = []
    model, history, summary = train(
        data["x_train"], data["y_train"], spec, seed=1, on_epoch=lambda h, s: epochs.append(len(s))
    )
    assert set(HISTORY_COLUMNS[1:]) <= set(history) and epochs == [1, 2, 3]
    assert len(history["loss"]) == 3 and summary["total_params"] == 623_290 and summary["train_samples"] == 200
    assert summary["seconds_per_epoch"] > 0 and set(summary["versions"]) == {"python", "numpy", "tensorflow", "keras"}
    assert history["loss"][-1] < history["loss"][0]
    predictions = model.predict(data["x_test"], verbose=0).argmax(axis=1)
    assert (predictions == data["y_test"]).mean() > 0.5  # the synthetic classes are easy


def test_same_seed_same_history_and_weights(tiny):
    data, spec = tiny
    runs = [fit_exercise(data["x_train"], data["y_train"], spec, seed=7, verbose=0) for _ in range(2)]
    assert runs[0][1] == runs[1][1]
    for a, b in zip(runs[0][0].get_weights(), runs[1][0].get_weights()):
        np.testing.assert_array_equal(a, b)


def test_validation_split_holds_out_the_last_fifth(tiny):
    data, spec = tiny
    # Corrupt only the last 20% of labels: validation accuracy must collapse, training accuracy not.
    y = data["y_train"].copy()
    y[160:] = np.roll(y[160:], 1, axis=1)
    _, history, _ = fit_exercise(data["x_train"], y, dataclasses.replace(spec, epochs=4), seed=1, verbose=0)
    assert history["accuracy"][-1] > 0.8 and history["val_accuracy"][-1] < 0.3


def test_history_csv():
    text = history_csv(
        {"loss": [0.5, 0.25], "accuracy": [0.8, 0.9], "val_loss": [0.6, 0.3], "val_accuracy": [0.7, 1 / 3]}
    )
    assert text == "epoch,loss,accuracy,val_loss,val_accuracy\n1,0.5,0.8,0.6,0.7\n2,0.25,0.9,0.3,0.333333\n"


def test_bfloat16_asked_without_native_support_trains_in_float32(tiny, monkeypatch):
    from denselab.training import models

    data, spec = tiny
    monkeypatch.setattr(models, "native_bfloat16", lambda: None)
    model, _, _ = fit_exercise(
        data["x_train"], data["y_train"], dataclasses.replace(spec, precision="mixed_bfloat16"), seed=1, verbose=0
    )
    assert models.summarize(model)["precision"] == "float32"
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers)


def test_bfloat16_model_saves_loads_in_plain_keras_and_predicts_as_evaluated(tiny, monkeypatch, tmp_path):
    import keras

    from denselab.training import models
    from denselab.training.evaluation import predict

    data, spec = tiny
    monkeypatch.setattr(models, "native_bfloat16", lambda: "forced on by the test")  # emulated here: slow, same math
    model, history, _ = fit_exercise(
        data["x_train"], data["y_train"], dataclasses.replace(spec, precision="mixed_bfloat16"), seed=1, verbose=0
    )
    assert models.summarize(model)["precision"] == "mixed_bfloat16"
    assert history["loss"][-1] < history["loss"][0]
    metrics, _, y_pred = predict(model, data["x_test"], data["y_test"])
    models.portable(model).save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert [layer.dtype_policy.name for layer in loaded.layers] == ["mixed_bfloat16", "float32"]
    np.testing.assert_array_equal(loaded.predict(data["x_test"], verbose=0).argmax(axis=1), y_pred)
    assert metrics["test_accuracy"] > 0.5


def _stage_folder(tmp_path, n_train: int = 200, **settings) -> list[str]:
    """Prepared arrays and ex3's fingerprint (its settings changed by `settings`) in tmp_path; the train stage's
    arguments for ex3."""
    from denselab.data.arrays import array_hashes, write_prepared
    from denselab.training.fingerprints import fingerprint

    write_prepared(
        tmp_path / "prepared", prepare(mnist_arrays(n_train=n_train), InputVariant(dataset="mnist", divide_by_255=True))
    )
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], **settings)
    (tmp_path / "ex3.fingerprint.json").write_text(
        json.dumps(fingerprint("ex3", spec, tmp_path / "prepared", array_hashes(tmp_path / "prepared")))
    )
    return [
        "--exercise",
        "ex3",
        "--seed",
        "42",
        "--fingerprint",
        "ex3.fingerprint.json",
        "--model-dir",
        "models/ex3",
        "--history",
        "ex3.csv",
        "--summary",
        "ex3.json",
    ]


def test_a_nearly_full_disk_stops_training_before_it_starts(tmp_path, monkeypatch, capsys):
    import shutil as sh

    from denselab.core import files
    from stages import train as T

    args = _stage_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        files.shutil, "disk_usage", lambda path: sh._ntuple_diskusage(10**9, 10**9 - 2_000_000, 2_000_000)
    )
    monkeypatch.setattr(T, "train", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit) as exit_:
        T.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1
    # ex3: 623,290 weights, each with two Adam moments, 4 bytes apiece, plus the file's overhead.
    assert err[0] == (
        "error: models/ex3: ex3's model needs about 8.5 MB free, and its filesystem has 2.0 MB; "
        "free some space, or keep data/ on a larger disk"
    )
    assert not (tmp_path / "models").exists()


def test_a_write_that_fails_is_one_line_naming_the_path(tmp_path):
    from denselab.core.cli import StageError
    from denselab.core.files import write_text

    (tmp_path / "report.json").mkdir()  # a folder where the file should go: the final rename fails
    with pytest.raises(StageError, match=r"report.json: cannot write it \(Is a directory\); [\d,.]+ MB free there"):
        write_text(tmp_path / "report.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left behind


@pytest.mark.e2e
def test_the_history_grows_on_disk_while_training_runs(tmp_path):
    """Read the history CSV mid-run: one row per finished epoch, rewritten whole (never a torn file)."""
    import os
    import subprocess
    import sys
    import time

    args = _stage_folder(tmp_path, n_train=1000, epochs=20, batch_size=16)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stages.train", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = set()
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            history = tmp_path / "ex3.csv"
            if history.is_file():
                lines = history.read_text().splitlines()
                assert lines[0] == ",".join(HISTORY_COLUMNS)
                assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(1, len(lines)))
                if proc.poll() is None:
                    seen.add(len(lines) - 1)
            time.sleep(0.02)
        out = proc.communicate(timeout=300)[0]
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert len([n for n in seen if 0 < n < 20]) >= 3, sorted(seen)  # caught mid-run, more than once
    assert "s left - loss" in out


@pytest.mark.e2e
def test_an_exercise_trains_evaluates_and_saves_on_the_jax_backend(tmp_path):
    """Keras' other backends take the standard path: model.fit and Keras' Adam, a model any Keras loads."""
    import os
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("jax")

    args = _stage_folder(tmp_path, epochs=3, batch_size=32)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "jax"}

    def run(*command: str) -> str:
        out = subprocess.run(
            [sys.executable, *command], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
        return out.stdout + out.stderr

    log = run("-m", "stages.train", *args)
    assert "fast training loop unavailable (Keras runs on jax" in log and "fused Adam unavailable" in log
    assert "Epoch 3/3" in log
    run(
        "-m",
        "stages.evaluate",
        "--exercise",
        "ex3",
        "--seed",
        "42",
        "--model-dir",
        "models/ex3",
        "--prepared",
        "prepared",
        "--history",
        "ex3.csv",
        "--metrics",
        "metrics.json",
        "--predictions",
        "predictions.csv",
        "--evidence",
        "evidence.npz",
        "--run",
        "runs/ex3/seed-42.json",
    )
    # evaluate loaded the model on JAX and predicted with it; the file names Keras' own Adam, which any Keras loads.
    with zipfile.ZipFile(tmp_path / "models/ex3/model.keras") as saved:
        config = json.loads(saved.read("config.json"))
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam", config["compile_config"]
    accuracy = json.loads((tmp_path / "metrics.json").read_text())["test_accuracy"]
    assert accuracy > 0.5
    # The lab's run's record, in replicate's shape: the test accuracy, and the curves as train wrote them.
    record = json.loads((tmp_path / "runs/ex3/seed-42.json").read_text())
    assert (record["exercise"], record["seed"], record["test_accuracy"]) == ("ex3", 42, accuracy)
    written = (tmp_path / "ex3.csv").read_text().splitlines()
    assert [f"{v:.6g}" for v in record["history"]["val_accuracy"]] == [row.split(",")[4] for row in written[1:]]
