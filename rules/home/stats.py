"""The statistics the home-care checks judge counts by: Poisson tails (how surprising a count is for her average)
and quantiles of her own recent days.

Plain arithmetic on numbers: this module knows nothing of homes, readings or time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def poisson_sf(count: int, mean: float) -> float:
    """P(X >= count) for X ~ Poisson(mean): how surprising at least this many events are."""
    return 1.0 - poisson_cdf(count - 1, mean) if count > 0 else 1.0


def poisson_cdf(count: int, mean: float) -> float:
    """P(X <= count) for X ~ Poisson(mean)."""
    if count < 0:
        return 0.0
    term = total = math.exp(-mean)
    for k in range(1, count + 1):
        term *= mean / k
        total += term
    return min(1.0, total)


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
