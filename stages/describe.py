"""Stage `describe@<dataset>`: what the data look like, before the network sees them.

    python -m stages.describe --dataset mnist --raw data/raw/mnist.npz --out reports/datasets/mnist

The lab prints the arrays' shapes before and after flattening (its Hình 1/2, 6/7 and 10/11); this
stage writes them to `summary.json` with the class counts, and draws sample images of every class,
the class counts and the pixel values raw against divided by 255 (`layout.DATASET_FIGURES`), in the
dataset's folder. No TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from denselab.core.cli import argument_parser, stage_main
from denselab.core.config import load_params
from denselab.core.files import replaced_folder
from denselab.core.i18n import N_, Language
from denselab.core.layout import DATASET_FIGURES as FIGURES
from denselab.core.layout import DATASET_SUMMARY as SUMMARY
from denselab.data.arrays import flatten, one_hot
from denselab.data.datasets import CLASS_NAMES, read_npz
from denselab.report.drawing import number_axis, plain, save_png, seaborn

SAMPLES_PER_CLASS = 8
SAMPLE_SEED = 0
SAMPLE_GAP = 2  # blank pixels between two samples in the figure

LABELS = {
    "train": N_("Train"),
    "test": N_("Test"),
    "class": N_("Class"),
    "images": N_("Images"),
    "raw": N_("Raw pixel values (0..255)"),
    "scaled": N_("Divided by 255 (0..1)"),
    "pixels": N_("Pixels (log scale)"),
}


def shapes(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, list[int]]]:
    """The four arrays' shapes as downloaded ("before") and as the prepare stage leaves them ("after": flattened
    images, one-hot training labels, the test labels as class indices)."""
    # The prepared arrays' own functions on two rows: the shapes they really produce, without converting everything.
    few = {
        "x_train": flatten(arrays["x_train"][:2], divide_by_255=False),
        "y_train": one_hot(arrays["y_train"][:2]),
        "x_test": flatten(arrays["x_test"][:2], divide_by_255=False),
        "y_test": arrays["y_test"][:2].reshape(-1),
    }
    return {
        "before": {k: list(v.shape) for k, v in arrays.items()},
        "after": {k: [len(arrays[k]), *few[k].shape[1:]] for k in arrays},
    }


def class_counts(arrays: dict[str, np.ndarray], class_names: tuple[str, ...]) -> pd.DataFrame:
    """Images per class and split (long form: class, name, split, images)."""
    import pandas as pd

    frames = []
    for split in ("train", "test"):
        counts = (
            pd.Series(arrays[f"y_{split}"].reshape(-1)).value_counts().reindex(range(len(class_names)), fill_value=0)
        )
        frames.append(
            pd.DataFrame({"class": counts.index, "name": class_names, "split": split, "images": counts.to_numpy()})
        )
    return pd.concat(frames, ignore_index=True)


def describe(dataset: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The numbers the report shows of a dataset: shapes before and after flattening, and images per class.

    `arrays` as `datasets.read_npz` returns them, checked."""
    names = CLASS_NAMES[dataset]
    counts = class_counts(arrays, names)
    return {
        "dataset": dataset,
        "class_names": list(names),
        "shapes": shapes(arrays),
        "counts": {split: group["images"].astype(int).tolist() for split, group in counts.groupby("split", sort=False)},
    }


def sample_mosaic(x: np.ndarray, y: np.ndarray, classes: int, gap: int = SAMPLE_GAP) -> np.ndarray:
    """SAMPLES_PER_CLASS training images of every class (chosen with SAMPLE_SEED) in one image: a row per class,
    `gap` pixels of blank between images, blank where a class has fewer images. Blank is white as drawn: 0 for
    one channel (drawn gray_r), 255 for colour."""
    rng = np.random.default_rng(SAMPLE_SEED)
    y = y.reshape(-1)
    height, width = x.shape[1:3]
    blank = 0 if x.ndim == 3 else 255
    mosaic = np.full(
        (classes * (height + gap) - gap, SAMPLES_PER_CLASS * (width + gap) - gap, *x.shape[3:]), blank, dtype=x.dtype
    )
    for c in range(classes):
        members = np.flatnonzero(y == c)
        if not len(members):
            continue
        chosen = np.sort(rng.choice(members, size=min(SAMPLES_PER_CLASS, len(members)), replace=False))
        for k, i in enumerate(chosen):
            top, left = c * (height + gap), k * (width + gap)
            mosaic[top : top + height, left : left + width] = x[i]
    return mosaic


def samples_figure(x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...]):
    """SAMPLES_PER_CLASS training images of every class, one row per class, the class name in front: one image
    (`sample_mosaic`) in one axes, so the figure costs one image to lay out and draw, not one per sample."""
    seaborn()
    import matplotlib.pyplot as plt

    mosaic = sample_mosaic(x, y, len(class_names))
    height = x.shape[1]
    figure, ax = plt.subplots(figsize=(0.7 * SAMPLES_PER_CLASS + 0.8, 0.7 * len(class_names)))
    ax.imshow(mosaic, cmap="gray_r" if mosaic.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([c * (height + SAMPLE_GAP) + (height - 1) / 2 for c in range(len(class_names))])
    ax.set_yticklabels([plain(name) for name in class_names], fontsize=9)
    ax.tick_params(axis="y", length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    figure.tight_layout(pad=0.2)
    return figure


def counts_figure(counts: pd.DataFrame, labels: dict[str, str]):
    """Images per class, training and test side by side (a seaborn bar chart)."""
    sns = seaborn()
    import matplotlib.pyplot as plt

    data = counts.assign(
        split=counts["split"].map({"train": labels["train"], "test": labels["test"]}), name=counts["name"].map(plain)
    )
    figure, ax = plt.subplots(figsize=(7, 3))
    sns.barplot(data=data, x="name", y="images", hue="split", ax=ax)
    ax.set_xlabel(labels["class"])
    ax.set_ylabel(labels["images"])
    ax.tick_params(axis="x", rotation=45 if max(map(len, data["name"])) > 2 else 0)
    # Above the bars, not over them: the tallest class is often the last.
    ax.legend(title=None, loc="lower right", bbox_to_anchor=(1, 1), ncol=2, frameon=False)
    figure.tight_layout()
    return figure


def pixels_figure(x: np.ndarray, labels: dict[str, str], fmt: Language):
    """How often each pixel value occurs in the test images, raw and divided by 255: the same shape on
    another scale (a seaborn histogram weighted by exact counts)."""
    sns = seaborn()
    import matplotlib.pyplot as plt

    counts = np.bincount(np.asarray(x, dtype=np.uint8).reshape(-1), minlength=256)
    values = np.arange(256)
    figure, axes = plt.subplots(1, 2, figsize=(9, 2.8))
    for ax, scale, title in ((axes[0], 1.0, labels["raw"]), (axes[1], 255.0, labels["scaled"])):
        sns.histplot(x=values / scale, weights=counts, bins=32, ax=ax, color="C0", edgecolor="none")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("")
        ax.set_ylabel(labels["pixels"] if scale == 1.0 else "")
        number_axis(ax.xaxis, fmt)
    figure.tight_layout()
    return figure


def write_figures(folder: Path, found: dict[str, Any], arrays: dict[str, np.ndarray], language: str) -> None:
    """summary.json and every figure of one dataset into `folder` (made if missing)."""
    import pandas as pd

    fmt = Language(language)
    labels = fmt.labels(LABELS)
    names = tuple(found["class_names"])
    counts = pd.DataFrame(
        [
            {"name": names[c], "split": split, "images": n}
            for split, per_class in found["counts"].items()
            for c, n in enumerate(per_class)
        ]
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SUMMARY).write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    save_png(samples_figure(arrays["x_train"], arrays["y_train"], names), folder / FIGURES["samples"], crop=True)
    save_png(counts_figure(counts, labels), folder / FIGURES["counts"])
    save_png(pixels_figure(arrays["x_test"], labels, fmt), folder / FIGURES["pixels"])


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.describe --dataset NAME --raw FILE.npz --out DIR`."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("--dataset", required=True, help="a key of `datasets` in params.yaml")
    parser.add_argument("--raw", type=Path, required=True, help="its downloaded arrays (download)")
    parser.add_argument("--out", type=Path, required=True, help="the folder of its summary and figures")
    args = parser.parse_args(argv)
    language = load_params().report.language
    # The download is read and checked (names, dtypes, shapes, labels) before anything is drawn, and the
    # folder is replaced as a whole at the end: a failure leaves the previous figures, not half of them.
    arrays = read_npz(args.raw, args.dataset)
    with replaced_folder(args.out) as staging:
        found = describe(args.dataset, arrays)
        write_figures(staging, found, arrays, language)
    before, after = found["shapes"]["before"]["x_train"], found["shapes"]["after"]["x_train"]
    print(f"{args.dataset}: x_train {tuple(before)} -> {tuple(after)}; wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
