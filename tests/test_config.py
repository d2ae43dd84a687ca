"""params.yaml validation: the real file parses; every kind of mistake names its key."""

from __future__ import annotations

import pytest

from denselab.config import ParamsError, load_params, parse_params
from tests.conftest import ROOT
from tests.fixtures import DELETE, set_key


def test_real_params_hold_the_labs_settings():
    params = load_params(ROOT / "params.yaml")
    assert set(params.exercises) == {"baseline", "ex1", "ex2", "ex3", "ex5"}
    ex3 = params.exercises["ex3"]
    assert [(layer.units, layer.activation) for layer in ex3.layers] == [(784, "relu"), (10, "sigmoid")]
    assert params.inputs[ex3.inputs].divide_by_255 is True
    assert (ex3.learning_rate, ex3.epochs, ex3.batch_size, ex3.validation_split) == (0.01, 20, 128, 0.2)
    assert params.exercises["baseline"].layers[0].activation is None
    assert params.inputs[params.exercises["baseline"].inputs].divide_by_255 is False
    ex5 = params.exercises["ex5"]
    assert (ex5.learning_rate, ex5.epochs, params.inputs[ex5.inputs].dataset) == (0.0001, 30, "cifar10")
    assert {k: e.lab_test_accuracy for k, e in params.exercises.items()} == {
        "baseline": 0.0995,
        "ex1": 0.8862,
        "ex2": 0.7468,
        "ex3": 0.9798,
        "ex5": 0.551,
    }


BAD = [
    # (dotted key to change, new value, text the error must contain)
    ("seed", "42", "seed: expected an integer"),
    ("seed", DELETE, "seed: missing"),
    ("seed", None, "seed: expected an integer >= 0, got nothing (null)"),
    ("studdy", {"seeds": [5]}, "studdy: unknown key; allowed here: datasets, exercises, inputs, report, seed, study"),
    ("extra", 1, "extra: unknown key"),
    ("exercises.ex2.epochs", "ten", "exercises.ex2.epochs: expected an integer >= 1, got str 'ten'"),
    ("exercises.ex2.epochs", True, "exercises.ex2.epochs: expected an integer >= 1, got a boolean"),
    ("exercises.ex2.epochs", 0, "exercises.ex2.epochs: expected an integer >= 1, got 0"),
    ("exercises.ex2.epochs", -3, "exercises.ex2.epochs: expected an integer >= 1, got -3"),
    ("exercises.ex2.batch_size", 0, "exercises.ex2.batch_size: expected an integer >= 1"),
    ("exercises.ex2.layers.0.units", 0, "exercises.ex2.layers[0].units: expected an integer >= 1"),
    ("exercises.ex2.learning_rate", 0, "exercises.ex2.learning_rate: expected a number > 0"),
    ("exercises.ex2.learning_rate", -0.1, "exercises.ex2.learning_rate: expected a number > 0"),
    ("exercises.ex2.learning_rate", "1e-4", "write 1.0e-4"),
    ("exercises.ex2.learning_rate", False, "exercises.ex2.learning_rate: expected a number > 0, got a boolean"),
    ("exercises.ex2.validation_split", 0, "exercises.ex2.validation_split: expected a number in (0, 1)"),
    ("exercises.ex2.validation_split", 1, "exercises.ex2.validation_split: expected a number in (0, 1)"),
    ("exercises.ex2.validation_split", 1.5, "exercises.ex2.validation_split: expected a number in (0, 1), got 1.5"),
    ("exercises.ex2.layers.0.activation", "rellu", "did you mean 'relu'?"),
    ("exercises.ex2.loss", "binary_crossentropi", "did you mean 'binary_crossentropy'?"),
    ("exercises.ex2.optimizer", "adma", "did you mean 'adam'?"),
    ("exercises.ex2.inputs", "mnist_scaeld", "did you mean 'mnist_scaled'?"),
    ("exercises.ex2.epoch", 3, "exercises.ex2.epoch: unknown key"),
    ("exercises.ex2.layers", [], "exercises.ex2.layers: expected a non-empty list"),
    ("exercises.ex2.layers.1.units", 9, "exercises.ex2.layers: the last layer is the output and must have 10 units"),
    ("exercises", {}, "exercises: must not be empty"),
    ("exercises.ex2", "x", "exercises.ex2: expected a mapping"),
    ("inputs.mnist_raw.dataset", "mnits", "did you mean 'mnist'?"),
    ("inputs.mnist_raw.divide_by_255", "no", "inputs.mnist_raw.divide_by_255: expected true or false"),
    ("datasets.mnist.sha256", "abc", "datasets.mnist.sha256: expected 64 hexadecimal digits"),
    ("datasets.mnist.url", "ftp://x/mnist.npz", "datasets.mnist.url: expected an http(s):// or file:// URL"),
    ("datasets.svhn", {"url": "https://x/y", "sha256": "0" * 64}, "datasets.svhn: unknown dataset name"),
    ("report.language", "fr", "report.language: unknown language 'fr'; allowed: en, vi"),
    (
        "exercises.ex2.description",
        {"en": "x", "fr": "y"},
        "exercises.ex2.description.fr: unknown key; allowed here: en, vi",
    ),
    ("exercises.ex2.description", {"vi": 3}, "exercises.ex2.description.vi: expected a string, got int 3"),
    ("exercises.ex2.lab_test_accuracy", 97.98, "exercises.ex2.lab_test_accuracy: expected a number in [0, 1]"),
    (
        "exercises.ex2.precision",
        "bfloat16",
        "exercises.ex2.precision: unknown precision 'bfloat16'; allowed: float32, mixed_bfloat16; did you mean 'mixed_bfloat16'?",
    ),
    ("exercises.ex2.precision", DELETE, "exercises.ex2.precision: missing (required)"),
    # The seeds study.
    ("study.seeds", [], "study.seeds: expected a non-empty list, got a list"),
    ("study.seeds", 5, "study.seeds: expected a non-empty list, got int 5"),
    ("study.seeds", [1, -2], "study.seeds[1]: expected an integer >= 0, got -2"),
    ("study.seeds", [1, 2.5], "study.seeds[1]: expected an integer >= 0, got float 2.5"),
    ("study.seeds", [1, "3"], "study.seeds[1]: expected an integer >= 0, got str '3'"),
    ("study.seeds", [1, True], "study.seeds[1]: expected an integer >= 0, got a boolean"),
    ("study.seeds", [1, 2, 1], "study.seeds[2]: 1 is already in the list"),
    (
        "study.seeds",
        [1, 42],
        "study.seeds: 42 is the top-level seed; its run (the lab's run) is always part of the study",
    ),
    ("study.exercises", [], "study.exercises: expected a non-empty list"),
    (
        "study.exercises",
        ["ex1", "ex9"],
        "study.exercises[1]: unknown exercise 'ex9'; allowed: baseline, ex1, ex2, ex3, ex5",
    ),
    ("study.exercises", ["ex1", "ex22"], "did you mean 'ex2'?"),
    ("study.exercises", ["ex1", "ex1"], "study.exercises[1]: 'ex1' is already in the list"),
    ("study.runs", 3, "study.runs: unknown key; allowed here: exercises, seeds"),
    ("study", DELETE, "study: missing"),
]


@pytest.mark.parametrize("key, value, message", BAD, ids=[f"{k}={v!r}"[:60] for k, v, _ in BAD])
def test_bad_values_are_rejected_naming_the_key(params_copy, key, value, message):
    set_key(params_copy, key, value)
    with pytest.raises(ParamsError) as info:
        parse_params(params_copy)
    assert message in str(info.value)


def test_study_runs_the_lab_seed_first_then_the_listed_ones(params_copy):
    params_copy["seed"] = 7
    params_copy["study"] = {"seeds": [3, 0, 42], "exercises": ["ex3", "ex1"]}
    study = parse_params(params_copy).study
    assert study.all_seeds(7) == (7, 3, 0, 42)
    assert study.exercises == ("ex3", "ex1")


def test_one_change_pairs_are_the_labs_comparisons(params_copy):
    from denselab.config import one_change_pairs

    params = parse_params(params_copy)
    assert one_change_pairs(params) == [("ex1", "ex2", "activations"), ("ex2", "ex3", "input scaling")]
    assert one_change_pairs(params, ["ex3", "ex2"]) == [("ex2", "ex3", "input scaling")]
    params_copy["exercises"]["ex3"]["epochs"] = 30  # ex3 now differs from ex2 in two settings
    assert one_change_pairs(parse_params(params_copy)) == [("ex1", "ex2", "activations")]


def test_yaml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\nexercises: [\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML"):
        load_params(path)


def test_missing_file_is_a_params_error(tmp_path):
    with pytest.raises(ParamsError, match="cannot read it"):
        load_params(tmp_path / "nope.yaml")


def test_config_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, denselab.config as c; c.load_params(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
