"""The page's sentences, written from what the stages found, one module per section of the page: one exercise
(`exercise`), two exercises that differ in one setting (`comparison`), the lab's conclusions on trial (`claims`).

An observation is an English message (its gettext id, marked with `N_` where it is written) and its values,
already formatted in the page's language; the template translates the message and fills it in. Nothing here
reads a file or renders: `stages/report.py` loads, `denselab.report.page` calls these and renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from denselab.core.i18n import N_, Language
from denselab.study.statistics import CONFIDENCE


@dataclass(frozen=True)
class Observation:
    """One sentence of the report: an English message id and its already formatted values."""

    message: str
    values: Mapping[str, Any] = field(default_factory=dict)


# The level of every interval the page gives (statistics.CONFIDENCE), as its messages write it: "95".
SHOWN_CONFIDENCE = {"confidence": f"{CONFIDENCE * 100:g}"}

# The words `aspects.settings` writes into a setting's value (an input scaling, a missing activation).
SETTING_WORDS = {"raw": N_("raw"), "none": N_("none")}


def show_setting(value: Any, lang: Language) -> str:
    """A setting's value as the page writes it: words translated, numbers in the language's digits."""
    if isinstance(value, tuple):
        return ", ".join(show_setting(item, lang) for item in value)
    if isinstance(value, float):
        return lang.decimal(value)
    if isinstance(value, int):
        return lang.thousands(value)
    return lang.gettext(SETTING_WORDS[value]) if value in SETTING_WORDS else str(value)


def level_shown(text: str, lang: Language) -> str:
    """An aspect's value as `aspects.level_text` wrote it (`raw`, `none`, `relu, relu`), as the page shows it."""
    return ", ".join(lang.gettext(SETTING_WORDS[w]) if w in SETTING_WORDS else w for w in text.split(", "))
