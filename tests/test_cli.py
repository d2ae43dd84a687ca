"""Stage plumbing: loading TensorFlow for a stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("keras")


@pytest.mark.e2e
def test_load_tensorflow_skips_keras_optional_imports_but_leaves_them_importable():
    code = (
        "import json, sys; from denselab.cli import load_tensorflow; load_tensorflow();"
        "seen = {m: m in sys.modules for m in ('tensorflow', 'keras', 'sklearn', 'matplotlib', 'pandas', 'jax')};"
        "import sklearn, matplotlib.pyplot, pandas; print(json.dumps(seen))"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {
        "tensorflow": True,
        "keras": True,
        "sklearn": False,
        "matplotlib": False,
        "pandas": False,
        "jax": False,
    }


def test_the_backend_is_keras_own_choice(tmp_path, monkeypatch):
    from denselab.cli import keras_backend

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert keras_backend() == "tensorflow"  # no keras.json yet
    (tmp_path / "keras.json").write_text('{"backend": "jax", "floatx": "float32"}')
    assert keras_backend() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert keras_backend() == "torch"
