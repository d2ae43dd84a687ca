"""The learning curves: the per-epoch history the train stage writes as CSV and the figures and the report read."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# The columns of a history CSV; every one but the epoch is a curve.
COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
CURVES = COLUMNS[1:]


def history_csv(history: dict[str, list[float]]) -> str:
    """The per-epoch history as CSV (epoch counted from 1), six significant digits."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i in range(len(history["loss"])):
        writer.writerow([i + 1] + [f"{history[c][i]:.6g}" for c in CURVES])
    return out.getvalue()


def read_history(path: Path) -> dict[str, list[float]]:
    """A history CSV as columns of floats."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {column: [float(row[column]) for row in rows] for column in (rows[0] if rows else {})}


def long_history(history: pd.DataFrame) -> pd.DataFrame:
    """A history table (the COLUMNS) in long form: epoch, metric (accuracy or loss), split (train or
    validation), value."""
    import numpy as np

    long = history.melt(id_vars="epoch", value_vars=list(CURVES), var_name="column")
    long["metric"] = long["column"].str.removeprefix("val_")
    long["split"] = np.where(long["column"].str.startswith("val_"), "validation", "train")
    return long.drop(columns="column")
