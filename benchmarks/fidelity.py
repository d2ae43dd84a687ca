"""Fidelity benchmark: does DenseLab train as the lab's code trains? Whole runs over many seeds, alternated.

    python benchmarks/fidelity.py --exercise ex2 --seeds 1-18 --margin 0.02
    python benchmarks/fidelity.py --exercise ex3 --seeds 1-10 --margin 0.002 --epochs 3    # a quick look

For each seed, in alternating order, one run of the lab's code as written (`benchmarks/lab_script.py`: Keras'
`model.fit` on the arrays, no seed set, as in the lab) and one of DenseLab's training (the function the
`replicate` stage runs, on the arrays `prepare` makes), both on real MNIST (`../shared/datasets/mnist`) at the
lab's settings. Then, on the test accuracies: both distributions, the difference of means (DenseLab - lab) with
its 95% interval and Welch's p, an equivalence test against +-margin (two one-sided Welch tests, statsmodels'
`ttost_ind`: equivalent when its p < 0.05) and Levene's test of the spreads (median-centred). Each run's result
is appended to `--results` (JSON lines, with the machine's CPU model), so that runs from several sessions can be
pooled per machine (`--pool`). Not part of the test suite: an ex2 seed takes about 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from denselab.core.config import IDX_FILES, load_params
from denselab.data.datasets import mnist_from_idx
from stages.prepare import prepare

MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
RESULTS = ROOT / "benchmarks" / "fidelity.jsonl"
CONFIDENCE = 0.95


def cpu_model() -> str:
    """The CPU's model name (the same seed gives other numbers on other CPU kernels: pool per machine)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build_inputs(work: Path, exercise: str) -> tuple[Path, Path]:
    """Real MNIST as the lab reads it (a raw npz) and as DenseLab trains on it (the exercise's prepared arrays)."""
    params = load_params(ROOT / "params.yaml")
    spec = params.exercises[exercise]
    variant = params.inputs[spec.inputs]
    arrays = mnist_from_idx({n: MNIST / f"{n}.gz" for n in IDX_FILES}, params.datasets["mnist"].idx_sha256)
    raw = work / "mnist.npz"
    np.savez(raw, **arrays)
    folder = work / spec.inputs
    folder.mkdir()
    for key, array in prepare(arrays, variant).items():
        np.save(folder / f"{key}.npy", array)
    return raw, folder


# DenseLab's side runs in its own process, as the replicate stage does: the stage's own function on the arrays.
DENSELAB_RUN = """
import dataclasses, json, sys
from pathlib import Path
from denselab.data.arrays import read_test, read_training
from denselab.core.cli import load_tensorflow
from denselab.core.config import load_params
from denselab.training.fit import configure_threads
from stages.replicate import replicate
exercise, folder, seed, epochs = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
spec = load_params(sys.argv[5]).exercises[exercise]
xla = {"on": True, "off": False}.get(sys.argv[6], spec.xla)
spec = dataclasses.replace(spec, epochs=epochs or spec.epochs, xla=xla)
change = sys.argv[7]
if change == "keras-adam":  # Keras' own Adam instead of the fused kernel (the fallback DenseLab has for it)
    import denselab.training.models as models
    models.use_fast_adam = lambda model, spec: models.compile_model(model, spec, fused=False)
elif change == "no-determinism":  # TensorFlow's ops as the lab's code leaves them
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism = lambda: None
elif change == "fixed-order":  # every epoch visits the rows in epoch 0's order, as Keras' seeded fit does
    import denselab.training.loop as loop
    first_order = loop.epoch_order
    loop.epoch_order = lambda n, batch_size, seed, epoch: first_order(n, batch_size, seed, 0)
x_train, y_train = read_training(folder)
x_test, y_test = read_test(folder)
load_tensorflow()
configure_threads()
record = replicate(x_train, y_train, x_test, y_test, spec, seed)
print(json.dumps({"accuracy": record["test_accuracy"]}))
"""


# The sides a run can take: the lab's code as written, DenseLab as params.yaml sets it, and one-change variants
# (a row of the experiment each). A side's name is what the results file records.
# The lab's code sets no seed, so each of its runs is a fresh draw and its "seed" only numbers the run. With
# Keras' global seed set (`lab+seed`), Keras 3's `fit` on arrays visits the rows in the same order every epoch:
# its shuffle runs inside tf.data, which restarts the seeded op's random stream with each epoch's iterator
# (tensorflow/tensorflow#35682). Unseeded, it reshuffles every epoch, as DenseLab does (`feed.epoch_order`).
SIDES = {
    "lab": ("lab", "", ""),
    "lab+seed": ("lab", "", "seed"),
    "denselab": ("denselab", "params", ""),
    "denselab+xla": ("denselab", "on", ""),
    "denselab-xla": ("denselab", "off", ""),
    "denselab+keras-adam": ("denselab", "params", "keras-adam"),
    "denselab-determinism": ("denselab", "params", "no-determinism"),
    "denselab+fixed-order": ("denselab", "params", "fixed-order"),
}


def one_run(side: str, exercise: str, seed: int, epochs: int | None, raw: Path, folder: Path) -> float:
    """One run's test accuracy (a fraction), from a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    who, xla, change = SIDES[side]
    if who == "lab":
        cmd = [sys.executable, str(ROOT / "benchmarks/lab_script.py"), exercise, str(raw)]
        cmd += ["--seed", str(seed)] if change == "seed" else []
        cmd += ["--epochs", str(epochs)] if epochs else []
    else:
        cmd = [sys.executable, "-c", DENSELAB_RUN, exercise, str(folder), str(seed), str(epochs or 0)]
        cmd += [str(ROOT / "params.yaml"), xla, change or "none"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{side} run of {exercise}, seed {seed} failed:\n{out.stderr[-3000:]}")
    accuracy = json.loads(out.stdout.strip().splitlines()[-1])["accuracy"]
    return accuracy / 100 if who == "lab" else accuracy  # the lab's script prints a percentage, as the lab does


def compare(lab: list[float], denselab: list[float], margin: float) -> dict:
    """Both distributions, DenseLab minus lab with its interval and Welch's p, TOST at +-margin, Levene's p."""
    from scipy import stats
    from statsmodels.stats.weightstats import ttost_ind

    a, b = np.asarray(lab, dtype=float), np.asarray(denselab, dtype=float)
    welch = stats.ttest_ind(b, a, equal_var=False)
    interval = welch.confidence_interval(CONFIDENCE)
    tost_p = float(ttost_ind(b, a, -margin, margin, usevar="unequal")[0])
    return {
        "n": [len(a), len(b)],
        "lab": {"mean": float(a.mean()), "sd": float(a.std(ddof=1))},
        "denselab": {"mean": float(b.mean()), "sd": float(b.std(ddof=1))},
        "difference": float(b.mean() - a.mean()),
        "ci95": [float(interval.low), float(interval.high)],
        "welch_p": float(welch.pvalue),
        "margin": margin,
        "tost_p": tost_p,
        "equivalent": tost_p < 1 - CONFIDENCE,
        "levene_p": float(stats.levene(a, b, center="median").pvalue),
    }


def seeds_of(text: str) -> list[int]:
    """`1-18` or `1,2,5`; empty: none (with --pool, only what earlier runs wrote)."""
    if not text:
        return []
    if "-" in text:
        first, last = (int(v) for v in text.split("-"))
        return list(range(first, last + 1))
    return [int(v) for v in text.split(",")]


def pooled(results: Path, exercise: str, epochs: int | None, machine: str) -> dict[str, list[float]]:
    """Every run of `results` for this exercise, epochs and machine: the accuracies per side."""
    sides: dict[str, list[float]] = {}
    if results.is_file():
        for line in results.read_text().splitlines():
            row = json.loads(line)
            if (row["exercise"], row["epochs"], row["machine"]) == (exercise, epochs, machine):
                sides.setdefault(row["who"], []).append(row["accuracy"])
    return sides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", default="ex2", choices=["baseline", "ex1", "ex2", "ex3"])
    parser.add_argument("--seeds", default="1-10", help="a range (1-18) or a list (1,2,5)")
    parser.add_argument("--margin", type=float, default=0.02, help="equivalence margin, a fraction (0.02: 2 points)")
    parser.add_argument("--epochs", type=int, help="default: the lab's (a quick look: fewer)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON lines, appended to")
    parser.add_argument("--pool", action="store_true", help="compare every run in --results for this machine")
    parser.add_argument(
        "--sides", default="lab,denselab", help=f"comma-separated, each seed runs each side once: {', '.join(SIDES)}"
    )
    parser.add_argument("--reference", default="lab", help="the side every other side is compared with")
    args = parser.parse_args()
    sides = args.sides.split(",")
    unknown = [s for s in [*sides, args.reference] if s not in SIDES]
    if unknown:
        parser.error(f"unknown side {unknown[0]!r}; the sides: {', '.join(SIDES)}")
    machine = cpu_model()
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw, folder = build_inputs(Path(tmp), args.exercise)
        for i, seed in enumerate(seeds_of(args.seeds)):
            for side in sides[i % len(sides) :] + sides[: i % len(sides)]:  # rotate: drift hits every side
                start = time.perf_counter()
                accuracy = one_run(side, args.exercise, seed, args.epochs, raw, folder)
                runs.setdefault(side, []).append(accuracy)
                row = {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": machine,
                    "exercise": args.exercise,
                    "epochs": args.epochs,
                    "seed": seed,
                    "who": side,
                    "accuracy": accuracy,
                    "seconds": round(time.perf_counter() - start, 1),
                }
                with open(args.results, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"  seed {seed} {side}: {accuracy:.2%} ({row['seconds']} s)", flush=True)
    if args.pool:
        runs = pooled(args.results, args.exercise, args.epochs, machine)
    print(f"{args.exercise} on {machine}, {args.epochs or 'the lab'} epochs:".replace("lab epochs", "lab's epochs"))
    reference = runs.get(args.reference, [])
    for side in [args.reference, *[s for s in sides if s != args.reference]] if not args.pool else runs:
        shown = np.asarray(runs.get(side, []))
        if len(shown) > 1:
            print(f"  {side:13}: n {len(shown)}, {shown.mean():.2%} ± {shown.std(ddof=1):.2%}")
    for side, values in runs.items():
        if side == args.reference or len(values) < 2 or len(reference) < 2:
            continue
        found = compare(reference, values, args.margin)
        low, high = found["ci95"]
        verdict = "equivalent" if found["equivalent"] else "not shown equivalent"
        print(
            f"  {side} - {args.reference}: {found['difference'] * 100:+.2f} points (95% interval {low * 100:+.2f} to "
            f"{high * 100:+.2f}; Welch p {found['welch_p']:.3g}); TOST at ±{args.margin * 100:g} points: p "
            f"{found['tost_p']:.3g}: {verdict}; Levene (spread) p {found['levene_p']:.3g}"
        )


if __name__ == "__main__":
    main()
