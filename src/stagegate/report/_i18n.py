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
from stagegate.report._format import DASH, finite, gap
from stagegate.report._messages_ko import KOREAN

__all__ = [
    "ENGLISH",
    "LANGUAGES",
    "Catalogue",
    "UnknownLanguageError",
    "catalogue",
    "cycle_explanation",
    "estimator_reason",
]

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

    def known(self, text: str) -> str | None:
        """The translation of ``text`` if the catalogue has one (English: ``text``), else None.

        For text that may or may not be interface text (a finding's message); nothing is
        recorded as missing.
        """
        return text if self.language == "en" else self._messages.get(text)

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


def estimator_reason(document: Mapping[str, Any], t: Catalogue) -> str:
    """Why the document's estimator was chosen, in ``t``'s language.

    English keeps the document's own ``estimator.reason``; another language rebuilds the
    sentence from the structured fields (``name``, ``chosen_by``, the backtest's scores), and
    falls back to the document's text where it cannot.

    >>> doc = {"estimator": {"name": "markov", "chosen_by": "option", "reason": "as asked"}}
    >>> estimator_reason(doc, ENGLISH), estimator_reason(doc, catalogue("ko"))
    ('as asked', '이 보고서에는 markov을(를) 지정했습니다 (--estimator markov).')
    """
    chosen = document.get("estimator") or {}
    reason = str(chosen.get("reason") or "")
    if t.language == "en":
        return reason
    name, by = chosen.get("name"), chosen.get("chosen_by")
    process = document.get("process") or {}
    backtest = document.get("backtest")
    if by == "option":
        text = t("{name} was chosen for this report (--estimator {name}).", name=name)
        if name == "configured" and process.get("configured_known") is False:
            text += " " + t(
                "The process has no configured probabilities (every open stage is 0%), so "
                "every weighted figure is 0."
            )
        return text
    if by == "backtest" and isinstance(backtest, Mapping):
        score = next((s for s in backtest.get("scores") or () if s.get("estimator") == name), None)
        if score is None or finite(score.get("brier")) is None:
            return reason
        return t(
            "{name} is the best-calibrated estimator in the backtest (lowest Brier score, "
            "{brier} on {n} deals open at the cut-off and closed since).",
            name=name,
            brier=f"{finite(score['brier']):.3f}",
            n=f"{score.get('n', 0):,}",
        )
    if by in ("configured", "fallback"):
        why = (
            t("there is no backtest (too little history before as_of)")
            if not backtest
            else t("the backtest names no winner")
        )
        if by == "configured":
            return t("The process's configured probabilities are used: {why}.", why=why)
        return t(
            "{name} is used: {why}, and the process has no configured probabilities (every "
            "open stage is 0%, as in a process inferred from data).",
            name=name,
            why=why,
        )
    return reason


def cycle_explanation(cycle: Mapping[str, Any], t: Catalogue) -> str:
    """The cycle-time explanation of a document, in ``t``'s language (English: as written).

    >>> cycle = {"sum_of_stage_means_days": 90.0, "measured_mean_days": 40.0, "explanation": "x"}
    >>> cycle_explanation(cycle, ENGLISH), cycle_explanation(cycle, catalogue("ko"))[:24]
    ('x', '단계별 평균 체류 기간의 합은 90.0일, ')
    """
    explanation = str(cycle.get("explanation") or "")
    if t.language == "en":
        return explanation
    stage_sum = finite(cycle.get("sum_of_stage_means_days"))
    measured = finite(cycle.get("measured_mean_days"))
    if stage_sum is None or measured is None:
        return t("No closed deals yet: the cycle time is measured once deals close.")
    return t(
        "The sum of the per-stage average durations is {stage_sum} days, the measured average "
        "cycle {measured} days ({gap}). The shortcut adds a stage's average even for deals that "
        "skipped the stage or were lost before it, and counts a re-entered stage once: "
        "weighting each stage by its visits per deal gives back the measured cycle exactly.",
        stage_sum=f"{stage_sum:.1f}",
        measured=f"{measured:.1f}",
        gap=gap(stage_sum - measured),
    )
