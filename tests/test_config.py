"""params.yaml validation: the real file parses; every kind of mistake names its key."""

from __future__ import annotations

import pytest

from denselab.core.config import ParamsError, load_params
from denselab.study.claim_tests import load_with_claims, parse_with_claims
from tests.conftest import ROOT
from tests.fixtures import DELETE, set_key, without_claims

LAB = {"baseline", "ex1", "ex2", "ex3", "ex5"}


def test_real_params_hold_the_labs_settings():
    params = load_params(ROOT / "params.yaml")
    assert {name for name, e in params.exercises.items() if not e.control} == LAB
    ex3 = params.exercises["ex3"]
    assert [(layer.units, layer.activation) for layer in ex3.layers] == [(784, "relu"), (10, "sigmoid")]
    assert params.inputs[ex3.inputs].divide_by_255 is True
    assert (ex3.learning_rate, ex3.epochs, ex3.batch_size, ex3.validation_split) == (0.01, 20, 128, 0.2)
    assert params.exercises["baseline"].layers[0].activation is None
    assert params.inputs[params.exercises["baseline"].inputs].divide_by_255 is False
    ex5 = params.exercises["ex5"]
    assert (ex5.learning_rate, ex5.epochs, params.inputs[ex5.inputs].dataset) == (0.0001, 30, "cifar10")
    controls = {name: e for name, e in params.exercises.items() if e.control}
    assert len(controls) == 4 and all(e.lab_test_accuracy is None for e in controls.values())
    assert {k: e.lab_test_accuracy for k, e in params.exercises.items() if k in LAB} == {
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
    (
        "studdy",
        {"seeds": [5]},
        (
            "studdy: unknown key; allowed here: claims, datasets, descriptions, exercises, factorials, inputs, profiles, "
            "report, seed, sources, study; did you mean 'study'?"
        ),
    ),
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
    ("sources.mnist.sha256", "abc", "sources.mnist.sha256: expected 64 hexadecimal digits"),
    ("sources.mnist.url", "ftp://x/mnist.npz", "sources.mnist.url: expected an http(s):// or file:// URL"),
    ("datasets", ["mnist", "svhn"], "datasets[1]: unknown dataset name 'svhn'"),
    ("sources.svhn", {"url": "https://x/y", "sha256": "0" * 64}, "sources.svhn: unknown dataset"),
    ("sources.cifar10", DELETE, "sources: missing cifar10 (params.yaml's datasets list it)"),
    ("sources.mnist.idx_sha256", DELETE, "sources.mnist.idx_sha256: missing (required): the four IDX files' sha256"),
    ("report.language", "fr", "report.language: unknown language 'fr'; allowed: en, vi"),
    ("descriptions.ex2", {"en": "x", "fr": "y"}, "descriptions.ex2.fr: unknown key; allowed here: en, vi"),
    ("descriptions.ex2", {"vi": 3}, "descriptions.ex2.vi: expected a string, got int 3"),
    ("descriptions.ex22", {"en": "x"}, "descriptions.ex22: unknown exercise 'ex22'; allowed: baseline"),
    ("exercises.ex2.description", "x", "exercises.ex2.description: belongs in descriptions.yaml, beside params.yaml"),
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
        "study.exercises[1]: unknown exercise 'ex9'; allowed: baseline, ex1, ex2, ex3, ex5, sigmoid_x255,",
    ),
    ("study.exercises", ["ex1", "ex22"], "did you mean 'ex2'?"),
    ("study.exercises", ["ex1", "ex1"], "study.exercises[1]: 'ex1' is already in the list"),
    ("study.runs", 3, "study.runs: unknown key; allowed here: exercises, seeds"),
    ("study", DELETE, "study: missing"),
    # Controls, factorials and claims.
    (
        "exercises.sigmoid_x255.lab_test_accuracy",
        0.97,
        "exercises.sigmoid_x255.lab_test_accuracy: a control is not one of the lab's exercises",
    ),
    ("exercises.ex2.control", "yes", "exercises.ex2.control: expected true or false"),
    ("exercises.ex2.xla", "auto", "exercises.ex2.xla: expected true or false"),
    ("factorials.activation_by_scale.rows", "activation", "factorials.activation_by_scale.rows: unknown aspect"),
    ("factorials.activation_by_scale.columns", "hidden activations", "the same aspect as rows"),
    (
        "factorials.activation_by_scale.cells",
        [["ex1", "ex9"], ["ex2", "ex3"]],
        "factorials.activation_by_scale.cells[0][1]: unknown exercise 'ex9'",
    ),
    ("factorials.activation_by_scale.cells", [["ex1", "ex2", "ex3"]], "expected two rows of two exercises"),
    ("claims.ex2_relu_worse.exercise", "ex9", "claims.ex2_relu_worse.exercise: unknown exercise 'ex9'"),
    ("claims.ex2_relu_worse.text", DELETE, "claims.ex2_relu_worse.text: missing"),
    ("claims.ex2_relu_worse.text", {"fr": "x"}, "claims.ex2_relu_worse.text.fr: unknown key"),
    ("claims.ex2_relu_worse.test.factorial", "scale", "claims.ex2_relu_worse.test.factorial: unknown factorial"),
    (
        "claims.ex2_relu_worse.test.aspect",
        "epochs",
        (
            "claims.ex2_relu_worse.test.aspect: unknown aspect of factorial activation_by_scale 'epochs'; allowed: "
            "hidden activations, input scaling"
        ),
    ),
    (
        "claims.ex2_relu_worse.test.better",
        "tanh",
        "claims.ex2_relu_worse.test.better: unknown hidden activations value 'tanh'; allowed: sigmoid, relu",
    ),
    ("claims.ex1_sigmoid.test.better", "ex9", "claims.ex1_sigmoid.test.better: unknown exercise 'ex9'"),
    ("claims.ex1_sigmoid.test.aspects", ["activations"], "claims.ex1_sigmoid.test.aspects[0]: unknown aspect"),
    (
        "claims.ex2_relu_worse.test.than",
        "ex1",
        "claims.ex2_relu_worse.test: expected one kind of test",
    ),
    ("claims.ex5_validation_loss.test.metric", "loss", "claims.ex5_validation_loss.test.metric: unknown curve 'loss'"),
    ("claims.ex5_validation_loss.test.margin", 0, "claims.ex5_validation_loss.test.margin: expected a number > 0"),
    ("claims.ex5_too_simple.test", None, "claims.ex5_too_simple.test: missing; a claim without a test says why"),
    ("claims.ex5_too_simple.because", "x", "claims.ex5_too_simple.because: unknown key"),
    # A claim may name a profile's exercise (profiles.yaml) before it is applied, not an exercise nobody defines.
    (
        "claims.ex5_too_simple.test.better",
        "ex5_deepr",
        (
            "claims.ex5_too_simple.test.better: unknown exercise 'ex5_deepr'; allowed: baseline, ex1, ex2, ex3, ex5, "
            "sigmoid_x255, baseline_sigmoid_output, baseline_sigmoid_hidden, baseline_sigmoid_both, ex5_deeper; did "
            "you mean 'ex5_deeper'?"
        ),
    ),
    # A profile's exercise is checked as params.yaml's are; what it adds to the study must exist.
    (
        "profiles.full_study.exercises.ex5_deeper.epochs",
        "ten",
        "profiles.full_study.exercises.ex5_deeper.epochs: expected an integer >= 1, got str 'ten'",
    ),
    ("profiles.full_study.study.exercises", "ex5", "profiles.full_study.study.exercises: expected a non-empty list"),
    ("profiles.full_study.study.seed", [5], "profiles.full_study.study.seed: unknown key"),
    ("profiles.full-study", {}, "profiles.full-study: expected a name"),
]


@pytest.mark.parametrize("key, value, message", BAD, ids=[f"{k}={v!r}"[:60] for k, v, _ in BAD])
def test_bad_values_are_rejected_naming_the_key(params_copy, key, value, message):
    set_key(params_copy, key, value)
    with pytest.raises(ParamsError) as info:
        parse_with_claims(params_copy)
    assert message in str(info.value)


def test_a_misspelt_required_key_is_named_with_the_key_it_should_be(params_copy):
    ex2 = params_copy["exercises"]["ex2"]
    ex2["learnig_rate"] = ex2.pop("learning_rate")
    with pytest.raises(ParamsError) as info:
        parse_with_claims(params_copy)
    assert str(info.value) == (
        "exercises.ex2.learning_rate: missing (required); is exercises.ex2.learnig_rate a misspelling of it?"
    )


# Valid params that leave one of the lab's comparisons comparing more (or other) than it names: an experiment, so
# accepted; validate warns (one line per comparison) and judge says "not tested". Edits a student makes first.
UNTESTABLE = [
    (
        "exercises.ex2.learning_rate",
        0.001,
        (
            "claims.yaml: factorials.activation_by_scale: ex2 and ex3 now differ in learning rate as well; ex1 and ex2 "
            "now differ in learning rate as well: ex2_relu_worse, ex3_scaling will be judged not tested"
        ),
    ),
    (
        "exercises.ex2.layers.0.activation",
        "sigmoid",
        (
            "factorials.activation_by_scale: ex2 and ex3 now differ in hidden activations as well; ex1 and ex2 no longer "
            "differ in hidden activations: ex2_relu_worse, ex3_scaling will be judged not tested"
        ),
    ),
    (
        "exercises.sigmoid_x255.learning_rate",
        0.001,
        (
            "factorials.activation_by_scale: ex1 and sigmoid_x255 now differ in learning rate as well; sigmoid_x255 and "
            "ex3 now differ in learning rate as well: ex2_relu_worse, ex3_scaling will be judged not tested"
        ),
    ),
    (
        "exercises.ex3.inputs",
        "mnist_raw",
        (
            "factorials.activation_by_scale: ex2 and ex3 no longer differ in input scaling; sigmoid_x255 and ex3 now "
            "differ in input scaling as well"
        ),
    ),
    (
        "factorials.activation_by_scale.cells",
        [["ex1", "sigmoid_x255"], ["ex2", "ex5"]],
        "ex2 and ex5 now differ in dataset, layer sizes, hidden activations, learning rate, epochs as well",
    ),
    (
        "exercises.baseline.epochs",
        5,
        (
            "claims.yaml: claims.ex1_sigmoid.test: baseline and baseline_sigmoid_both now differ in epochs as well: "
            "ex1_sigmoid will be judged not tested"
        ),
    ),
    (
        "claims.ex1_sigmoid.test.than",
        "ex1",
        (
            "claims.ex1_sigmoid.test: ex1 and baseline_sigmoid_both now differ in epochs as well and no longer differ in "
            "hidden activations, output activation"
        ),
    ),
    (
        "exercises.ex5.epochs",
        10,
        (
            "claims.ex5_validation_loss.test: ex5's curve now ends at epoch 10, the claim reads it after epoch 15: "
            "ex5_validation_loss will be judged not tested"
        ),
    ),
]


@pytest.mark.parametrize("key, value, warning", UNTESTABLE, ids=[f"{k}={v!r}"[:60] for k, v, _ in UNTESTABLE])
def test_an_edit_that_confounds_a_claim_is_accepted_and_reported(params_copy, key, value, warning):
    from denselab.study.claim_tests import untestable

    assert untestable(parse_with_claims(params_copy)) == []
    set_key(params_copy, key, value)
    lines = untestable(parse_with_claims(params_copy))
    assert any(warning in line for line in lines), lines


def test_study_runs_the_lab_seed_first_then_the_listed_ones(params_copy):
    params_copy["seed"] = 7
    params_copy["study"] = {"seeds": [3, 0, 42], "exercises": ["ex3", "ex1"]}
    study = parse_with_claims(params_copy).study
    assert study.all_seeds(7) == (7, 3, 0, 42)
    assert study.exercises == ("ex3", "ex1")


def test_one_change_pairs_are_the_labs_comparisons(params_copy):
    from denselab.study.aspects import one_change_pairs

    params = parse_with_claims(params_copy)
    assert one_change_pairs(params, sorted(LAB)) == [
        ("ex1", "ex2", "hidden activations"),
        ("ex2", "ex3", "input scaling"),
    ]
    assert one_change_pairs(params, ["ex3", "ex2"]) == [("ex2", "ex3", "input scaling")]
    assert ("baseline", "baseline_sigmoid_output", "output activation") in one_change_pairs(params)
    without_claims(params_copy)
    params_copy["exercises"]["ex3"]["epochs"] = 30  # ex3 now differs from ex2 in two settings
    assert one_change_pairs(parse_with_claims(params_copy), sorted(LAB)) == [("ex1", "ex2", "hidden activations")]


def test_the_aspects_are_the_settings_keys(params_copy):
    from denselab.core.i18n import Language
    from denselab.study.aspects import ASPECTS, settings

    params = parse_with_claims(params_copy)
    ex5 = params.exercises["ex5"]
    assert tuple(settings(ex5, params.inputs[ex5.inputs])) == ASPECTS
    vi = Language("vi")
    assert all(vi.gettext(aspect) != aspect for aspect in ASPECTS)  # the catalog translates each
    assert settings(ex5, params.inputs[ex5.inputs])["hidden activations"] == ("relu", "relu")


def test_claims_and_factorials_are_optional(params_copy):
    without_claims(params_copy)
    params = parse_with_claims(params_copy)
    assert params.claims == {} and params.factorials == {}


def test_a_factorial_knows_its_cells_and_values(params_copy):
    factorial = parse_with_claims(params_copy).factorials["activation_by_scale"]
    assert factorial.exercises() == ("ex1", "sigmoid_x255", "ex2", "ex3")
    assert factorial.row_levels == ("sigmoid", "relu") and factorial.column_levels == ("raw", "x/255")


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

    code = "import sys, denselab.core.config as c; c.load_params(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_claims_live_in_claims_yaml_beside_params(tmp_path, params_copy):
    from tests.fixtures import write_params

    write_params(tmp_path, params_copy)
    assert len(load_with_claims(tmp_path / "params.yaml").claims) == len(params_copy["claims"])
    # A mistake in a claim names claims.yaml; one in an exercise, params.yaml.
    params_copy["claims"]["ex2_relu_worse"]["exercise"] = "ex9"
    write_params(tmp_path, params_copy)
    with pytest.raises(ParamsError, match=r"claims.yaml: claims.ex2_relu_worse.exercise: unknown exercise 'ex9'"):
        load_with_claims(tmp_path / "params.yaml")
    # The stages that download, prepare and train read no claim (validate, before them, refuses the mistake).
    assert load_params(tmp_path / "params.yaml").claims == {}
    params_copy["claims"]["ex2_relu_worse"]["exercise"] = "ex2"
    params_copy["exercises"]["ex2"]["epochs"] = "ten"
    write_params(tmp_path, params_copy)
    with pytest.raises(ParamsError, match=r"params.yaml: exercises.ex2.epochs: expected an integer"):
        load_params(tmp_path / "params.yaml")


def test_each_file_beside_params_holds_its_own_keys_and_its_mistakes_name_it(tmp_path, params_copy):
    from tests.fixtures import write_params

    params_copy["sources"]["mnist"]["sha256"] = "abc"
    write_params(tmp_path, params_copy)
    with pytest.raises(ParamsError, match=r"/datasets.yaml: sources.mnist.sha256: expected 64 hexadecimal digits"):
        load_params(tmp_path / "params.yaml")
    params_copy["sources"]["mnist"]["sha256"] = "0" * 64
    params_copy["descriptions"]["ex2"]["fr"] = "y"
    write_params(tmp_path, params_copy)
    with pytest.raises(ParamsError, match=r"/descriptions.yaml: descriptions.ex2.fr: unknown key"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "datasets.yaml").write_text("sources: {}\ndescriptions: {}\n")
    with pytest.raises(ParamsError, match=r"/datasets.yaml: descriptions: belongs in descriptions.yaml, beside it"):
        load_params(tmp_path / "params.yaml")


def test_claims_in_the_wrong_file_or_unknown_keys_are_refused(tmp_path, params_data):
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_data))  # claims and factorials in params.yaml
    with pytest.raises(ParamsError, match=r"params.yaml: claims: belongs in claims.yaml, beside it"):
        load_params(tmp_path / "params.yaml")
    rest = {
        k: v for k, v in params_data.items() if k not in ("claims", "factorials", "sources", "descriptions", "profiles")
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(rest))
    (tmp_path / "datasets.yaml").write_text(yaml.safe_dump({"sources": params_data["sources"]}))
    (tmp_path / "claims.yaml").write_text("claims: {}\nclaimz: {}\n")
    with pytest.raises(ParamsError, match=r"claims.yaml: claimz: unknown key; allowed here: factorials, claims"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "claims.yaml").unlink()  # no claims file: nothing to test, nothing refused
    assert load_with_claims(tmp_path / "params.yaml").claims == {}


def test_every_mistake_is_one_line_naming_its_file_and_key(tmp_path, params_copy):
    from tests.fixtures import write_params

    params_copy["exercises"]["ex2"]["epochs"] = True
    params_copy["exercises"]["ex3"]["optimizer"] = "adma"
    params_copy["sources"]["mnist"]["sha256"] = "abc"
    params_copy["descriptions"]["ex22"] = params_copy["descriptions"].pop("ex2")
    write_params(tmp_path, params_copy)
    with pytest.raises(ParamsError) as info:
        load_params(tmp_path / "params.yaml")
    assert [line.replace(str(tmp_path), "") for line in str(info.value).splitlines()] == [
        "/params.yaml: exercises.ex2.epochs: expected an integer >= 1, got a boolean (true)",
        (
            "/params.yaml: exercises.ex3.optimizer: unknown optimizer 'adma'; allowed: adam, adamw, nadam, rmsprop, sgd; "
            "did you mean 'adam'?"
        ),
        "/datasets.yaml: sources.mnist.sha256: expected 64 hexadecimal digits (a sha256), got 'abc'",
        (
            "/descriptions.yaml: descriptions.ex22: unknown exercise 'ex22'; allowed: baseline, ex1, ex2, ex3, ex5, "
            "sigmoid_x255, baseline_sigmoid_output, baseline_sigmoid_hidden, baseline_sigmoid_both, ex5_deeper; did you "
            "mean 'ex2'?"
        ),
    ]
