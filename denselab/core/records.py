"""What one stage writes and another reads, field by field: the JSON records passed between stages.

A writer builds these, a reader indexes them; both name the same keys, and mypy checks them on both sides.
"""

from __future__ import annotations

from typing import TypedDict


class UnitStats(TypedDict):
    """What one layer's units do on the test set (explain writes it; the page words it). None where the layer's
    activation makes the figure meaningless."""

    layer: int  # from 1
    hidden: bool
    units: int
    activation: str
    median_abs: float | None  # median |pre-activation|
    dead: float | None  # ReLU: the share of units never positive
    active_per_sample: float | None  # ReLU: how many units an average image switches on
    silent: float | None  # ReLU: the share of images that switch on none
    stuck: float | None  # sigmoid: the share of units saturated at the same end for every image
    saturated: float | None  # sigmoid: the share of units saturated on at least `Saturation.share` of the images


class Saturation(TypedDict):
    """When a sigmoid unit counts as saturated: explain's thresholds, which the page states with its figures."""

    z: float  # |pre-activation| beyond which the output is below `below` or above `above`
    below: float
    above: float
    share: float  # of the test images, at least: the unit is then an on/off switch


class RunRecord(TypedDict):
    """One run of an exercise: what the seeds study reads of it. evaluate writes the lab's run's (the top-level
    seed), replicate each other seed's; `denselab.study.runs` reads them all one way."""

    exercise: str
    seed: int
    test_accuracy: float
    test_loss: float
    precision: str  # what the model computed in (`models.precision_of`)
    history: dict[str, list[float]]  # per curve (`history.CURVES`), one value per epoch, six significant digits
