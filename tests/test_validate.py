"""validate: what params.yaml implies for this machine, checked before TensorFlow runs."""

from __future__ import annotations

import pytest

from denselab.core.config import ParamsError
from denselab.study.claim_tests import parse_with_claims
from denselab.training.resources import training_memory
from stages import validate as V
from tests.fixtures import without_claims


def test_the_labs_exercises_fit_in_a_few_gigabytes(params_data):
    params = parse_with_claims(params_data)
    V.check_resources(params, memory=4_000_000_000)
    # ex5: 11,018,762 weights x 16 bytes, the loop's 32 MiB chunk, 12 bytes per unit (3,594 of them) for a
    # 2,048-row validation batch, 1 GB of runtime.
    assert training_memory(3072, params.exercises["ex5"]) == 16 * 11_018_762 + 2**25 + 12 * 2048 * 3594 + 10**9


def test_a_network_too_big_for_this_machine_is_refused_with_the_figures(params_copy):
    params_copy["exercises"]["ex2"]["layers"][0]["units"] = 100_000_000
    without_claims(params_copy)  # ex2 no longer differs from ex1 and ex3 in one aspect
    with pytest.raises(ParamsError) as error:
        V.check_resources(parse_with_claims(params_copy), memory=24_000_000_000)
    assert str(error.value) == (
        "exercises.ex2.layers: layers of 100000000, 10 units on 784 inputs need about 3,730,633.8 MB to train "
        "(79,500,000,010 weights, each with a gradient and two Adam moments), and this machine has 24,000.0 MB available"
    )


def test_a_validation_split_that_leaves_no_rows_is_refused(params_copy):
    params_copy["exercises"]["ex5"]["validation_split"] = 0.99999
    with pytest.raises(
        ParamsError,
        match=r"^exercises.ex5.validation_split: 0.99999 holds out all of cifar10's 50,000 "
        r"training rows \(0 left to train on\)",
    ):
        V.check_resources(parse_with_claims(params_copy), memory=None)


def test_available_memory_reads_the_kernels_figure(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n")
    monkeypatch.setattr(V, "MEMINFO", meminfo)
    assert V.available_memory() == 20_000_000 * 1024
    monkeypatch.setattr(V, "MEMINFO", tmp_path / "missing")
    assert V.available_memory() is None  # then only the split is checked
