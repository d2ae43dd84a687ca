"""Stage plumbing: loading TensorFlow for a stage, quietly; every entry point's command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from denselab.core.cli import TENSORFLOW_IMPORT_NOISE
from tests.conftest import ROOT

pytest.importorskip("keras")


@pytest.mark.e2e
def test_load_tensorflow_skips_keras_optional_imports_but_leaves_them_importable():
    code = (
        "import json, sys; from denselab.core.cli import load_tensorflow; load_tensorflow();"
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


@pytest.mark.e2e
def test_importing_tensorflow_prints_none_of_its_start_up_log_lines():
    """TensorFlow 2.21 writes absl's preamble and oneDNN's info line to file descriptor 2 at import, whatever
    TF_CPP_MIN_LOG_LEVEL says; a stage's stderr must carry only what the stage says."""
    code = "import sys; from denselab.core.cli import load_tensorflow; load_tensorflow(); print('imported', file=sys.stderr)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stderr == "imported\n"
    # Without the filter the same import prints them: what the filter drops is still there to drop.
    bare = subprocess.run(
        [sys.executable, "-c", "import keras"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    noise = [line for line in bare.stderr.splitlines() if TENSORFLOW_IMPORT_NOISE.match(line)]
    assert noise, bare.stderr


def test_the_filter_passes_on_every_other_line_written_to_stderr(capfd):
    from denselab.core.cli import _filtered_stderr

    with _filtered_stderr(TENSORFLOW_IMPORT_NOISE):
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"E0000 00:00:1.5 12 cuda_dnn.cc:8579] Unable to register cuDNN factory\n")
        os.write(2, b"I0000 00:00:1796285547.739386    5262 port.cc:153] oneDNN custom operations are on. You may\n")
    assert capfd.readouterr().err == "E0000 00:00:1.5 12 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"


ENTRY_POINTS = sorted(
    [f"stages.{p.stem}" for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__"]
    + ["denselab.tools.access", "denselab.tools.pull"]
)


@pytest.mark.e2e
@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_names_the_command_and_does_nothing_else(tmp_path, module):
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=tmp_path,  # not a project: a command that did more than print its usage would fail here
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout.startswith(f"usage: python -m {module} ")
    assert list(tmp_path.iterdir()) == []


def test_the_backend_is_keras_own_choice(tmp_path, monkeypatch):
    from denselab.core.cli import keras_backend

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert keras_backend() == "tensorflow"  # no keras.json yet
    (tmp_path / "keras.json").write_text('{"backend": "jax", "floatx": "float32"}')
    assert keras_backend() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert keras_backend() == "torch"
