"""Files the stages write and read: atomic writes, whole folders replaced at once, free space, hashes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from denselab.core.cli import StageError


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; move it onto `dest` only if the block succeeds.

    A crash or an error leaves the previous `dest` (or nothing) in place, never a
    half-written file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp" + "".join(dest.suffixes), dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes the file private; give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except OSError as exc:  # a full disk, a read-only folder: one line, not a traceback
        raise StageError(
            f"{dest}: cannot write it ({exc.strerror or exc}); {free_space(dest.parent)} free there"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


def megabytes(n: float) -> str:
    """A size for people: 12.3 MB, 1,234.5 MB."""
    return f"{n / 1e6:,.1f} MB"


def free_bytes(folder: Path) -> int:
    """The free bytes of the filesystem that holds `folder`, or would hold it once created."""
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    return shutil.disk_usage(existing).free


def free_space(folder: Path) -> str:
    """The free space of the filesystem that holds `folder` (or would hold it), for messages."""
    return megabytes(free_bytes(folder))


def require_free_space(folder: Path, need: int, what: str) -> None:
    """Stop before the work starts when the filesystem of `folder` has less than `need` bytes free."""
    free = free_bytes(folder)
    if free < need:
        raise StageError(
            f"{folder}: {what} needs about {megabytes(need)} free, and its filesystem has {megabytes(free)}; "
            "free some space, or keep data/ on a larger disk"
        )


@contextlib.contextmanager
def replaced_folder(folder: Path) -> Iterator[Path]:
    """Yield an empty staging folder beside `folder`; on success it replaces `folder` as a whole, so no stale
    file survives. The old folder is moved aside, the new one moved in, and only then is the old one removed: a
    failure, or an interruption between the two moves, puts the old folder back; a process killed there leaves it
    whole beside, as `.<name>.old.*`."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    aside: Path | None = None
    try:
        yield staging
        os.chmod(staging, 0o755)
        if folder.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            os.replace(folder, aside)  # onto an empty folder of a name no one else has: one rename
        try:
            staging.rename(folder)
        except BaseException:
            if aside is not None:
                os.replace(aside, folder)
                aside = None
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


def write_text(dest: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
