"""A study run: the lab's training and evaluation with another seed, from the exercise's fingerprint."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from denselab.core.config import InputVariant, load_params
from denselab.data.arrays import array_hashes, write_prepared
from stages.prepare import prepare
from tests.conftest import ROOT
from tests.fixtures import mnist_arrays

pytest.importorskip("keras")

from denselab.training.fingerprints import fingerprint
from stages.replicate import replicate


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    data = prepare(mnist_arrays(n_train=200), InputVariant(dataset="mnist", divide_by_255=True))
    folder = tmp_path_factory.mktemp("prepared") / "mnist_scaled"
    write_prepared(folder, data)
    spec = dataclasses.replace(load_params(ROOT / "params.yaml").exercises["ex3"], epochs=3)
    return data, spec, folder


def test_a_run_is_the_labs_training_and_evaluation_with_another_seed(tiny):
    from denselab.training.evaluation import predict
    from denselab.training.fit import fit_exercise

    data, spec, _ = tiny
    record = replicate(data["x_train"], data["y_train"], data["x_test"], data["y_test"], spec, seed=3)
    model, history, _ = fit_exercise(data["x_train"], data["y_train"], spec, seed=3, verbose=0)
    metrics, _, _ = predict(model, data["x_test"], data["y_test"])
    assert record["seed"] == 3 and record["precision"] == "float32"
    assert (record["test_accuracy"], record["test_loss"]) == (metrics["test_accuracy"], metrics["test_loss"])
    assert record["history"]["val_accuracy"] == [float(f"{v:.6g}") for v in history["val_accuracy"]]
    other = replicate(data["x_train"], data["y_train"], data["x_test"], data["y_test"], spec, seed=4)
    assert other["history"]["loss"] != record["history"]["loss"]  # another seed, another run


@pytest.mark.e2e
def test_main_trains_from_the_fingerprint(tiny, tmp_path):
    _, spec, folder = tiny
    print_ = tmp_path / "ex3.json"
    print_.write_text(json.dumps(fingerprint("ex3", spec, folder, array_hashes(folder))))
    out = tmp_path / "runs" / "ex3" / "seed-5.json"

    def run(exercise: str) -> subprocess.CompletedProcess:
        # A process of its own: main() sets TensorFlow's threads, which only works before its first op.
        args = ["--exercise", exercise, "--seed", "5", "--fingerprint", str(print_), "--out", str(out)]
        return subprocess.run(
            [sys.executable, "-m", "stages.replicate", *args],
            check=False,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=300,
        )

    done = run("ex3")
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["exercise"] == "ex3" and record["seed"] == 5 and len(record["history"]["loss"]) == 3
    assert 0 <= record["test_accuracy"] <= 1 and "ex3, seed 5: test accuracy" in done.stderr
    wrong = run("ex1")
    assert wrong.returncode == 2 and "is the fingerprint of ex3, not of ex1" in wrong.stderr
