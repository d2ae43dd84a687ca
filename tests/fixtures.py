"""Tiny datasets in the real file formats (mnist.npz, IDX, CIFAR-10 python tar), the files of a seeds study's runs,
and a loopback HTTP server."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np

from denselab.core.config import IDX_FILES
from denselab.core.history import CURVES
from denselab.core.layout import run_file


class _Delete:
    """set_key's value that removes the key; one name in test ids, the same in every test worker."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()


def set_key(data: dict, dotted: str, value) -> None:
    """Set (or, with DELETE, remove) a dotted key of params data; list items by index ("layers.0.units")."""
    *parents, last = dotted.split(".")
    for key in parents:
        data = data[int(key)] if isinstance(data, list) else data[key]
    if value is DELETE:
        del data[last]
    elif isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


def write_params(folder: Path, data: dict) -> None:
    """params data (as the `params_data` fixture holds it) written as the project keeps it: the keys of each file
    beside params.yaml (`config.SIDE_FILES`) in that file, the rest in params.yaml."""
    import yaml

    from denselab.core.config import SIDE_FILES

    def dump(part: dict, name: str) -> None:
        (folder / name).write_text(yaml.safe_dump(part, sort_keys=False, allow_unicode=True), encoding="utf-8")

    for name, keys in SIDE_FILES.items():
        dump({k: v for k, v in data.items() if k in keys}, name)
    dump({k: v for k, v in data.items() if not any(k in keys for keys in SIDE_FILES.values())}, "params.yaml")


def read_params(folder: Path) -> dict:
    """params.yaml in `folder` with the keys of the files beside it, as one mapping (`write_params` splits it)."""
    import yaml

    from denselab.core.config import SIDE_FILES

    data = yaml.safe_load((folder / "params.yaml").read_text(encoding="utf-8"))
    for name in SIDE_FILES:
        data |= yaml.safe_load((folder / name).read_text(encoding="utf-8")) or {}
    return data


def copy_params(folder: Path) -> None:
    """The project's params.yaml and the files beside it (`config.SIDE_FILES`), copied into `folder`."""
    import shutil

    from denselab.core.config import SIDE_FILES
    from tests.conftest import ROOT

    for name in ("params.yaml", *SIDE_FILES):
        shutil.copy(ROOT / name, folder / name)


def without_claims(data: dict) -> dict:
    """params data without factorials and claims: for a test that edits an exercise so far that the lab's
    comparisons no longer hold (validate would refuse the claims, rightly)."""
    data.pop("factorials", None)
    data.pop("claims", None)
    return data


def run_main(
    stage: str, args: list, cwd: Path, watched: tuple[str, ...] = ("tensorflow", "keras")
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`stages.<stage>.main(args)` in a fresh interpreter in `cwd` (where its params.yaml is); the finished process
    and which of the `watched` top-level packages it imported."""
    root = Path(__file__).resolve().parents[1]
    code = (
        f"import json, sys; from stages.{stage} import main; main({[str(a) for a in args]!r}); "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {watched!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
    )
    imported = eval(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else []
    return out, imported


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def mnist_arrays(n_train: int = 120, n_test: int = 40, seed: int = 0) -> dict[str, np.ndarray]:
    """Random MNIST-shaped uint8 arrays whose class is learnable (a bright block per class)."""
    rng = np.random.default_rng(seed)

    def images(labels):
        x = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
        for i, c in enumerate(labels):
            x[i, 2 * c : 2 * c + 6, 4:24] = 250
        return x

    y_train = (np.arange(n_train) % 10).astype(np.uint8)
    y_test = (np.arange(n_test) % 10).astype(np.uint8)
    rng.shuffle(y_train)
    return {"x_train": images(y_train), "y_train": y_train, "x_test": images(y_test), "y_test": y_test}


def cifar_arrays(n_per_batch: int = 20, n_test: int = 20, seed: int = 1) -> dict[str, np.ndarray]:
    """Random CIFAR-shaped arrays: x (n, 32, 32, 3) uint8, y (n, 1) uint8, as Keras returns them."""
    rng = np.random.default_rng(seed)
    n_train = 5 * n_per_batch
    y_train = (np.arange(n_train) % 10).astype(np.uint8).reshape(-1, 1)
    y_test = (np.arange(n_test) % 10).astype(np.uint8).reshape(-1, 1)
    x_train = rng.integers(0, 256, size=(n_train, 32, 32, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(n_test, 32, 32, 3), dtype=np.uint8)
    for x, y in ((x_train, y_train), (x_test, y_test)):
        for i, c in enumerate(y[:, 0]):
            x[i, 3 * c : 3 * c + 3, :, c % 3] = 255
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_mnist_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A compressed npz with Keras' keys, like mnist.npz."""
    np.savez_compressed(path, **arrays)
    return Path(path)


def idx_bytes(array: np.ndarray, magic: int | None = None, count: int | None = None) -> bytes:
    """An IDX file's bytes; `magic`/`count` override the header to make a corrupt one."""
    magic = magic if magic is not None else (2051 if array.ndim == 3 else 2049)
    dims = list(array.shape)
    if count is not None:
        dims[0] = count
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + array.astype(np.uint8).tobytes()


def write_idx_files(folder: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> dict[str, str]:
    """Write the four MNIST IDX files; return the sha256 of each one's decompressed bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = dict(zip(IDX_FILES, ("x_train", "y_train", "x_test", "y_test")))
    hashes = {}
    for name, key in keys.items():
        data = idx_bytes(arrays[key])
        hashes[name] = hashlib.sha256(data).hexdigest()
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / name).write_bytes(data)
    return hashes


def cifar_batch_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    """One CIFAR-10 python batch, pickled with protocol 2 like the original's."""
    data = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)
    batch = {b"batch_label": b"synthetic", b"labels": [int(v) for v in y[:, 0]], b"data": data, b"filenames": []}
    return pickle.dumps(batch, protocol=2)


def write_cifar_tar(path: Path, arrays: dict[str, np.ndarray], extra: list[tarfile.TarInfo] | None = None) -> Path:
    """cifar-10-python.tar.gz with five training batches and a test batch (and any `extra` members)."""
    n = len(arrays["x_train"]) // 5
    members = {
        f"data_batch_{i + 1}": cifar_batch_bytes(
            arrays["x_train"][i * n : (i + 1) * n], arrays["y_train"][i * n : (i + 1) * n]
        )
        for i in range(5)
    }
    members["test_batch"] = cifar_batch_bytes(arrays["x_test"], arrays["y_test"])
    members["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=2)
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return Path(path)


def write_runs(root: Path, params: dict, accuracy: dict[str, list[float]]) -> dict[str, Path]:
    """The run records evaluate (the lab's seed, first in `accuracy`) and replicate (the other seeds) would write,
    in `root`/runs, returned as {"runs": that folder}."""
    folder = root / "runs"
    for name, values in accuracy.items():
        lab, *others = values
        (folder / name).mkdir(parents=True, exist_ok=True)
        for seed, value in zip([params["seed"], *params["study"]["seeds"]], [lab, *others]):
            curves = [
                [1, 0.5, 0.3],
                [value - 0.1, value - 0.05, value],
                [1.1, 0.6, 0.4],
                [value - 0.2, value - 0.1, value],
            ]
            history = {curve: [round(v, 6) for v in values] for curve, values in zip(CURVES, curves)}
            run = {
                "exercise": name,
                "seed": seed,
                "test_accuracy": value,
                "test_loss": 0.1 if seed == params["seed"] else 0.2,
                "precision": "float32",
                "history": history,
            }
            (folder / name / run_file(seed)).write_text(json.dumps(run))
    return {"runs": folder}


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        route = self.server.routes.get(self.path)
        self.server.hits.append(self.path)
        if route is None:
            self.send_error(404)
            return
        status, body, declared, delay = route
        if delay:
            time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Length", str(declared if declared is not None else len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class LoopbackServer:
    """An HTTP server on 127.0.0.1 with programmable routes: files, errors, short bodies, stalls."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes = {}
        self.httpd.hits = []
        # shutdown() waits for serve_forever's next poll: at the default 0.5 s, every test with a server waited that
        # long for nothing.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def hits(self) -> list[str]:
        return self.httpd.hits

    def serve(self, path: str, body: bytes, status: int = 200, declared_length: int | None = None, delay: float = 0):
        self.httpd.routes[path] = (status, body, declared_length, delay)
        return f"{self.url}{path}"

    def serve_file(self, path: str, file: Path) -> str:
        return self.serve(path, Path(file).read_bytes())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
