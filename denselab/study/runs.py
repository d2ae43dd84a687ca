"""The seeds study's runs, read once for the stages that judge them (aggregate, judge): every run of every
studied exercise, the lab's run (the top-level seed, evaluate's record) first, then replicate's (the other seeds).
Every run is one record (`denselab.core.records.RunRecord`), read one way."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from denselab.core.records import RunRecord

from denselab.core.cli import StageError
from denselab.core.config import Params
from denselab.core.history import long_history
from denselab.core.layout import run_file


def read_runs(params: Params, runs_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run of every studied exercise, the lab's run first.

    Returns (runs: one row per run with exercise, seed, lab_run, test_accuracy, test_loss;
    curves: long-form history with exercise, seed, epoch, metric, split, value).
    """
    import numpy as np
    import pandas as pd

    rows, curves = [], []
    for name in params.study.exercises:
        for seed in params.study.all_seeds(params.seed):
            path = runs_dir / name / run_file(seed)
            if not path.is_file():
                raise StageError(f"{name}, seed {seed}: missing {path}; run `dvc repro` to train it")
            run: RunRecord = json.loads(path.read_text())
            rows.append(
                {
                    "exercise": name,
                    "seed": seed,
                    "lab_run": seed == params.seed,
                    "test_accuracy": run["test_accuracy"],
                    "test_loss": run["test_loss"],
                }
            )
            history = pd.DataFrame(run["history"]).assign(epoch=lambda d: np.arange(1, len(d) + 1))
            curves.append(long_history(history).assign(exercise=name, seed=seed))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line option of a stage that reads every run (`--runs`)."""
    parser.add_argument("--runs", type=Path, required=True, help="every run's record (evaluate's and replicate's)")
