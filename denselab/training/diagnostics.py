"""What one run's test-set evidence (`denselab.training.evaluation`) says, in numbers: the classification report
(scikit-learn's definitions), its mistakes, the most frequent confusion, and what the hidden units do. Pure: arrays in, records
out; the explain stage reads the evidence, writes these and draws the figures."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from denselab.core.records import Saturation, UnitStats
from denselab.training.evaluation import SATURATION_Z

if TYPE_CHECKING:
    import pandas as pd

MISTAKES = 20  # the most confident misclassifications shown
PAIR_EXAMPLES = 8  # examples of the most frequent confusion
SATURATED_SHARE = 0.95  # a sigmoid unit saturated on at least this share of the test samples is an on/off switch


def _clean(value: Any) -> Any:
    """A number for JSON: NaN (undefined, e.g. the precision of a class never predicted) becomes None."""
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else round(float(value), 6)
    return int(value) if isinstance(value, np.integer) else value


def classification(y_true: np.ndarray, y_pred: np.ndarray, class_names: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, the confusion matrix (rows: actual, columns: predicted) and per class its support, right
    answers, precision, recall and F1, as scikit-learn's `classification_report` defines them (tests/test_explain.py
    checks them against it). The lab's per-class accuracy is recall. NumPy counts: importing scikit-learn, a second
    in every explain process, would cost more than the counting."""
    n = len(class_names)
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    matrix = np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)
    correct = np.diag(matrix)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0: a class never predicted (or absent) is NaN
        precision = correct / predicted
        recall = correct / support
        f1 = 2.0 * correct / (support.astype(np.float64) + predicted)  # scikit-learn's F1, from the counts
    per_class = [
        {
            "class": c,
            "name": class_names[c],
            "support": support[c],
            "correct": correct[c],
            "accuracy": recall[c],
            "precision": precision[c],
            "recall": recall[c],
            "f1": f1[c],
        }
        for c in range(n)
    ]
    return {
        "samples": len(y_true),
        "correct": int(correct.sum()),
        "accuracy": round(float(np.mean(y_true == y_pred)), 6) if len(y_true) else 0.0,
        "class_names": list(class_names),
        "confusion_matrix": matrix.tolist(),
        "per_class": [{k: _clean(v) for k, v in row.items()} for row in per_class],
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
    """Per layer, what its units do on the test set (see `denselab.training.evaluation.unit_evidence` for the raw figures).

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
