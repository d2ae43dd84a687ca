"""Shared pytest fixtures: the project root, the real params, tiny datasets, a loopback server."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.fixtures import LoopbackServer, read_params

ROOT = Path(__file__).resolve().parents[1]
REAL_MNIST = ROOT.parent / "shared" / "datasets" / "mnist"


@pytest.fixture(scope="session")
def params_data() -> dict:
    """The project's params.yaml, with the keys of the files beside it, as plain data (tests deep-copy it before
    editing)."""
    return read_params(ROOT)


@pytest.fixture
def params_copy(params_data) -> dict:
    return copy.deepcopy(params_data)


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv
