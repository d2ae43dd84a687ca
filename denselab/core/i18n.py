"""The report's languages: gettext catalogs and numbers as each language writes them, for every stage that
writes text (the report, and the figures of explain, describe and aggregate).

English messages are their own ids (gettext's convention); `messages/<language>.po` translates them
and is compiled when loaded. Numbers follow Babel's locale data (CLDR): vi writes 97,98% and 623.290.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Mapping
from pathlib import Path

CATALOGS = Path(__file__).with_name("messages")


def N_(message: str) -> str:
    """Mark `message` for translation where it is defined (Babel's extractor finds it); it is translated where
    it is shown."""
    return message


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled gettext catalog of a language (`CATALOGS/<language>.po`); English needs none."""
    if language == "en":
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(CATALOGS / f"{language}.po", "rb") as f:
        catalog = read_po(f, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


class Language:
    """One language of the report: its translations (`gettext`) and its way of writing numbers."""

    def __init__(self, code: str):
        self.code = code
        self.translations = translations(code)

    def gettext(self, message: str) -> str:
        """The translation of `message`, or `message` itself."""
        return self.translations.gettext(message)

    def labels(self, messages: Mapping[str, str]) -> dict[str, str]:
        """A figure's texts (key -> English message), translated."""
        return {key: self.gettext(message) for key, message in messages.items()}

    def _decimal(self, value: float, pattern: str) -> str:
        from babel.numbers import format_decimal

        return format_decimal(value, format=pattern, locale=self.code)

    def number(self, value: float, digits: int = 2) -> str:
        """A number with `digits` decimals and grouped thousands: 1,234.50 (vi: 1.234,50)."""
        return self._decimal(value, "#,##0" + ("." + "0" * digits if digits else ""))

    def decimal(self, value: float) -> str:
        """A setting as written, in the language's digits: 0.0001 and 0.2 (vi: 0,0001 and 0,2)."""
        return self._decimal(value, "#,##0.##########")

    def thousands(self, value: int) -> str:
        """A whole number with grouped thousands: 623,290 (vi: 623.290)."""
        return self._decimal(int(value), "#,##0")

    def percent(self, value: float | None, digits: int = 2) -> str:
        """A fraction as a percentage: 97.98% (vi: 97,98%); "–" for None."""
        return "–" if value is None else self._decimal(value * 100, "0" + ("." + "0" * digits if digits else "")) + "%"

    def points(self, value: float | None, digits: int = 2) -> str:
        """A difference of two fractions in percentage points, with its sign: +1.34 (vi: +1,34); "–" for None."""
        if value is None:
            return "–"
        decimals = "." + "0" * digits if digits else ""
        return self._decimal(value * 100, f"+0{decimals};-0{decimals}")

    def p_value(self, value: float | None) -> str:
        """A p-value with its relation, as statisticians write it: "= 0.021", or "< 0.001"; "–" for None."""
        if value is None:
            return "–"
        return "< " + self.number(0.001, 3) if value < 0.001 else "= " + self.number(value, 3)
