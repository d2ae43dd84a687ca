"""The seeds study's runs, read once for the stages that judge them (aggregate, judge): every run of every
studied exercise, the lab's run (train and evaluate, the top-level seed) first, then replicate's (the other seeds)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from denselab.cli import StageError
from denselab.config import Params
from denselab.history import long_history
from denselab.layout import exercise_file, run_file


def read_runs(
    params: Params, metrics_dir: Path, history_dir: Path, runs_dir: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run of every studied exercise, the lab's run first.

    Returns (runs: one row per run with exercise, seed, lab_run, test_accuracy, test_loss;
    curves: long-form history with exercise, seed, epoch, metric, split, value).
    """
    import numpy as np
    import pandas as pd

    rows, curves = [], []
    for name in params.study.exercises:
        for seed in params.study.all_seeds(params.seed):
            lab_run = seed == params.seed
            paths = (
                [metrics_dir / exercise_file("metrics", name), history_dir / exercise_file("history", name)]
                if lab_run
                else [runs_dir / name / run_file(seed)]
            )
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise StageError(f"{name}, seed {seed}: missing {', '.join(missing)}; run `dvc repro` to train it")
            metrics = json.loads(paths[0].read_text())
            if lab_run:
                history = pd.read_csv(paths[1])
            else:
                history = pd.DataFrame(metrics["history"]).assign(epoch=lambda d: np.arange(1, len(d) + 1))
            rows.append(
                {
                    "exercise": name,
                    "seed": seed,
                    "lab_run": lab_run,
                    "test_accuracy": metrics["test_accuracy"],
                    "test_loss": metrics["test_loss"],
                }
            )
            curves.append(long_history(history).assign(exercise=name, seed=seed))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of a stage that reads every run (`--metrics`, `--history`, `--runs`)."""
    parser.add_argument("--metrics", type=Path, required=True, help="the lab's runs' metrics (evaluate)")
    parser.add_argument("--history", type=Path, required=True, help="the lab's runs' histories (train)")
    parser.add_argument("--runs", type=Path, required=True, help="the other seeds' runs (replicate)")
