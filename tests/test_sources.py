"""Which code a stage runs (denselab.core.sources) and the sources stage that writes it down, one file per stage."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from denselab.core.sources import closure, data_files, hashes, local_imports, stage_names
from stages import sources as S


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_every_form_of_import_is_followed():
    source = """
        import json
        import denselab.training.models
        from denselab.training import loop, feed
        from denselab.core.config import Exercise
        from stages.train import train

        def later():
            from denselab.training.evaluation import predict
    """
    assert local_imports(textwrap.dedent(source)) == {
        "denselab.training.models",
        "denselab.training",  # the package: its __init__ runs
        "denselab.training.loop",
        "denselab.training.feed",
        "denselab.core.config",
        "stages.train",
        "denselab.training.evaluation",
    }


def test_a_closure_holds_what_runs_packages_included_and_nothing_else(tmp_path):
    root = tree(
        tmp_path,
        {
            "stages/__init__.py": "",
            "stages/a.py": "from denselab.x import f\n",
            "stages/b.py": "import json\n",
            "denselab/__init__.py": "",
            "denselab/x.py": "def f():\n    from denselab import y\n",
            "denselab/y.py": "",
            "denselab/z.py": "",  # imported by no stage
        },
    )
    assert closure("stages.a", root) == [
        "denselab/__init__.py",
        "denselab/x.py",
        "denselab/y.py",
        "stages/__init__.py",
        "stages/a.py",
    ]
    assert closure("stages.b", root) == ["stages/__init__.py", "stages/b.py"]
    assert stage_names(root) == ["a", "b"]


def test_the_stage_writes_one_file_per_stage_whose_bytes_change_with_its_code_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    S.main(["--out", "sources"])
    written = {p.stem: p.read_bytes() for p in (tmp_path / "sources").iterdir()}
    assert set(written) == set(stage_names()) - {"sources"}
    train = json.loads(written["train"])
    assert (
        train == hashes(closure("stages.train"))
        and "denselab/training/loop.py" in train
        and "denselab/report/observations.py" not in train
    )
    S.main(["--out", "sources"])  # run again on the same code: the same bytes, so DVC reruns nothing after it
    assert {p.stem: p.read_bytes() for p in (tmp_path / "sources").iterdir()} == written


def test_the_data_a_stage_reads_is_in_its_sources_file():
    """The stages that write text read the message catalogs; the report also reads its templates; none other."""
    reads = {name: data_files(closure(f"stages.{name}")) for name in stage_names()}
    # validate checks claims.yaml with the aspects, whose names are the catalog's message ids: a catalog edit reruns
    # it (a second; its marker comes out the same, so nothing after it reruns).
    for name in ("explain", "describe", "aggregate", "judge", "validate"):
        assert reads[name] == ["denselab/core/messages/vi.po"], name
    assert {"denselab/report/templates/report.html.j2", "denselab/report/templates/style.css"} <= set(reads["report"])
    assert "denselab/core/messages/vi.po" in reads["report"]
    for name in ("train", "replicate", "evaluate", "prepare", "download", "fingerprint"):
        assert reads[name] == [], name
    assert set(reads["report"]) <= set(S.sources()["report"])


def test_the_data_folders_are_where_i18n_and_the_page_read_them():
    from denselab.core.i18n import CATALOGS
    from denselab.core.sources import DATA, ROOT
    from denselab.report.page import TEMPLATES

    assert DATA == {
        "denselab/core/i18n.py": CATALOGS.relative_to(ROOT).as_posix(),
        "denselab/report/page.py": TEMPLATES.relative_to(ROOT).as_posix(),
    }
