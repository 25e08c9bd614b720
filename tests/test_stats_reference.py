"""Our statistics against well-kept references: SciPy (Kaplan-Meier, Wilson and Beta
intervals; the dev extra) and lifelines (Kaplan-Meier, Aalen-Johansen; the ``reference``
extra, since it pins pandas below 3: skipped without it). stagegate never imports them."""

from __future__ import annotations

import math
import os
import random
import warnings
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegate import analytics as an
from stagegate.analytics._stats import beta_cdf, beta_interval, beta_quantile, wilson
from stagegate.analytics.probability import incidence_python

with warnings.catch_warnings():  # the references' own imports may warn; not ours to judge
    warnings.simplefilter("ignore")
    scipy_stats = pytest.importorskip("scipy.stats")
    try:
        import lifelines
    except ImportError:  # pragma: no cover - depends on the extra installed
        if os.environ.get("STAGEGATE_REQUIRE_REFERENCE"):
            raise  # `make reference` must really check against lifelines, never skip
        lifelines = None

needs_lifelines = pytest.mark.skipif(
    lifelines is None, reason="lifelines is not installed (pip install -e '.[reference]')"
)

AS_OF = datetime(2026, 6, 1, tzinfo=timezone.utc)
KINDS = {"lead": "open", "demo": "open", "won": "won", "lost": "lost"}


def quietly(fit: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(*args, **kwargs)


def durations(seed: int, n: int) -> tuple[list[float], list[bool]]:
    """Distinct durations (no ties: lifelines would jitter them) and exit flags."""
    rng = random.Random(seed)  # noqa: S311 - seeded test data
    values = rng.sample(range(1, 100_000), n)
    return [v / 1000 for v in values], [rng.random() < 0.7 for _ in range(n)]


class TestKaplanMeier:
    @pytest.mark.parametrize("seed", range(5))
    def test_survival_matches_scipy(self, seed: int) -> None:
        times, exited = durations(seed, 60)
        data = scipy_stats.CensoredData(
            uncensored=[t for t, e in zip(times, exited, strict=True) if e],
            right=[t for t, e in zip(times, exited, strict=True) if not e],
        )
        reference = scipy_stats.ecdf(data).sf
        for duration, ours in an.km_curve(times, exited):
            assert ours == pytest.approx(float(reference.evaluate(duration)), abs=1e-12)

    @needs_lifelines
    @pytest.mark.parametrize("seed", range(5))
    def test_survival_matches_lifelines(self, seed: int) -> None:
        times, exited = durations(seed, 60)
        fitter = quietly(lifelines.KaplanMeierFitter().fit, times, event_observed=exited)
        curve = an.km_curve(times, exited)
        assert curve
        reference = fitter.survival_function_at_times([t for t, _ in curve]).to_list()
        for (_, ours), theirs in zip(curve, reference, strict=True):
            assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)

    @needs_lifelines
    @pytest.mark.parametrize("seed", range(5))
    def test_median_matches_lifelines(self, seed: int) -> None:
        times, exited = durations(100 + seed, 40)
        fitter = quietly(lifelines.KaplanMeierFitter().fit, times, event_observed=exited)
        theirs = fitter.median_survival_time_
        ours = an.km_median(times, exited)
        if math.isinf(theirs):
            assert ours is None
        else:
            assert ours == pytest.approx(theirs)


class TestAalenJohansen:
    """The exit incidences of a stage (``markov``'s rows) against lifelines' estimator."""

    @needs_lifelines
    @pytest.mark.parametrize("seed", range(4))
    def test_cumulative_incidence_of_each_exit_matches_lifelines(self, seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 - seeded test data
        rows, dwell, codes = [], [], []
        for i, offset in enumerate(rng.sample(range(1, 200_000), 80)):
            opened = AS_OF - timedelta(minutes=offset)
            length = timedelta(minutes=rng.randrange(1, 150_000) + rng.random())
            rows.append({"opportunity_id": str(i), "at": opened, "stage": "lead"})
            if opened + length <= AS_OF:
                target = "demo" if rng.random() < 0.6 else "lost"
                rows.append({"opportunity_id": str(i), "at": opened + length, "stage": target})
                dwell.append(length.total_seconds())
                codes.append(1 if target == "demo" else 2)
            else:
                dwell.append((AS_OF - opened).total_seconds())
                codes.append(0)
        visits = an.stage_intervals(rows, KINDS, as_of=AS_OF)
        as_of_us = int(AS_OF.timestamp() * 1_000_000)
        ours = incidence_python(visits, as_of_us)
        for code, target in ((1, "demo"), (2, "lost")):
            fitter = lifelines.AalenJohansenFitter(jitter_level=0, calculate_variance=False)
            quietly(fitter.fit, dwell, codes, event_of_interest=code)
            theirs = float(fitter.cumulative_density_.iloc[-1, 0])
            assert ours["lead", target] == pytest.approx(theirs, rel=1e-9)


class TestWilson:
    @settings(max_examples=200)
    @given(
        st.integers(min_value=1, max_value=500).flatmap(
            lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
        ),
        st.sampled_from([0.8, 0.9, 0.95, 0.99]),
    )
    def test_matches_scipy(self, counts: tuple[int, int], confidence: float) -> None:
        k, n = counts
        reference = scipy_stats.binomtest(k, n).proportion_ci(confidence, method="wilson")
        low, high = wilson(k, n, confidence)
        assert low == pytest.approx(reference.low, abs=1e-12)
        assert high == pytest.approx(reference.high, abs=1e-12)


class TestBeta:
    @settings(max_examples=150)
    @given(
        st.floats(min_value=0.5, max_value=400.0),
        st.floats(min_value=0.5, max_value=400.0),
        st.floats(min_value=0.001, max_value=0.999),
    )
    def test_cdf_and_quantile_match_scipy(self, a: float, b: float, p: float) -> None:
        x = float(scipy_stats.beta.ppf(p, a, b))
        assert beta_quantile(p, a, b) == pytest.approx(x, rel=1e-7, abs=1e-12)
        assert beta_cdf(x, a, b) == pytest.approx(p, rel=1e-7, abs=1e-12)

    @pytest.mark.parametrize(("a", "b"), [(0.5, 0.5), (3.5, 10.5), (120.5, 40.5)])
    def test_equal_tailed_interval_matches_scipy(self, a: float, b: float) -> None:
        low, high = beta_interval(a, b, 0.95)
        assert (low, high) == pytest.approx(tuple(scipy_stats.beta.interval(0.95, a, b)))
