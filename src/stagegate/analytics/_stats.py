"""Small, exact statistics shared by every path: quantiles, intervals, Beta quantiles.

>>> quantile([1.0, 2.0, 3.0, 4.0], 0.75)
3.25
>>> low, high = wilson(8, 10)
>>> round(low, 3), round(high, 3)
(0.49, 0.943)
>>> round(beta_quantile(0.5, 2.0, 2.0), 6)
0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

__all__ = [
    "beta_cdf",
    "beta_interval",
    "beta_quantile",
    "mean",
    "normal_quantile",
    "quantile",
    "weighted_share",
    "wilson",
]


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean, or ``None`` for no values."""
    return sum(values) / len(values) if values else None


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """Linear-interpolation quantile of sorted values (NumPy's default, Polars' ``linear``)."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def normal_quantile(p: float) -> float:
    """Inverse of the standard normal distribution function."""
    return NormalDist().inv_cdf(p)


def wilson(successes: float, trials: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; ``(0, 1)`` when there are no trials."""
    if trials <= 0:
        return (0.0, 1.0)
    z = normal_quantile(0.5 + confidence / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= trials else min(1.0, centre + half)
    return (low, high)


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-14:  # noqa: PLR2004
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """Regularized incomplete beta function ``I_x(a, b)``."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1) / (a + b + 2):
        return front * _beta_cf(a, b, x) / a
    return 1 - front * _beta_cf(b, a, 1 - x) / b


def beta_quantile(p: float, a: float, b: float) -> float:
    """Inverse of :func:`beta_cdf` in ``x``: Newton steps kept inside a shrinking bracket.

    Starts from the normal approximation; a step that leaves the bracket is replaced by
    bisection, so it converges like bisection at worst (to about 1e-15) and in a handful of
    steps usually.
    """
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    total = a + b
    spread = math.sqrt(a * b / (total * total * (total + 1)))
    x = min(max(a / total + NormalDist().inv_cdf(p) * spread, 1e-12), 1 - 1e-12)
    log_norm = math.lgamma(total) - math.lgamma(a) - math.lgamma(b)
    low, high = 0.0, 1.0
    for _ in range(200):
        gap = beta_cdf(x, a, b) - p
        if gap < 0:
            low = x
        else:
            high = x
        density = math.exp(log_norm + (a - 1) * math.log(x) + (b - 1) * math.log1p(-x))
        step = x - gap / density if density > 0 else low
        following = step if low < step < high else (low + high) / 2
        if abs(following - x) <= 1e-15 * max(x, 1e-300) or high - low <= 1e-15:  # noqa: PLR2004
            return following
        x = following
    return x


def beta_interval(a: float, b: float, confidence: float = 0.95) -> tuple[float, float]:
    """Equal-tailed interval of a Beta(a, b) distribution."""
    tail = (1 - confidence) / 2
    return (beta_quantile(tail, a, b), beta_quantile(1 - tail, a, b))


def weighted_share(
    won: tuple[float, float], lost: tuple[float, float], confidence: float = 0.95
) -> tuple[float, float, float, float] | None:
    """A weighted share of successes with an interval: ``(share, low, high, effective n)``.

    ``won`` and ``lost`` are the sums of the weights and of their squares over the successes
    and the failures. The share is ``R = sum w y / sum w``; its variance, by the delta method
    (the sandwich of a ratio of sums over independent units, the weights held fixed), is
    ``sum w^2 (y - R)^2 / (sum w)^2``. The interval is Wilson's at the effective sample size
    that gives that variance, ``R (1 - R) / variance`` (Kish's ``(sum w)^2 / sum w^2`` when
    ``R`` is 0 or 1), so it stays inside [0, 1] and is not empty at the edges. ``None``
    without weight.

    >>> share, low, high, n = weighted_share((3.0, 3.0), (1.0, 1.0))
    >>> share, n, (round(low, 3), round(high, 3)) == tuple(round(x, 3) for x in wilson(3, 4))
    (0.75, 4.0, True)
    """
    total = won[0] + lost[0]
    if total <= 0:
        return None
    share = won[0] / total
    variance = (won[1] * (1 - share) ** 2 + lost[1] * share**2) / (total * total)
    if 0 < share < 1 and variance > 0:
        effective = share * (1 - share) / variance
    else:
        effective = total * total / (won[1] + lost[1])
    low, high = wilson(share * effective, effective, confidence)
    return (share, low, high, effective)
