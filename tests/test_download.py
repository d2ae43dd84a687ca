"""The real download code against a loopback HTTP server: success, faults, mirrors, nothing partial left."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest

from denselab.core.config import DatasetSource, parse_params
from denselab.data.datasets import DataError
from stages import download as dl
from tests.fixtures import (
    cifar_arrays,
    mnist_arrays,
    sha256,
    write_cifar_tar,
    write_idx_files,
    write_mnist_npz,
    write_params,
)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(dl, "TIMEOUT", 1.0)
    monkeypatch.setattr(dl, "BACKOFF", 0.01)
    monkeypatch.setattr(dl, "RETRIES", 2)


@pytest.fixture
def mnist_npz(tmp_path):
    arrays = mnist_arrays()
    return arrays, write_mnist_npz(tmp_path / "mnist.npz", arrays)


def test_fetch_and_decode_mnist_over_http(server, mnist_npz, tmp_path):
    arrays, path = mnist_npz
    url = server.serve_file("/data/mnist.npz", path)
    work = tmp_path / "work"
    work.mkdir()
    result = dl.download("mnist", DatasetSource(url=url, sha256=sha256(path)), work)
    for key in arrays:
        np.testing.assert_array_equal(result[key], arrays[key])


def test_fetch_and_decode_cifar_over_http(server, tmp_path):
    arrays = cifar_arrays()
    path = write_cifar_tar(tmp_path / "cifar-10-python.tar.gz", arrays)
    url = server.serve_file("/cifar-10-python.tar.gz", path)
    result = dl.download("cifar10", DatasetSource(url=url, sha256=sha256(path)), tmp_path)
    assert result["x_train"].shape == (100, 32, 32, 3)
    np.testing.assert_array_equal(result["y_test"], arrays["y_test"])


def test_wrong_hash_names_file_expected_and_actual(server, mnist_npz, tmp_path):
    _, path = mnist_npz
    url = server.serve_file("/mnist.npz", path)
    with pytest.raises(DataError) as info:
        dl.download("mnist", DatasetSource(url=url, sha256="f" * 64), tmp_path)
    assert str(info.value) == f"mnist.npz: sha256 mismatch: expected {'f' * 64}, got {sha256(path)}"


def test_http_404_is_not_retried(server, tmp_path):
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        dl.fetch(f"{server.url}/missing.npz", tmp_path / "x")
    assert server.hits == ["/missing.npz"]


def test_http_500_is_retried_then_reported(server, tmp_path):
    url = server.serve("/flaky.npz", b"oops", status=500)
    with pytest.raises(dl.DownloadError, match=r"HTTP 500 .*gave up after 3 attempts"):
        dl.fetch(url, tmp_path / "x")
    assert server.hits == ["/flaky.npz"] * 3
    assert not (tmp_path / "x").exists()


def test_truncated_body_is_detected(server, tmp_path):
    url = server.serve("/short.npz", b"0123456789", declared_length=100)
    with pytest.raises(dl.DownloadError, match="(truncated download: got 10 of 100 bytes|connection lost)"):
        dl.fetch(url, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_connection_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(dl.DownloadError, match=r"cannot connect .*gave up after 3 attempts"):
        dl.fetch(f"http://127.0.0.1:{port}/mnist.npz", tmp_path / "x")


def test_a_server_that_never_answers_is_bounded_by_the_timeout(server, tmp_path):
    url = server.serve("/slow.npz", b"late", delay=3)
    start = time.monotonic()
    with pytest.raises(dl.DownloadError, match="gave up after 2 attempts"):
        dl.fetch(url, tmp_path / "x", timeout=0.3, retries=1)
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize("form", ["dir", "file-url", "http"])
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_mirror_with_idx_files_matches_the_npz(server, tmp_path, form, gz):
    arrays = mnist_arrays()
    mirror_dir = tmp_path / "mirror"
    hashes = write_idx_files(mirror_dir, arrays, gz=gz)
    if form == "http":
        for f in mirror_dir.iterdir():
            server.serve_file(f"/mirror/{f.name}", f)
    mirror = {"dir": str(mirror_dir), "file-url": mirror_dir.as_uri(), "http": f"{server.url}/mirror"}[form]
    npz = write_mnist_npz(tmp_path / "mnist.npz", arrays)
    source = DatasetSource(url="https://example.invalid/mnist.npz", sha256=sha256(npz), idx_sha256=hashes)
    work = tmp_path / "work"
    work.mkdir()
    from_mirror = dl.download("mnist", source, work, mirror=mirror)
    from_npz = dl.download("mnist", DatasetSource(url=server.serve_file("/mnist.npz", npz), sha256=sha256(npz)), work)
    for key in arrays:
        np.testing.assert_array_equal(from_mirror[key], from_npz[key])


def test_mirror_without_the_file(tmp_path):
    (tmp_path / "empty").mkdir()
    source = DatasetSource(url="https://example.invalid/cifar-10-python.tar.gz", sha256="0" * 64)
    with pytest.raises(dl.DownloadError, match="has no cifar-10-python.tar.gz"):
        dl.download("cifar10", source, tmp_path, mirror=str(tmp_path / "empty"))


# --- the stage's main(): the output appears complete, or not at all -------------------------


def _project(tmp_path: Path, params_data: dict, url: str, digest: str) -> Path:
    params_data["sources"]["mnist"].update(url=url, sha256=digest)
    parse_params(params_data)
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_params(tmp_path, params_data)
    return tmp_path


def test_main_writes_keras_shaped_arrays(server, mnist_npz, tmp_path, params_copy, monkeypatch):
    arrays, path = mnist_npz
    project = _project(tmp_path / "p", params_copy, server.serve_file("/mnist.npz", path), sha256(path))
    monkeypatch.chdir(project)
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    dl.main(["--dataset", "mnist", "--out", "data/raw/mnist.npz"])
    with np.load(project / "data/raw/mnist.npz") as out:
        assert {k: out[k].shape for k in out.files} == {k: v.shape for k, v in arrays.items()}


@pytest.mark.parametrize("fault", ["hash", "404", "500", "truncated", "corrupt"])
def test_main_leaves_nothing_under_data_on_failure(
    server, mnist_npz, tmp_path, params_copy, monkeypatch, capsys, fault
):
    _, path = mnist_npz
    body = path.read_bytes()
    digest = sha256(path)
    if fault == "hash":
        digest = "0" * 64
    elif fault == "500":
        server.serve("/mnist.npz", b"", status=500)
    elif fault == "truncated":
        server.serve("/mnist.npz", body[:100], declared_length=len(body))
    elif fault == "corrupt":
        body = b"PK" + bytes(200)
        digest = __import__("hashlib").sha256(body).hexdigest()
    if fault in ("hash", "corrupt"):
        server.serve("/mnist.npz", body)
    project = _project(tmp_path / "p", params_copy, f"{server.url}/mnist.npz", digest)
    (project / "data").mkdir()
    monkeypatch.chdir(project)
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    with pytest.raises(SystemExit) as info:
        dl.main(["--dataset", "mnist", "--out", "data/raw/mnist.npz"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: ")
    assert [p for p in (project / "data").rglob("*") if p.is_file()] == []


def test_a_full_disk_is_said_as_such_and_not_retried(server, mnist_npz, tmp_path):
    """The download lands on /dev/full, the kernel's own full disk (every write refused with ENOSPC), through a
    link: code that deletes a failed download deletes the link, never the device."""
    _, path = mnist_npz
    url = server.serve_file("/mnist.npz", path)
    (tmp_path / "work").mkdir()
    dest = tmp_path / "work" / "mnist.npz"
    dest.symlink_to("/dev/full")
    with pytest.raises(dl.DownloadError) as error:
        dl.fetch(url, dest)
    assert server.hits == ["/mnist.npz"]
    assert str(error.value).startswith(f"{dest.parent}: the disk is full (No space left on device) after 0.0 MB of ")
    assert str(error.value).endswith(" free there: free some space and run again")
