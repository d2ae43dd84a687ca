"""Shared pytest fixtures: the project root, the real params, tiny datasets, a loopback server."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.fixtures import LoopbackServer

ROOT = Path(__file__).resolve().parents[1]
REAL_MNIST = ROOT.parent / "shared" / "datasets" / "mnist"


@pytest.fixture(scope="session")
def params_data() -> dict:
    """The project's params.yaml, with the keys of the files beside it, as plain data (tests deep-copy it before
    editing)."""
    from denselab.config import SIDE_FILES

    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name in SIDE_FILES:
        data |= yaml.safe_load((ROOT / name).read_text())
    return data


@pytest.fixture
def params_copy(params_data) -> dict:
    return copy.deepcopy(params_data)


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv
