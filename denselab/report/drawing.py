"""What every stage that draws shares: seaborn on a display-less backend, localized tick labels, PNG files.
Nothing is imported until a figure is drawn."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING

from denselab.core.i18n import N_, Language

if TYPE_CHECKING:
    import pandas as pd

DPI = 90
# The texts of a learning-curve figure (`curves_figure`); message ids of the catalogs in templates/messages/.
CURVE_LABELS = {
    "train": N_("Train"),
    "validation": N_("Validation"),
    "accuracy": N_("Accuracy"),
    "loss": N_("Loss"),
    "epoch": N_("Epoch"),
}


def seaborn():
    """seaborn, themed for the report, with matplotlib drawing straight to PNG (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)
    return sns


def plain(text: object) -> str:
    """`text` as matplotlib shows it literally: a `$` would otherwise start mathematical notation."""
    return str(text).replace("$", r"\$")


def number_axis(axis, fmt: Language) -> None:
    """Tick labels in the report's language (decimal comma in Vietnamese), with as many decimals as the
    tick spacing needs (97.75 and 97.80, not 97.8 twice)."""
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _position) -> str:
        ticks = axis.get_majorticklocs()
        step = min((b - a for a, b in itertools.pairwise(ticks) if b > a), default=1.0)
        return fmt.number(value, max(0, math.ceil(-math.log10(step) - 1e-9)))

    axis.set_major_formatter(FuncFormatter(label))


def save_png(figure, path: Path) -> None:
    """Write `figure` as a PNG without a timestamp or software tag (same figure, same bytes) and free it."""
    import matplotlib.pyplot as plt

    figure.savefig(path, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)


def curves_figure(curves: pd.DataFrame, labels: dict[str, str], fmt: Language):
    """Accuracy and loss per epoch, train against validation, side by side, from long-form curves
    (`history.long_history`): one run a line, several runs (a `seed` column) their mean with a band of one
    standard deviation. `labels`: CURVE_LABELS, translated."""
    sns = seaborn()
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    data = curves.assign(split=curves["split"].map({"train": labels["train"], "validation": labels["validation"]}))
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        sns.lineplot(
            data=data[data["metric"] == metric],
            x="epoch",
            y="value",
            hue="split",
            errorbar="sd",
            marker="o",
            markersize=4,
            markeredgewidth=0,
            ax=ax,
        )
        ax.set_title(labels[metric])
        ax.set_xlabel(labels["epoch"])
        ax.set_ylabel("")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        number_axis(ax.yaxis, fmt)
        ax.legend(title=None)
    figure.tight_layout()
    return figure
