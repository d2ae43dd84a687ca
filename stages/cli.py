"""What every stage's `main()` shares: clean error exits and atomic output files."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from stages.config import ParamsError


class StageError(RuntimeError):
    """A stage cannot go on; the message says why and what to do."""


class DataError(ValueError):
    """A data file is corrupt, hostile or not what it claims to be."""


def stage_main(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn the expected failures of a stage into one clear line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ParamsError, DataError, StageError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper


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


# Keras imports these, if installed, for its scikit-learn wrappers, image plotting, notebook
# detection and DataFrame inputs, and falls back when the import fails. The stages use none of
# them; skipping them saves 1.5-2 s of every training or evaluating stage's 4.6 s start-up
# (measured), a third of a full run's overhead on top of the training itself.
KERAS_OPTIONAL = ("sklearn", "matplotlib", "IPython", "pandas")
# TensorFlow's lite converter imports JAX, if installed, for a conversion path the stages never take:
# 0.5 s and about 100 MB more per stage (measured). Skipped unless Keras itself runs on JAX.
TENSORFLOW_OPTIONAL = ("jax", "jaxlib")


def keras_backend() -> str:
    """The backend Keras will load: $KERAS_BACKEND, else keras.json's, else TensorFlow (Keras' own rule)."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "keras.json"
    try:
        return str(json.loads(config.read_text()).get("backend") or "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def load_tensorflow() -> None:
    """Import TensorFlow and Keras for a stage: without TensorFlow's C++ info lines (they drown the
    per-epoch log) and without Keras' optional integrations (`KERAS_OPTIONAL`; `TENSORFLOW_OPTIONAL` too
    when Keras runs on TensorFlow).

    Those packages stay importable afterwards; only the optional helpers that wanted them are off.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" in sys.modules:
        return
    optional = KERAS_OPTIONAL + (TENSORFLOW_OPTIONAL if keras_backend() == "tensorflow" else ())
    blocked = [name for name in optional if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        import keras  # noqa: F401  (imports TensorFlow)
    finally:
        for name in blocked:
            del sys.modules[name]


@contextlib.contextmanager
def replaced_folder(folder: Path) -> Iterator[Path]:
    """Yield an empty staging folder beside `folder`; on success it replaces `folder` as a whole, so no stale
    file survives and a failure leaves the old folder untouched."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield staging
        os.chmod(staging, 0o755)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text(dest: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
