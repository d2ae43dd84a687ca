"""Stage `explain@<exercise>`: the classification report, the mistakes, what the hidden units do, and the figures.

    python -m stages.explain --exercise ex3 --evidence data/evidence/ex3.npz --prepared data/prepared/mnist_scaled \
        --history reports/history/ex3.csv --out reports/evaluation/ex3.json --figures reports/figures/ex3

Everything here comes from what `evaluate` kept (`--evidence`), the test images and the learning curves:
no TensorFlow. scikit-learn computes the confusion matrix and the per-class precision, recall and F1,
pandas holds the tables, seaborn and matplotlib draw. `--out` holds the numbers the report cites;
`--figures` the exercise's PNGs (`layout.EXERCISE_FIGURES`), replaced as a whole.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from denselab.arrays import read_test
from denselab.cli import StageError, argument_parser, stage_main
from denselab.config import load_params
from denselab.datasets import CLASS_NAMES, IMAGE_SHAPES
from denselab.drawing import CURVE_LABELS, curves_figure, number_axis, plain, save_png, seaborn
from denselab.evaluation import SATURATION_Z, read_evidence
from denselab.files import replaced_folder, write_text
from denselab.history import long_history
from denselab.i18n import N_, Language
from denselab.layout import EXERCISE_FIGURES as FIGURES
from denselab.records import Saturation, UnitStats

MISTAKES = 20  # the most confident misclassifications shown
PAIR_EXAMPLES = 8  # examples of the most frequent confusion
SATURATED_SHARE = 0.95  # a sigmoid unit saturated on at least this share of the test samples is an on/off switch

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
# Numbers


def _clean(value: Any) -> Any:
    """A number for JSON: NaN (undefined, e.g. the precision of a class never predicted) becomes None."""
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else round(float(value), 6)
    return int(value) if isinstance(value, np.integer) else value


def classification(y_true: np.ndarray, y_pred: np.ndarray, class_names: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, the confusion matrix (rows: actual, columns: predicted) and per class its support, right
    answers, precision, recall and F1, as scikit-learn computes them. The lab's per-class accuracy is recall."""
    import pandas as pd
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(class_names)))
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=np.nan
    )
    table = pd.DataFrame(
        {
            "class": labels,
            "name": class_names,
            "support": support,
            "correct": np.diag(matrix),
            "accuracy": recall,
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
    )
    return {
        "samples": len(y_true),
        "correct": int(np.trace(matrix)),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 6) if len(y_true) else 0.0,
        "class_names": list(class_names),
        "confusion_matrix": matrix.tolist(),
        "per_class": [{k: _clean(v) for k, v in row.items()} for row in table.to_dict("records")],
    }


def mistakes(probabilities: np.ndarray, y_true: np.ndarray) -> pd.DataFrame:
    """Every misclassified test sample, the most confident first: index, actual, predicted, and the
    probability the network gave the class it predicted (its output, for a network without an output activation)."""
    import pandas as pd

    y_pred = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    frame = pd.DataFrame(
        {
            "index": wrong,
            "actual": y_true[wrong].astype(int),
            "predicted": y_pred[wrong],
            "probability": probabilities[wrong, y_pred[wrong]].astype(float),
        }
    )
    return frame.sort_values(["probability", "index"], ascending=[False, True], kind="stable", ignore_index=True)


def top_confusion(matrix: list[list[int]]) -> tuple[int, int, int] | None:
    """(actual, predicted, count) of the most frequent confusion, the lowest classes on a tie; None if none."""
    off = [(count, a, p) for a, row in enumerate(matrix) for p, count in enumerate(row) if a != p and count > 0]
    if not off:
        return None
    count, actual, predicted = max(off, key=lambda t: (t[0], -t[1], -t[2]))
    return actual, predicted, count


def idle_units(evidence: dict[str, np.ndarray], layer: int) -> np.ndarray:
    """Per unit of a layer, whether it never changes its output on the test set: a ReLU unit never positive
    (dead), a sigmoid unit saturated at the same end for every sample (stuck). False for other activations."""
    activation = str(evidence[f"activation_{layer}"])
    positive, low, high = (np.asarray(evidence[f"{k}_{layer}"]) for k in ("positive", "low", "high"))
    if activation == "relu":
        return positive == 0
    if activation == "sigmoid":
        return (low == 1) | (high == 1)
    return np.zeros(len(positive), dtype=bool)


def saturation() -> Saturation:
    """When a sigmoid unit counts as saturated, for the page to say with the figures."""
    return {
        "z": round(SATURATION_Z, 6),
        "below": round(1 / (1 + math.exp(SATURATION_Z)), 6),
        "above": round(1 / (1 + math.exp(-SATURATION_Z)), 6),
        "share": SATURATED_SHARE,
    }


def unit_diagnostics(evidence: dict[str, np.ndarray]) -> list[UnitStats]:
    """Per layer, what its units do on the test set (see `denselab.evaluation.unit_evidence` for the raw figures).

    `dead`: the share of ReLU units never positive on any test sample (they pass nothing on and get no
    gradient). `stuck`: the share of sigmoid units saturated at the same end for every sample (a constant).
    `saturated`: the share of sigmoid units saturated on at least SATURATED_SHARE of the samples (on/off
    switches). `active_per_sample`: how many ReLU units an average sample switches on; `silent`: the share
    of samples that switch on none of them (the next layer then sees only its biases). None where the
    activation makes the figure meaningless.
    """
    layers = int(evidence["layers"])
    found = []
    for i in range(layers):
        activation = str(evidence[f"activation_{i}"])
        positive, low, high = (np.asarray(evidence[f"{k}_{i}"], dtype=np.float64) for k in ("positive", "low", "high"))
        relu, sigmoid = activation == "relu", activation == "sigmoid"
        found.append(
            UnitStats(
                layer=i + 1,
                hidden=i < layers - 1,
                units=len(positive),
                activation=activation,
                median_abs=_clean(float(evidence[f"median_abs_{i}"])),
                dead=_clean(float(np.mean(idle_units(evidence, i)))) if relu else None,
                active_per_sample=_clean(float(positive.sum())) if relu else None,
                silent=_clean(float(evidence[f"silent_{i}"])) if relu else None,
                stuck=_clean(float(np.mean(idle_units(evidence, i)))) if sigmoid else None,
                saturated=_clean(float(np.mean(low + high >= SATURATED_SHARE))) if sigmoid else None,
            )
        )
    return found


def unit_states(evidence: dict[str, np.ndarray]) -> list[str]:
    """For each weight map's unit: "dead" (ReLU never positive), "stuck" (sigmoid constant) or ""."""
    if int(evidence["layers"]) < 2:
        return []
    label = {"relu": "dead", "sigmoid": "stuck"}.get(str(evidence["activation_0"]), "")
    idle = idle_units(evidence, 0)[: evidence["weights"].shape[1]]
    return [label if unit_idle else "" for unit_idle in idle]


def explanation(evidence: dict[str, np.ndarray], y_true: np.ndarray, class_names: tuple[str, ...]) -> dict[str, Any]:
    """The numbers of one exercise's evaluation: classification report, mistakes, the top confusion and
    its examples, and the hidden-unit diagnostics."""
    probabilities = evidence["probabilities"]
    y_true = np.asarray(y_true).reshape(-1)
    found = classification(y_true, probabilities.argmax(axis=1), class_names)
    wrong = mistakes(probabilities, y_true)
    top = top_confusion(found["confusion_matrix"])
    pair = None
    if top:
        actual, predicted, count = top
        examples = wrong[(wrong["actual"] == actual) & (wrong["predicted"] == predicted)].head(PAIR_EXAMPLES)
        pair = {"actual": actual, "predicted": predicted, "count": count, "examples": examples.to_dict("records")}
    output = str(evidence[f"activation_{int(evidence['layers']) - 1}"])
    found |= {
        # Without a sigmoid or softmax the outputs are scores, not probabilities: the page says which.
        "probabilities": output in ("sigmoid", "softmax"),
        "mistakes": wrong.head(MISTAKES).to_dict("records"),
        "pair": pair,
        "units": unit_diagnostics(evidence),
        "saturation": saturation(),
        "weight_units": unit_states(evidence),
    }
    return found


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
    import matplotlib.pyplot as plt

    columns = max(1, min(columns, len(images)))
    rows = max(1, math.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.1 * columns, 1.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image, cmap="gray_r" if image.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(plain(title), fontsize=7.5)
    figure.tight_layout(pad=0.3)
    return figure


def weights_figure(weights: np.ndarray, shape: tuple[int, ...], states: list[str], labels: dict[str, str]):
    """Each unit's incoming first-layer weights drawn as an image: red pulls the unit up, blue down (one
    channel); for colour inputs each unit's weights are stretched to 0..1 per channel."""
    seaborn()
    import matplotlib.pyplot as plt

    units = weights.shape[1]
    columns = min(8, units)
    rows = math.ceil(units / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.2 * columns, 1.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for unit, ax in zip(range(units), axes.flat):
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
        ax.set_title(title, fontsize=7.5)
    figure.tight_layout(pad=0.3)
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
