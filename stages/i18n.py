"""The report's languages: message catalogs and number formatting, shared by every stage that writes text.

English messages are their own ids; `templates/messages/<language>.yaml` maps them to a translation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import yaml

TEMPLATES = Path(__file__).with_name("templates")


class Formatter:
    """Formats numbers the way the report's language writes them (vi: 97,98% and 623.290)."""

    def __init__(self, language: str):
        self.decimal, self.group = (",", ".") if language == "vi" else (".", ",")

    def _localize(self, text: str) -> str:
        return text.replace(",", "\0").replace(".", self.decimal).replace("\0", self.group)

    def number(self, value: float, digits: int = 2) -> str:
        return self._localize(f"{value:,.{digits}f}")

    def thousands(self, value: int) -> str:
        return self._localize(f"{int(value):,}")

    def percent(self, value: float | None, digits: int = 2) -> str:
        return "–" if value is None else self._localize(f"{value * 100:.{digits}f}") + "%"

    def points(self, value: float | None, digits: int = 2) -> str:
        """A difference of two fractions in percentage points, with its sign."""
        return "–" if value is None else self._localize(f"{value * 100:+.{digits}f}")

    def p_value(self, value: float | None) -> str:
        """A p-value with its relation, as statisticians write it: "= 0.021", or "< 0.001"."""
        if value is None:
            return "–"
        return "< " + self._localize("0.001") if value < 0.001 else "= " + self._localize(f"{value:.3f}")


@functools.cache
def load_catalog(language: str) -> dict[str, str]:
    """The message catalog of a language (English message -> translation); empty for English."""
    if language == "en":
        return {}
    path = TEMPLATES / "messages" / f"{language}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def translator(language: str) -> Callable[[str], str]:
    """The catalog lookup of a language: a message's translation, or the message itself."""
    catalog = load_catalog(language)
    return lambda message: catalog.get(message, message)
