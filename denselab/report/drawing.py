"""What every stage that draws shares: seaborn on a display-less backend, localized tick labels, PNG files.
Nothing is imported until a figure is drawn."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING

from denselab.core.cli import optional_imports_off
from denselab.core.i18n import N_, Language

if TYPE_CHECKING:
    import pandas as pd

DPI = 90
TITLE_PAD = 2.0  # points between an image and its title in `image_grid`
# The texts of a learning-curve figure (`curves_figure`); message ids of the catalogs in templates/messages/.
CURVE_LABELS = {
    "train": N_("Train"),
    "validation": N_("Validation"),
    "accuracy": N_("Accuracy"),
    "loss": N_("Loss"),
    "epoch": N_("Epoch"),
}


# seaborn imports these parts of SciPy, if installed, for kernel density estimates and clustered heatmaps, and falls
# back to its own code when the import fails. No figure here draws either: skipping them saves 0.45 s of each
# drawing stage's start-up (measured). SciPy stays importable afterwards (the study's statistics use it).
SEABORN_OPTIONAL = ("scipy.stats", "scipy.cluster")


def seaborn():
    """seaborn, themed for the report, with matplotlib drawing straight to PNG (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    sns = _import_seaborn()
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)
    # Titles sit at the top of their axes: none of our figures puts ticks or labels above an axes, so matplotlib's
    # search for a free place (a layout of every axis at each draw, most of a gallery's drawing time) finds nothing.
    matplotlib.rcParams["axes.titley"] = 1.0
    return sns


def _import_seaborn():
    """seaborn, imported with `SEABORN_OPTIONAL` off; imported whole if this seaborn needs them after all."""
    try:
        with optional_imports_off(SEABORN_OPTIONAL):
            import seaborn as sns
    except ImportError:
        import seaborn as sns
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


def image_grid(count: int, columns: int, *, size: float, title_lines: int, fontsize: float):
    """A figure of `count` image axes (at least one), `columns` to a row, each `size` inches square under a title of
    up to `title_lines` lines of `fontsize` points (set with `pad=TITLE_PAD`), and every axes' frame off.

    Laid out by arithmetic, not by a layout pass: a gallery's axes all have the same size and texts, so their
    places are known before anything is drawn, and a title of three lines never runs into the row above."""
    import matplotlib.pyplot as plt

    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    margin = 0.05  # inches around each image
    title = (title_lines * fontsize * 1.2 + TITLE_PAD) / 72  # matplotlib's line height is 1.2 font sizes
    cell_width, cell_height = size + 2 * margin, size + title + 2 * margin
    width, height = columns * cell_width, rows * cell_height
    figure = plt.figure(figsize=(width, height))
    axes = []
    for i in range(rows * columns):
        row, column = divmod(i, columns)
        left, bottom = column * cell_width + margin, height - (row + 1) * cell_height + margin
        ax = figure.add_axes((left / width, bottom / height, size / width, size / height))
        ax.axis("off")
        axes.append(ax)
    return figure, axes


def save_png(figure, path: Path, *, crop: bool = False) -> None:
    """Write `figure` as a PNG without a timestamp or software tag (same figure, same bytes) and free it.

    The figure is saved at its own size: each one is laid out once, by its `tight_layout`, with everything inside
    (a second, "tight" pass of the whole figure at save time would cost a third of the drawing). `crop`: that pass
    all the same, for a figure tight_layout cannot fit: an axes that keeps an image's aspect ratio, a figure-wide
    legend."""
    import matplotlib.pyplot as plt

    figure.savefig(
        path, format="png", dpi=DPI, metadata={"Software": None}, **({"bbox_inches": "tight"} if crop else {})
    )
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
