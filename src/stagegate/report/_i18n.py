"""The report's interface text in each language: one small message catalogue per language.

The English text is the key (as in gettext): code and templates write ``t("Open pipeline")``
and a :class:`Catalogue` returns the text in its language, the English text where a string has
no translation (and remembers it in :attr:`Catalogue.missing`, which the tests keep empty).
Values are put in with named ``{placeholders}`` after the translation, so word order may differ
between languages. Stage labels are not here: they come from the process definition
(``labels = { en = ..., ko = ... }``).

>>> ko = catalogue("ko")
>>> ko("Win rate"), ko("{stage}: {reached} reached", stage="리드 발굴", reached="12")
('수주율', '리드 발굴: 12건 도달')
>>> ko.days(12.345), ENGLISH.days(12.345), ko.days(None)
('12.3일', '12.3 d', '—')
>>> catalogue("fr")
Traceback (most recent call last):
...
stagegate.report.UnknownLanguageError: the report does not speak 'fr'; choose one of en, ko
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from stagegate.errors import StagegateError
from stagegate.report._format import DASH, finite
from stagegate.report._messages_ko import KOREAN

__all__ = ["ENGLISH", "LANGUAGES", "Catalogue", "UnknownLanguageError", "catalogue"]

_CATALOGUES: Mapping[str, Mapping[str, str]] = {"en": {}, "ko": KOREAN}
LANGUAGES = tuple(_CATALOGUES)
"""The languages the report speaks, English first (the default)."""

_DAY_UNIT = {"en": " d", "ko": "일"}


class UnknownLanguageError(StagegateError, ValueError):
    """The report has no interface text in the language asked for."""

    def __init__(self, language: object) -> None:
        self.language = language
        super().__init__(
            f"the report does not speak {language!r}; choose one of {', '.join(LANGUAGES)}"
        )


UnknownLanguageError.__module__ = "stagegate.report"


class Catalogue:
    """The interface text of one language; call it with the English text."""

    __slots__ = ("_messages", "language", "missing")

    def __init__(self, language: str, messages: Mapping[str, str]) -> None:
        self.language = language
        self._messages = messages
        self.missing: set[str] = set()

    def raw(self, text: str) -> str:
        """The translation of ``text`` with its ``{placeholders}`` still in it."""
        if self.language == "en":
            return text
        found = self._messages.get(text)
        if found is None:
            self.missing.add(text)
            return text
        return found

    def __call__(self, text: str, /, **values: Any) -> str:
        """The translation of ``text``, ``values`` put into its named placeholders."""
        translated = self.raw(text)
        return translated.format(**values) if values else translated

    def days(self, value: object, *, digits: int = 1) -> str:
        """A duration in days in this language (``12.3 d``, ``12.3일``)."""
        number = finite(value)
        if number is None:
            return DASH
        return f"{number:,.{digits}f}{_DAY_UNIT.get(self.language, ' d')}"

    def __repr__(self) -> str:
        return f"<Catalogue {self.language}>"


ENGLISH = Catalogue("en", {})
"""The English catalogue (every text is its own translation)."""


@cache
def _shared(language: str) -> Catalogue:
    return Catalogue(language, _CATALOGUES[language])


def catalogue(language: str | None = None, *, fresh: bool = False) -> Catalogue:
    """The catalogue of ``language`` (default English).

    Args:
        language: a code of :data:`LANGUAGES`.
        fresh: a new catalogue whose :attr:`~Catalogue.missing` starts empty (for checks),
            rather than the shared one.

    Raises:
        UnknownLanguageError: the report does not speak ``language``.
    """
    code = "en" if language is None else language
    if code not in _CATALOGUES:
        raise UnknownLanguageError(language)
    if fresh:
        return Catalogue(code, _CATALOGUES[code])
    return _shared(code)
