"""DVC-tracked files a stage reads but the workspace lacks, fetched from the project's DVC remote.

A student's clone of a class repository has the report and what it is made of, not the arrays (docs/class.md, "A class
on one lab server"). `dvc repro --pull --allow-missing` fetches what a stage lists as dependencies when it is
missing as a whole, never the missing files of a folder it depends on, and a folder that holds DVC's .gitignore
is never missing. So the stages that find their inputs through params.yaml fetch those they lack here, and only
those: the training stages their arrays (named by their exercise's fingerprint: DVC's matrix cannot name them),
the fingerprint stage the arrays' digests, the report the training summaries (which travel with the models).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from denselab.core.cli import StageError

# The user-info of a URL (`https://user:token@host/...`, `ssh://lab@host/...`): a token often stands there, as
# the password or as the user, so no message or log names it.
_USER_INFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s@]*@")


def redacted(text: str) -> str:
    """`text` with the user-info taken out of every URL in it (`https://user:token@host/x` -> `https://host/x`)."""
    return _USER_INFO.sub(r"\1", text)


def dvc_root(start: Path) -> Path | None:
    """The DVC project `start` is in (the nearest folder with a .dvc folder), or None."""
    for folder in [start.resolve(), *start.resolve().parents]:
        if (folder / ".dvc").is_dir():
            return folder
    return None


def run_dvc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run DVC (the one installed beside this Python) and keep what it printed."""
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False)


def remote_name(root: Path) -> str:
    """The default DVC remote of the project at `root`, as a user would recognise it: its name and URL."""

    def answer(*args: str) -> str:
        out = run_dvc(*args, cwd=root)
        return out.stdout.strip() if out.returncode == 0 else ""

    name = answer("remote", "default")
    if not name:
        return "the DVC remote (none is set: `dvc remote add -d NAME URL`)"
    url = redacted(answer("config", f"remote.{name}.url"))
    return f"the DVC remote {name!r} ({url})" if url else f"the DVC remote {name!r}"


def first_error(output: str) -> str:
    """DVC's own error line from its output, without the "ERROR: " prefix; else the last line. URLs in it lose
    their user-info (`redacted`)."""
    lines = [redacted(line.strip()) for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("ERROR:"):
            return line.removeprefix("ERROR:").strip().removeprefix("unexpected error - ")
    return lines[-1] if lines else "no output"


def pull_missing(paths: list[Path], what: str) -> None:
    """Fetch those of `paths` (DVC-tracked files) that are missing here from the project's DVC remote; `what`
    names them for the user. Nothing happens when none is missing, or when they are in no DVC project (there
    is nothing to fetch them from: the caller's own check then says what is missing). A failed fetch stops the
    stage with one line that names the remote."""
    missing = [p for p in paths if not p.exists()]
    root = dvc_root(missing[0].parent) if missing else None
    if root is None:
        return
    names = ", ".join(p.as_posix() for p in missing)
    print(f"{what}: fetching {names} from the DVC remote", file=sys.stderr, flush=True)
    out = run_dvc("pull", *(p.as_posix() for p in missing))
    if out.returncode != 0:
        raise StageError(
            f"{what}: cannot fetch {names} from {remote_name(root)}: {first_error(out.stderr + out.stdout)}"
        )
