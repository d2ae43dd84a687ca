"""Files written whole or not at all: a folder replaced as a whole keeps the old one until the new one is in place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from denselab.core.files import replaced_folder, sha256_file
from tests.conftest import ROOT


def _old(folder: Path) -> None:
    folder.mkdir()
    (folder / "old.txt").write_text("the old run\n")


def test_a_replaced_folder_holds_the_new_files_only(tmp_path):
    _old(tmp_path / "figures")
    with replaced_folder(tmp_path / "figures") as staging:
        (staging / "new.txt").write_text("the new run\n")
    assert [p.name for p in (tmp_path / "figures").iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["figures"]  # no staging or old folder left beside it


def test_a_failure_while_writing_leaves_the_old_folder_untouched(tmp_path):
    _old(tmp_path / "figures")
    with pytest.raises(RuntimeError), replaced_folder(tmp_path / "figures") as staging:
        (staging / "new.txt").write_text("half")
        raise RuntimeError("the stage failed")
    assert [p.name for p in tmp_path.iterdir()] == ["figures"]
    assert (tmp_path / "figures" / "old.txt").read_text() == "the old run\n"


def test_an_interruption_between_moving_the_old_folder_aside_and_the_new_one_in_puts_the_old_one_back(
    tmp_path, monkeypatch
):
    _old(tmp_path / "figures")
    moved_in = Path.rename

    def interrupted(self, target):  # Ctrl-C lands after the old folder went aside, before the new one came in
        assert not (tmp_path / "figures").exists()
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt), replaced_folder(tmp_path / "figures") as staging:
        (staging / "new.txt").write_text("the new run\n")
    monkeypatch.setattr(Path, "rename", moved_in)
    assert [p.name for p in tmp_path.iterdir()] == ["figures"]
    assert [p.name for p in (tmp_path / "figures").iterdir()] == ["old.txt"]


def test_a_process_killed_between_the_two_moves_leaves_the_old_folder_whole_beside(tmp_path):
    """SIGKILL runs no cleanup: the old folder is then where it was moved aside, whole (before, it was deleted
    first, and a kill there lost both)."""
    _old(tmp_path / "figures")
    code = (
        "import os, signal, sys; from pathlib import Path; from denselab.core.files import replaced_folder\n"
        "Path.rename = lambda self, target: os.kill(os.getpid(), signal.SIGKILL)\n"
        "with replaced_folder(Path(sys.argv[1])) as staging:\n"
        "    (staging / 'new.txt').write_text('the new run')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "figures")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == -9
    (aside,) = tmp_path.glob(".figures.old.*")
    assert (aside / "old.txt").read_text() == "the old run\n"


def test_sha256_file_is_hashlibs_digest_of_the_bytes(tmp_path):
    (tmp_path / "x").write_bytes(b"abc")
    assert sha256_file(tmp_path / "x") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
