"""The one estimator of every weighted figure: the backtest that ranks them, and the choice.

The backtest section scores every estimator on the deals open at a cut-off and closed by
``as_of``, and names a winner only when the scores can tell the estimators apart
(:data:`MIN_BACKTEST_DEALS`, won and lost deals among them). :func:`choose_estimator` then
takes the estimator asked for, else that winner, else the configured probabilities, else
:data:`FALLBACK_ESTIMATOR`, and says why in words the report prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from stagegate._time import to_utc
from stagegate.analytics.probability import DEFAULT_ESTIMATOR
from stagegate.process import Process
from stagegate.report._results import records

__all__ = [
    "FALLBACK_ESTIMATOR",
    "MIN_BACKTEST_DEALS",
    "backtest_section",
    "choose_estimator",
    "configured_known",
]

MIN_BACKTEST_DEALS = 30
"""Fewest scored deals (with at least one won and one lost) for the backtest to name a winner."""
FALLBACK_ESTIMATOR = DEFAULT_ESTIMATOR
"""The estimator used when the backtest cannot decide and the process has no configured
probabilities: ``stagegate.analytics.DEFAULT_ESTIMATOR``."""


def configured_known(process: Process) -> bool:
    """Whether ``process`` carries probabilities at all: False when every open stage has 0.

    A process inferred from data (``stagegate.io.infer_process``) gives every open stage 0.0;
    its "configured" probabilities are then no baseline. The rule is
    ``stagegate.analytics.configured_known``.

    >>> from stagegate import b2b
    >>> configured_known(b2b())
    True
    """
    from stagegate import analytics as an  # noqa: PLC0415

    return bool(an.configured_known(process))


def choose_estimator(
    requested: str | None, backtest: dict[str, Any] | None, *, known: bool
) -> dict[str, Any]:
    """The one estimator of every weighted figure, and why: ``{"name", "chosen_by", "reason"}``.

    The estimator asked for (``chosen_by="option"``); else the backtest's best-calibrated one
    (``"backtest"``); else, where the backtest cannot decide, the configured probabilities
    (``"configured"``), or, when the process has none, ``DEFAULT_ESTIMATOR`` of the analytics
    (``"fallback"``).

    >>> choose_estimator(None, None, known=True)["name"]
    'configured'
    >>> choose_estimator("markov", None, known=True)["chosen_by"]
    'option'
    """
    if requested is not None:
        reason = f"{requested} was chosen for this report (--estimator {requested})."
        if requested == "configured" and not known:
            reason += (
                " The process has no configured probabilities (every open stage is 0%), so "
                "every weighted figure is 0."
            )
        return {"name": requested, "chosen_by": "option", "reason": reason}
    best = None if backtest is None else backtest.get("best")
    if best:
        score = next(s for s in backtest["scores"] if s["estimator"] == best)  # type: ignore[index]
        return {
            "name": best,
            "chosen_by": "backtest",
            "reason": (
                f"{best} is the best-calibrated estimator in the backtest (lowest Brier score, "
                f"{score['brier']:.3f} on {score['n']:,} deals open at the cut-off and closed "
                "since)."
            ),
        }
    why = (
        "there is no backtest (too little history before as_of)"
        if backtest is None
        else f"the backtest names no winner ({backtest.get('warning') or 'no scores'})"
    )
    if known:
        return {
            "name": "configured",
            "chosen_by": "configured",
            "reason": f"The process's configured probabilities are used: {why}.",
        }
    fallback = FALLBACK_ESTIMATOR
    return {
        "name": fallback,
        "chosen_by": "fallback",
        "reason": (
            f"{fallback} is used: {why}, and the process has no configured probabilities "
            "(every open stage is 0%, as in a process inferred from data)."
        ),
    }


def backtest_section(
    an: Any,
    prepared: Any,
    first: datetime,
    as_of: datetime,
    cutoff: datetime | None,
    *,
    known: bool,
) -> dict[str, Any] | None:
    """The backtest section, fitted at ``cutoff`` and scored at ``as_of``.

    The cut-off defaults to two thirds of the way from ``first``; the log prepared once is
    read (only the visits at the cut-off are new). ``None`` when the cut-off is not strictly
    between ``first`` and ``as_of``.
    """
    from stagegate.analytics.backtest import backtest_prepared  # noqa: PLC0415

    split = to_utc(cutoff, what="cutoff") if cutoff is not None else first + (as_of - first) * 2 / 3
    if not first < split < as_of:
        return None
    result = backtest_prepared(prepared, split)
    excluded = [] if known else ["configured"]
    rank = {e: i for i, e in enumerate(an.ESTIMATORS)}
    scores = sorted(
        (s for s in records(result.scores) if s.estimator not in excluded),
        key=lambda s: rank.get(s.estimator, len(rank)),
    )
    reliability = sorted(
        (r for r in records(result.reliability) if r.estimator not in excluded),
        key=lambda r: (rank.get(r.estimator, len(rank)), r.bin),
    )
    deals = max((s.deals for s in scores), default=0)
    won = max((round(s.observed_rate * s.deals) for s in scores if s.deals), default=0)
    best, warning = _winner(result, scores, deals=deals, won=won)
    return {
        "cutoff": split.isoformat(),
        "best": best,
        "warning": warning,
        "scored": deals,
        "scored_won": won,
        "scored_lost": deals - won,
        "excluded": [
            {
                "estimator": e,
                "reason": "the process has no configured probabilities (every open stage is "
                "0%, as in a process inferred from data): not a baseline",
            }
            for e in excluded
        ],
        "scores": [
            {"estimator": s.estimator, "brier": s.brier, "log_loss": s.log_loss, "n": s.deals}
            for s in scores
        ],
        "reliability": [
            {
                "estimator": r.estimator,
                "bin_low": r.bin / 10,
                "bin_high": (r.bin + 1) / 10,
                "predicted": r.mean_predicted,
                "observed": r.observed_rate,
                "n": r.deals,
            }
            for r in reliability
        ],
    }


def _winner(result: Any, scores: Sequence[Any], *, deals: int, won: int) -> tuple[Any, Any]:
    """The backtest's winner among ``scores``, or ``None`` and a warning saying why not."""
    if deals == 0:
        return None, "no deal open at the cut-off has closed since: nothing to score"
    if won in (0, deals):
        missing = "won" if won == 0 else "lost"
        return None, (
            f"the {deals:,} scored deals include no {missing} deal: every estimator that "
            f"predicts {'0' if won == 0 else '1'} scores perfectly, so no score can tell "
            "them apart"
        )
    if deals < MIN_BACKTEST_DEALS:
        return None, (
            f"only {deals:,} deals were scored (fewer than {MIN_BACKTEST_DEALS}): too few to "
            "rank the estimators"
        )
    if getattr(result, "best", None) is None:
        reason = getattr(result, "reason", None) or getattr(result, "warning", None)
        return None, str(reason or "the backtest names no winner")
    names = [s.estimator for s in scores if s.brier is not None]
    if result.best in names:
        return result.best, None
    scored = [s for s in scores if s.brier is not None]
    return min(scored, key=lambda s: s.brier).estimator, None  # configured was excluded
