"""Small statistics the rules and detectors share: quantiles, medians and a robust scale of short lists of
numbers, and Poisson tails for counts of events.

Pure functions of their arguments, kept in one place so the rules and the detectors judge a home's counts and
spreads by the same arithmetic. No numpy: the lists are a few weeks of days, and the windows a few dozen values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# For normally distributed values the standard deviation is 1.4826 × the median absolute deviation.
MAD_TO_SD = 1.4826


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of an already sorted, non-empty sequence (``sorted()`` it first if need be)."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def median_sorted(sorted_values: Sequence[float]) -> float:
    """The median of an already sorted, non-empty sequence: the middle value, or the mean of the middle two."""
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else 0.5 * (sorted_values[mid - 1] + sorted_values[mid])


def robust_centre(sorted_values: Sequence[float], min_scale: float) -> tuple[float, float]:
    """Median and robust standard deviation (``MAD_TO_SD`` × the median absolute deviation, at least
    ``min_scale``) of an already sorted, non-empty sequence: one odd value moves neither."""
    median = quantile(sorted_values, 0.5)
    mad = quantile(sorted(abs(v - median) for v in sorted_values), 0.5)
    return median, max(MAD_TO_SD * mad, min_scale)


def poisson_upper_tail(k: int, mean: float) -> float:
    """P(X ≥ k) for X ~ Poisson(mean): how surprising at least this many events are."""
    return 1.0 - poisson_lower_tail(k - 1, mean) if k > 0 else 1.0


def poisson_lower_tail(k: int, mean: float) -> float:
    """P(X ≤ k) for X ~ Poisson(mean): how surprising at most this many events are."""
    if k < 0:
        return 0.0
    term = total = math.exp(-mean)
    for i in range(1, k + 1):
        term *= mean / i
        total += term
    return min(1.0, total)
