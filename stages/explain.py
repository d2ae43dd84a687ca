"""Stage `explain@<exercise>`: the classification report, the mistakes, what the hidden units do, and the figures.

    python -m stages.explain --exercise ex3 --evidence data/evidence/ex3.npz --prepared data/prepared/mnist_scaled \
        --history reports/history/ex3.csv --out reports/evaluation/ex3.json --figures reports/figures/ex3

Everything here comes from what `evaluate` kept (`--evidence`), the test images and the learning curves:
no TensorFlow. The numbers are `denselab.training.diagnostics`' (the confusion matrix and per-class precision,
recall and F1 as scikit-learn defines them, counted with NumPy); seaborn and matplotlib draw here. `--out` holds
the numbers the report cites; `--figures` the exercise's PNGs (`layout.EXERCISE_FIGURES`), replaced as a whole.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from denselab.core.cli import StageError, argument_parser, stage_main
from denselab.core.config import load_params
from denselab.core.files import replaced_folder, write_text
from denselab.core.history import long_history
from denselab.core.i18n import N_, Language
from denselab.core.layout import EXERCISE_FIGURES as FIGURES
from denselab.data.arrays import read_test
from denselab.data.datasets import CLASS_NAMES, IMAGE_SHAPES
from denselab.report.drawing import (
    CURVE_LABELS,
    TITLE_PAD,
    curves_figure,
    image_grid,
    number_axis,
    plain,
    save_png,
    seaborn,
)
from denselab.training.diagnostics import PAIR_EXAMPLES, explanation
from denselab.training.evaluation import SATURATION_Z, read_evidence

GRID_FONT = 7.5  # points: the titles of a gallery's images and of the weight maps
# The figures' texts; message ids of the catalogs in templates/messages/.
LABELS = {
    **CURVE_LABELS,
    "predicted": N_("Predicted class"),
    "actual": N_("Actual class"),
    "unit": N_("unit %(unit)s"),
    "dead": N_("dead"),
    "stuck": N_("stuck"),
    "layer": N_("Layer %(layer)s: %(units)s units, %(activation)s"),
    "pre_activation": N_("Pre-activation z = w·x + b"),
    "share": N_("Share of values (%)"),
    "saturation": N_("sigmoid saturates (|z| > %(z)s)"),
}


# ---------------------------------------------------------------------------------------------
# Figures


def confusion_figure(matrix: list[list[int]], class_names: tuple[str, ...], labels: dict[str, str]):
    """The confusion matrix as an annotated seaborn heatmap of a DataFrame, as the lab draws it (Hình 9/14)."""
    sns = seaborn()
    import matplotlib.pyplot as plt
    import pandas as pd

    names = [plain(n) for n in class_names]
    frame = pd.DataFrame(matrix, index=names, columns=names)
    figure, ax = plt.subplots(figsize=(6.4, 5.2))
    sns.heatmap(
        frame, annot=True, fmt="d", cmap="Blues", annot_kws={"fontsize": 8}, cbar_kws={"fraction": 0.046}, ax=ax
    )
    ax.set_xlabel(labels["predicted"])
    ax.set_ylabel(labels["actual"])
    ax.tick_params(axis="x", rotation=45 if max(map(len, names)) > 2 else 0)
    ax.tick_params(axis="y", rotation=0)
    figure.tight_layout()
    return figure


def as_image(row: np.ndarray, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """A flattened input row back as an image in 0..1 (inputs are 0..255 or already divided by 255)."""
    return np.clip(np.asarray(row, dtype=np.float32).reshape(shape) / scale, 0.0, 1.0)


def caption(actual: str, predicted: str, probability: str) -> str:
    """An image's title in a gallery: actual → predicted, then the probability; long names on lines of their own."""
    pair = f"{actual} → {predicted}" if len(actual) + len(predicted) <= 10 else f"{actual}\n→ {predicted}"
    return f"{pair}\n{probability}"


def gallery_figure(images: list[np.ndarray], titles: list[str], columns: int):
    """Images in a grid, each with its title (gray for one channel, colour for three)."""
    seaborn()

    lines = max((title.count("\n") + 1 for title in titles), default=1)
    figure, axes = image_grid(len(images), columns, size=1.0, title_lines=lines, fontsize=GRID_FONT)
    for ax, image, title in zip(axes, images, titles):
        ax.imshow(image, cmap="gray_r" if image.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(plain(title), fontsize=GRID_FONT, pad=TITLE_PAD)
    return figure


def weights_figure(weights: np.ndarray, shape: tuple[int, ...], states: list[str], labels: dict[str, str]):
    """Each unit's incoming first-layer weights drawn as an image: red pulls the unit up, blue down (one
    channel); for colour inputs each unit's weights are stretched to 0..1 per channel."""
    seaborn()

    units = weights.shape[1]
    figure, axes = image_grid(units, 8, size=1.1, title_lines=1, fontsize=GRID_FONT)
    for unit, ax in zip(range(units), axes):
        w = weights[:, unit].reshape(shape)
        if w.ndim == 2:
            limit = float(np.abs(w).max()) or 1.0
            ax.imshow(w, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        else:
            low, high = w.min(axis=(0, 1)), w.max(axis=(0, 1))
            ax.imshow((w - low) / np.where(high > low, high - low, 1.0), interpolation="nearest")
        title = labels["unit"] % {"unit": unit}
        if states[unit]:
            title += f" ({labels[states[unit]]})"
        ax.set_title(title, fontsize=GRID_FONT, pad=TITLE_PAD)
    return figure


def units_figure(evidence: dict[str, np.ndarray], labels: dict[str, str], fmt: Language):
    """The distribution of each layer's pre-activations on the test set (a seaborn histogram per layer)."""
    sns = seaborn()
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    layers = int(evidence["layers"])
    figure, axes = plt.subplots(1, layers, figsize=(4.2 * layers, 3.0), squeeze=False)
    for i, ax in enumerate(axes[0]):
        activation = str(evidence[f"activation_{i}"])
        sns.histplot(x=evidence[f"sample_{i}"], bins=60, stat="percent", ax=ax, color="C0", edgecolor="none")
        ax.axvline(0, color="black", linewidth=0.8)
        if activation == "sigmoid":
            for edge in (-SATURATION_Z, SATURATION_Z):
                ax.axvline(
                    edge,
                    color="C3",
                    linestyle="--",
                    linewidth=1,
                    label=labels["saturation"] % {"z": fmt.number(SATURATION_Z, 1)} if edge > 0 else None,
                )
            ax.legend(loc="upper right", fontsize=7)
        ax.set_title(
            labels["layer"]
            % {"layer": i + 1, "units": fmt.thousands(len(evidence[f"positive_{i}"])), "activation": activation}
        )
        ax.set_xlabel(labels["pre_activation"])
        ax.set_ylabel(labels["share"] if i == 0 else "")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # raw-pixel layers reach ±10⁴: few, readable ticks
        number_axis(ax.xaxis, fmt)
    figure.tight_layout()
    return figure


def write_figures(
    folder: Path,
    found: dict[str, Any],
    evidence: dict[str, np.ndarray],
    x_test: np.ndarray,
    history: pd.DataFrame,
    dataset: str,
    scale: float,
    language: str,
) -> None:
    """Every figure of one exercise into `folder` (FIGURES; the mistakes, the pair and the weight maps only
    when there is something to show)."""
    fmt = Language(language)
    labels = fmt.labels(LABELS)
    names, shape = found["class_names"], IMAGE_SHAPES[dataset]

    def shown(rows: list[dict]) -> tuple[list[np.ndarray], list[str]]:
        return (
            [as_image(x_test[r["index"]], shape, scale) for r in rows],
            [caption(names[r["actual"]], names[r["predicted"]], fmt.number(r["probability"], 2)) for r in rows],
        )

    with replaced_folder(folder) as staging:
        save_png(curves_figure(long_history(history), labels, fmt), staging / FIGURES["curves"])
        save_png(confusion_figure(found["confusion_matrix"], names, labels), staging / FIGURES["confusion"])
        if found["mistakes"]:
            save_png(gallery_figure(*shown(found["mistakes"]), columns=10), staging / FIGURES["mistakes"])
        if found["pair"]:
            save_png(
                gallery_figure(*shown(found["pair"]["examples"]), columns=PAIR_EXAMPLES), staging / FIGURES["pair"]
            )
        if found["weight_units"]:
            save_png(
                weights_figure(evidence["weights"], shape, found["weight_units"], labels), staging / FIGURES["weights"]
            )
        save_png(units_figure(evidence, labels, fmt), staging / FIGURES["units"])


# ---------------------------------------------------------------------------------------------
# I/O


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.explain --exercise NAME --evidence FILE.npz --prepared DIR --history FILE.csv
    --out FILE.json --figures DIR`."""
    import pandas as pd

    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("--exercise", required=True)
    parser.add_argument("--evidence", type=Path, required=True, help="what evaluate kept (.npz)")
    parser.add_argument("--prepared", type=Path, required=True, help="the folder of x_test.npy and y_test.npy")
    parser.add_argument("--history", type=Path, required=True, help="the learning curves (train)")
    parser.add_argument("--out", type=Path, required=True, help="the evaluation's numbers (.json)")
    parser.add_argument("--figures", type=Path, required=True, help="the folder of the exercise's figures")
    args = parser.parse_args(argv)
    params = load_params()
    if args.exercise not in params.exercises:
        raise StageError(f"no exercise {args.exercise!r} in params.yaml exercises")
    variant = params.inputs[params.exercises[args.exercise].inputs]
    evidence = read_evidence(args.evidence)
    x_test, y_test = read_test(args.prepared)
    try:
        history = pd.read_csv(args.history)
    except (OSError, ValueError) as exc:
        raise StageError(f"{args.history}: cannot read the learning curves ({exc}); run `dvc repro` to train") from exc
    if len(y_test) != len(evidence["probabilities"]):
        raise StageError(
            f"{args.evidence}: {len(evidence['probabilities'])} predictions for {len(y_test)} test "
            "samples; run `dvc repro` to evaluate again"
        )
    found = explanation(evidence, y_test, CLASS_NAMES[variant.dataset])
    write_text(args.out, json.dumps(found, indent=1, ensure_ascii=False) + "\n")
    scale = 1.0 if variant.divide_by_255 else 255.0
    write_figures(args.figures, found, evidence, x_test, history, variant.dataset, scale, params.report.language)
    units = "; ".join(
        f"layer {u['layer']} ({u['activation']}): "
        + ", ".join(
            [f"{k} {u[k]:.1%}" for k in ("dead", "stuck", "saturated") if u[k] is not None]
            + [f"median |z| {u['median_abs']:.3g}"]
        )
        for u in found["units"]
        if u["hidden"]
    )
    print(
        f"{args.exercise}: {len(found['mistakes'])} mistakes shown" + (f"; {units}" if units else ""), file=sys.stderr
    )


if __name__ == "__main__":
    main()
