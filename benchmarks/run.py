"""Side-by-side benchmark: the lab's plain script vs DenseLab's train stage, in alternating pairs.

    python benchmarks/run.py                       # ex3 on real MNIST, ex5 on real-size random CIFAR-10
    python benchmarks/run.py --pairs 5 --epochs 3 --project .    # also time a built pipeline

Prints medians and DenseLab/lab ratios of seconds per epoch, stage wall time and peak RSS,
then (with --project, a built DenseLab checkout) no-op `dvc repro`, the report stage and each
stage's start-up cost. Timings on a shared machine are noisy: only ratios measured in the same
run, alternating, are meaningful. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from denselab.core.config import IDX_FILES, load_params
from denselab.data.arrays import array_hashes
from denselab.data.datasets import mnist_from_idx
from denselab.training.fingerprints import fingerprint
from stages.prepare import prepare


def _peak_of(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float, str]:
    """Run a command; return (wall seconds, its peak RSS in MiB, its stdout).

    RUSAGE_CHILDREN is a running maximum over all children, so each command runs under a
    fresh wrapper process whose only child it is.
    """
    wrapper = (
        "import resource, subprocess, sys, json, time;"
        "t = time.perf_counter();"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "w = time.perf_counter() - t;"
        "sys.stderr.write(p.stderr[-3000:] if p.returncode else '');"
        "print(json.dumps({'rc': p.returncode, 'wall': w, 'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 'out': p.stdout}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], check=False, cwd=cwd, env=env, capture_output=True, text=True
    )
    result = json.loads(proc.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return result["wall"], result["rss"], result["out"]


def build_inputs(work: Path, mnist_dir: Path) -> dict[str, Path]:
    """Raw npz files (real MNIST, random real-size CIFAR-10) and DenseLab's prepared arrays."""
    params = load_params(ROOT / "params.yaml")
    raw = {}
    mnist = mnist_from_idx({n: mnist_dir / f"{n}.gz" for n in IDX_FILES}, params.datasets["mnist"].idx_sha256)
    rng = np.random.default_rng(0)
    cifar = {
        "x_train": rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 10, (50000, 1), dtype=np.uint8),
        "x_test": rng.integers(0, 256, (10000, 32, 32, 3), dtype=np.uint8),
        "y_test": rng.integers(0, 10, (10000, 1), dtype=np.uint8),
    }
    for name, arrays in (("mnist", mnist), ("cifar10", cifar)):
        raw[name] = work / f"{name}.npz"
        np.savez(raw[name], **arrays)
    for variant in ("mnist_scaled", "cifar10_scaled"):
        spec = params.inputs[variant]
        folder = work / "prepared" / variant
        folder.mkdir(parents=True, exist_ok=True)
        for key, array in prepare(dict(np.load(raw[spec.dataset])), spec).items():
            np.save(folder / f"{key}.npy", array)
    return raw


def bench_exercise(
    exercise: str, epochs: int, pairs: int, work: Path, raw: dict[str, Path], xla: bool | None = None
) -> dict:
    """Alternate the lab script and the train stage; return medians. `xla`: the exercise's `xla` for DenseLab."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["exercises"][exercise]["epochs"] = epochs
    if xla is not None:
        params["exercises"][exercise]["xla"] = xla
    # Beside this copy, the dataset sources only (validated with params.yaml): training reads no claim or description.
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(ROOT / "datasets.yaml", work / "datasets.yaml")
    loaded = load_params(work / "params.yaml")
    spec = loaded.exercises[exercise]
    dataset = loaded.inputs[spec.inputs].dataset
    print_ = work / "fingerprint.json"  # what the fingerprint stage writes for the exercise
    folder = work / "prepared" / spec.inputs
    print_.write_text(json.dumps(fingerprint(exercise, spec, folder, array_hashes(folder))))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    rows = {"lab": [], "denselab": []}
    for i in range(pairs):
        wall, rss, out = _peak_of(
            [
                sys.executable,
                str(ROOT / "benchmarks/lab_script.py"),
                exercise,
                str(raw[dataset]),
                "--epochs",
                str(epochs),
            ],
            work,
            env,
        )
        lab = json.loads(out.strip().splitlines()[-1])
        rows["lab"].append({"epoch": statistics.median(lab["seconds_per_epoch"]), "wall": wall, "rss": rss})
        summary = work / "summary.json"
        wall, rss, _ = _peak_of(
            [
                sys.executable,
                "-m",
                "stages.train",
                "--exercise",
                exercise,
                "--seed",
                str(loaded.seed),
                "--fingerprint",
                str(print_),
                "--model-dir",
                str(work / "model"),
                "--history",
                str(work / "history.csv"),
                "--summary",
                str(summary),
            ],
            work,
            env,
        )
        rows["denselab"].append(
            {"epoch": json.loads(summary.read_text())["seconds_per_epoch"], "wall": wall, "rss": rss}
        )
        lab_row, dl_row = rows["lab"][-1], rows["denselab"][-1]
        print(
            f"  {exercise} pair {i + 1}: "
            + ", ".join(
                f"{k} {lab_row[k]:.2f} -> {dl_row[k]:.2f} ({dl_row[k] / lab_row[k]:.2f})"
                for k in ("epoch", "wall", "rss")
            ),
            flush=True,
        )
    medians = {
        who: {k: statistics.median(r[k] for r in runs) for k in ("epoch", "wall", "rss")} for who, runs in rows.items()
    }
    # Drift between pairs cancels out of each pair's ratio; report their median beside the ratio of medians.
    medians["pair ratio"] = {
        k: statistics.median(d[k] / b[k] for b, d in zip(rows["lab"], rows["denselab"]))
        for k in ("epoch", "wall", "rss")
    }
    return medians


def stage_names(project: Path, env: dict) -> list[str]:
    """Every stage of a DVC project, as `dvc stage list` names them."""
    listed = subprocess.run(
        [sys.executable, "-m", "dvc", "stage", "list", "--name-only"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


def bench_full_repro(project: Path) -> dict:
    """Force every train, evaluate and report stage of a built project to rerun from its prepared data.

    Returns the run's wall time, the train stages' summed fit time and their ratio: what
    start-up, loading, saving, evaluating and reporting cost on top of the training itself.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    listed = stage_names(project, env)
    stages = (
        [s for s in listed if s.startswith("train@")] + [s for s in listed if s.startswith("evaluate@")] + ["report"]
    )
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "--force", "--single-item", *stages],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - start
    fit = sum(json.loads(p.read_text())["fit_seconds"] for p in (project / "reports" / "summary").glob("*.json"))
    return {"stages": len(stages), "wall (s)": wall, "sum of fit time (s)": fit, "ratio": wall / fit}


def stage_command(project: Path, stage: str, **replace: str) -> list[str]:
    """A stage's command as dvc.yaml writes it, its `${paths.*}` filled in; `replace` swaps option values."""
    pipeline = yaml.safe_load((project / "dvc.yaml").read_text())
    paths = next(v["paths"] for v in pipeline["vars"] if "paths" in v)
    cmd = pipeline["stages"][stage]["cmd"]
    for name, value in paths.items():
        cmd = cmd.replace("${paths." + name + "}", value)
    words = cmd.split()
    for option, value in replace.items():
        words[words.index(f"--{option}") + 1] = value
    return [sys.executable if w == "python" else w for w in words]


def dvc_repository(folder: Path, env: dict, stages: int = 0) -> Path:
    """A Git + DVC repository; with `stages`, that many built stages of one dependency and one output each.

    Timed beside the project, the empty one is DVC's own start-up and the other DVC's floor for a pipeline
    of the project's size: what its stages cost before any of their dependencies, params or paths.
    """
    folder.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=folder, env=env, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], cwd=folder, env=env, check=True)
    if stages:
        (folder / "input.txt").write_text("input\n")
        pipeline = {
            f"s{i}": {"cmd": f"echo {i} > out{i}.txt", "deps": ["input.txt"], "outs": [f"out{i}.txt"]}
            for i in range(stages)
        }
        (folder / "dvc.yaml").write_text(yaml.safe_dump({"stages": pipeline}))
        subprocess.run(
            [sys.executable, "-m", "dvc", "repro", "-q"], cwd=folder, env=env, check=True, capture_output=True
        )
    return folder


def bench_project(project: Path, repeats: int) -> dict:
    """No-op `dvc repro`, the report stage, and each stage module's start-up cost, on a built project."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    results = {}
    scratch = Path(tempfile.mkdtemp(prefix="denselab-bench-"))
    # Two references, alternating with the project's runs (the machine's speed changes by tens of percent
    # within minutes): DVC's own start-up in an empty repository, and DVC's floor for as many stages.
    stages = stage_names(project, env)
    empty = dvc_repository(scratch / "empty", env)
    floor = dvc_repository(scratch / "floor", env, stages=len(stages))
    noop: dict[Path, list[float]] = {project: [], empty: [], floor: []}
    cpu: list[float] = []  # the project's runs: user + system seconds, which other processes' load does not add to
    for _ in range(repeats):
        for folder, times in noop.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "dvc", "repro"], check=False, cwd=folder, env=env, capture_output=True, text=True
            )
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if folder == project:
                cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if "Running stage" in out.stdout:
                raise SystemExit("the project is not built: `dvc repro` ran a stage")
    results["noop dvc repro (s)"] = statistics.median(noop[project])
    results["noop dvc repro, CPU time (s)"] = statistics.median(cpu)
    # About 1 when nothing else ran: DVC uses one core. Above, the wall times include waiting for the CPU.
    busy = statistics.median(w / c for w, c in zip(noop[project], cpu))
    results["noop dvc repro, wall / CPU time"] = busy
    if busy > 1.15:
        print(
            f"warning: other processes had the CPU (wall time {busy:.2f}x the CPU time): the seconds below are "
            "the machine's load as much as DVC's; rerun on an idle machine",
            file=sys.stderr,
        )
    results["noop dvc repro, empty DVC repository (s)"] = statistics.median(noop[empty])
    results["noop dvc repro, pipeline's share (s)"] = statistics.median(
        a - b for a, b in zip(noop[project], noop[empty])
    )
    results[f"noop dvc repro, {len(stages)} one-dependency stages (s)"] = statistics.median(noop[floor])
    # The project against DVC's floor for its size, pair by pair: steadier than either time alone.
    results["noop dvc repro / the floor (ratio)"] = statistics.median(a / b for a, b in zip(noop[project], noop[floor]))
    for stage, outputs in (
        ("report", {"out": str(scratch / "index.html")}),
        ("aggregate", {"out": str(scratch / "study.json"), "figures": str(scratch / "study")}),
    ):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(
                stage_command(project, stage, **outputs), cwd=project, env=env, check=True, capture_output=True
            )
            times.append(time.perf_counter() - start)
        results[f"{stage} stage (s)"] = statistics.median(times)
    for module in (
        "validate",
        "download",
        "prepare",
        "fingerprint",
        "train",
        "replicate",
        "evaluate",
        "explain",
        "describe",
        "aggregate",
        "report",
    ):
        # The training and evaluating stages load TensorFlow (and the training ones their loop) before any work.
        loop = "; from denselab.core.cli import load_tensorflow; load_tensorflow(); import denselab.training.loop, denselab.training.models"
        heavy = {
            "train": loop,
            "replicate": loop,
            "evaluate": "; from denselab.core.cli import load_tensorflow; load_tensorflow()",
        }.get(module, "")
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", f"import stages.{module}{heavy}"],
                cwd=project,
                env=env,
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - start)
        code = f"import sys, stages.{module}; print('tensorflow' in sys.modules)"
        tf = subprocess.run(
            [sys.executable, "-c", code], check=False, cwd=project, env=env, capture_output=True, text=True
        ).stdout.strip()
        results[f"start-up {module} (s){' incl. TensorFlow' if heavy else ''}"] = statistics.median(times)
        results[f"{module} imports tensorflow at import time"] = tf
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--exercises", nargs="*", default=["ex3", "ex5"], help="none: only the --project timings")
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "datasets" / "mnist")
    parser.add_argument("--project", type=Path, help="a built DenseLab checkout to time dvc repro and the report on")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--xla", choices=["on", "off"], help="DenseLab's training steps with XLA or without (default: as params.yaml)"
    )
    parser.add_argument(
        "--full-repro",
        action="store_true",
        help="with --project: rerun every train/evaluate stage and the report (minutes) and compare to fit time",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="denselab-bench-") as tmp:
        work = Path(tmp)
        print("preparing inputs ...", flush=True)
        raw = build_inputs(work, args.mnist)
        for exercise in args.exercises:
            xla = None if args.xla is None else args.xla == "on"
            m = bench_exercise(exercise, args.epochs, args.pairs, work, raw, xla)
            lab, dl = m["lab"], m["denselab"]
            print(f"\n{exercise}: medians of {args.pairs} alternating pairs, {args.epochs} epochs each")
            print(f"  {'':22}{'lab script':>12}{'DenseLab':>12}{'ratio':>8}{'pair ratio':>12}")
            for key, label in (
                ("epoch", "seconds per epoch"),
                ("wall", "stage wall time (s)"),
                ("rss", "peak RSS (MiB)"),
            ):
                print(
                    f"  {label:22}{lab[key]:12.2f}{dl[key]:12.2f}{dl[key] / lab[key]:8.2f}{m['pair ratio'][key]:12.2f}"
                )
    if args.project:
        print(f"\nbuilt project {args.project}:")
        if args.full_repro:  # first: it also brings a project whose code changed up to date
            print("  full dvc repro from prepared data ...", flush=True)
            for key, value in bench_full_repro(args.project.resolve()).items():
                print(f"  {'full repro ' + key:45} {value:.2f}")
        for key, value in bench_project(args.project.resolve(), args.repeats).items():
            print(f"  {key:45} {value if isinstance(value, str) else f'{value:.2f}'}")


if __name__ == "__main__":
    main()
