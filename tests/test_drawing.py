"""What the drawing stages share: seaborn loaded without the parts of SciPy no figure uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def _run(code: str, pythonpath: str = str(ROOT)) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_seaborn_draws_without_scipy_and_leaves_it_importable():
    found = _run(
        "import json, sys\n"
        "import numpy as np\n"
        "from denselab.report.drawing import seaborn\n"
        "sns = seaborn()\n"
        "skipped = [m for m in ('scipy.stats', 'scipy.cluster') if m in sys.modules]\n"
        "ax = sns.heatmap(np.eye(3), annot=True)\n"
        "sns.histplot(x=np.arange(50.0), bins=5, stat='percent', ax=ax)\n"
        "import scipy.stats\n"
        "print(json.dumps({'imported': skipped, 'seaborn': sns.__name__, 'stats': scipy.stats.t.ppf(0.5, 3)}))\n"
    )
    assert found == {"imported": [], "seaborn": "seaborn", "stats": 0.0}


def test_a_seaborn_that_needs_scipy_is_imported_whole(tmp_path):
    """The fallback: a seaborn whose import fails without SciPy is imported again, SciPy and all."""
    fake = tmp_path / "seaborn"
    fake.mkdir()
    (fake / "__init__.py").write_text("import scipy.stats\nthemed = []\ndef set_theme(**kw):\n    themed.append(kw)\n")
    found = _run(
        "import json, sys\n"
        "from denselab.report.drawing import seaborn\n"
        "sns = seaborn()\n"
        "print(json.dumps({'file': sns.__file__, 'themed': sns.themed, 'stats': 'scipy.stats' in sys.modules}))\n",
        pythonpath=os.pathsep.join([str(tmp_path), str(ROOT)]),
    )
    assert found["file"] == str(fake / "__init__.py")
    assert found["themed"] == [{"style": "whitegrid", "context": "notebook", "font_scale": 0.85}]
    assert found["stats"] is True
