"""Stage plumbing: loading TensorFlow for a stage."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("keras")


@pytest.mark.e2e
def test_load_tensorflow_skips_keras_optional_imports_but_leaves_them_importable():
    code = (
        "import json, sys; from stages.cli import load_tensorflow; load_tensorflow();"
        "seen = {m: m in sys.modules for m in ('tensorflow', 'keras', 'sklearn', 'matplotlib', 'pandas')};"
        "import sklearn, matplotlib.pyplot, pandas; print(json.dumps(seen))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"tensorflow": True, "keras": True, "sklearn": False, "matplotlib": False, "pandas": False}
