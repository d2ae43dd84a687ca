"""Stage `download@<dataset>`: fetch a dataset, verify its sha256, save Keras-shaped uint8 arrays.

    python -m stages.download --dataset mnist --out data/raw/mnist.npz

Set DENSELAB_DATA_MIRROR to a directory, a file:// or an http(s):// URL to take the
same file name from there instead of the dataset's URL (offline use, a lab server).
A MNIST mirror may instead hold the four original IDX files, raw or gzipped.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from denselab.core.cli import StageError, argument_parser, stage_main
from denselab.core.config import IDX_FILES, DatasetSource, load_params
from denselab.core.files import atomic_path, free_space, megabytes
from denselab.data.datasets import Arrays, mnist_from_idx, read_dataset, verify_sha256

MIRROR_ENV = "DENSELAB_DATA_MIRROR"
TIMEOUT = 30.0  # seconds without a byte before a connection counts as dead
RETRIES = 3
BACKOFF = 1.0  # seconds before the first retry; doubles each time


class DownloadError(StageError):
    """The file could not be fetched."""


class _NotFound(DownloadError):
    """HTTP 404: the server has no such file."""


class _Transient(DownloadError):
    """A failure worth retrying: refused or reset connection, timeout, 5xx, short body."""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _progress(name: str, total: int | None) -> Callable[[int], None]:
    """A progress reporter that prints a line every 10% (or every 10 MB when the size is unknown)."""
    state = {"next": 0.1, "next_bytes": 10 << 20, "start": time.monotonic()}

    def update(done: int) -> None:
        mb = done / 1e6
        rate = mb / max(time.monotonic() - state["start"], 1e-6)
        if total:
            while done / total >= state["next"] - 1e-9:
                _log(f"  {name}: {done / total:4.0%} of {total / 1e6:.1f} MB ({rate:.1f} MB/s)")
                state["next"] += 0.1
        elif done >= state["next_bytes"]:
            _log(f"  {name}: {mb:.0f} MB ({rate:.1f} MB/s)")
            state["next_bytes"] += 10 << 20

    return update


def _fetch_once(url: str, dest: Path, timeout: float) -> None:
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        transient = exc.code >= 500 or exc.code in (408, 429)
        error = _Transient if transient else _NotFound if exc.code == 404 else DownloadError
        raise error(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Transient(f"{url}: cannot connect ({reason})") from exc
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        update = _progress(dest.name, total)
        done = 0
        try:
            with open(dest, "wb") as f:
                while True:
                    try:
                        chunk = response.read(1 << 16)
                    except (OSError, urllib.error.URLError) as exc:  # timeouts and resets mid-body
                        raise _Transient(f"{url}: connection lost after {done} bytes ({exc})") from exc
                    if not chunk:
                        break
                    f.write(chunk)
                    done += len(chunk)
                    update(done)
        except OSError as exc:  # opening or writing `dest`: the same again would fail the same way
            raise _cannot_write(dest, exc, done) from exc
    if total is not None and done != total:
        raise _Transient(f"{url}: truncated download: got {done} of {total} bytes")


def _cannot_write(dest: Path, exc: OSError, done: int) -> DownloadError:
    """A download that this machine could not write, said as such (never retried)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DownloadError(
            f"{dest.parent}: the disk is full ({exc.strerror}) after {megabytes(done)} of {dest.name}; "
            f"{free_space(dest.parent)} free there: free some space and run again"
        )
    return DownloadError(f"{dest}: cannot write it ({exc.strerror or exc})")


def fetch(
    url: str, dest: Path, timeout: float | None = None, retries: int | None = None, backoff: float | None = None
) -> Path:
    """Download `url` to `dest`, retrying transient failures with exponential backoff.

    Unset arguments take the module's TIMEOUT, RETRIES and BACKOFF.
    """
    timeout = TIMEOUT if timeout is None else timeout
    retries = RETRIES if retries is None else retries
    backoff = BACKOFF if backoff is None else backoff
    for attempt in range(retries + 1):
        try:
            _log(f"downloading {url}")
            _fetch_once(url, dest, timeout)
            return dest
        except _Transient as exc:
            dest.unlink(missing_ok=True)
            if attempt == retries:
                raise DownloadError(f"{exc} (gave up after {retries + 1} attempts)") from exc
            wait = backoff * 2**attempt
            _log(f"  {exc}; retrying in {wait:g} s")
            time.sleep(wait)
    raise AssertionError("unreachable")


def _mirror_file(mirror: str, name: str, workdir: Path, **fetch_args) -> Path | None:
    """The file `name` from a mirror (directory, file:// or http(s)://), or None if it has none."""
    parsed = urllib.parse.urlparse(mirror)
    if parsed.scheme in ("http", "https"):
        url = mirror.rstrip("/") + "/" + urllib.parse.quote(name)
        try:
            return fetch(url, workdir / name, **fetch_args)
        except _NotFound:
            return None
    base = Path(urllib.request.url2pathname(parsed.path)) if parsed.scheme == "file" else Path(mirror)
    if not base.is_dir():
        raise DownloadError(f"{MIRROR_ENV}={mirror}: not a directory or an http(s):// URL")
    path = base / name
    return path if path.is_file() else None


def _mnist_idx_from_mirror(mirror: str, workdir: Path, **fetch_args) -> dict[str, Path] | None:
    found = {}
    for name in IDX_FILES:
        path = _mirror_file(mirror, name + ".gz", workdir, **fetch_args) or _mirror_file(
            mirror, name, workdir, **fetch_args
        )
        if path is None:
            return None
        found[name] = path
    return found


def download(dataset: str, source: DatasetSource, workdir: Path, mirror: str | None = None, **fetch_args) -> Arrays:
    """Fetch `dataset` (from `source.url`, or from `mirror`), verify it and decode its arrays.

    Files land in `workdir` (a temporary folder) and are decoded only after their
    sha256 matched; `fetch_args` (timeout, retries, backoff) go to `fetch`.
    """
    filename = Path(urllib.parse.urlparse(source.url).path).name
    path: Path | None
    if not mirror:
        path = fetch(source.url, workdir / filename, **fetch_args)
    else:
        _log(f"{dataset}: looking for {filename} in mirror {mirror}")
        path = _mirror_file(mirror, filename, workdir, **fetch_args)
        if path is None and dataset == "mnist":
            idx = _mnist_idx_from_mirror(mirror, workdir, **fetch_args)
            if idx is not None:
                _log(f"{dataset}: decoding the IDX files from the mirror")
                return mnist_from_idx(idx, source.idx_sha256 or {})  # validate requires them for mnist
        if path is None:
            also = " or the four MNIST IDX files" if dataset == "mnist" else ""
            raise DownloadError(f"mirror {mirror} has no {filename}{also}")
    verify_sha256(path, source.sha256)
    _log(f"{dataset}: sha256 ok, decoding {filename}")
    return read_dataset(dataset, path)


def save_arrays(arrays: Arrays, dest: str | Path) -> None:
    """Save the arrays as an uncompressed npz, atomically."""
    with atomic_path(dest) as tmp:
        named: dict[str, Any] = dict(arrays)
        np.savez(tmp, **named)


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.download --dataset NAME --out FILE.npz`."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("--dataset", required=True, help="a key of `datasets` in params.yaml")
    parser.add_argument("--out", type=Path, required=True, help="the decoded arrays (.npz)")
    args = parser.parse_args(argv)
    params = load_params()
    if args.dataset not in params.datasets:
        raise StageError(f"no dataset {args.dataset!r} in params.yaml datasets")
    # Downloads go to a temporary folder outside data/: nothing partial is ever left there.
    workdir = Path(tempfile.mkdtemp(prefix="denselab-download-"))
    try:
        arrays = download(args.dataset, params.datasets[args.dataset], workdir, os.environ.get(MIRROR_ENV))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    save_arrays(arrays, args.out)
    shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    _log(f"{args.dataset}: wrote {args.out}: {shapes}")


if __name__ == "__main__":
    main()
