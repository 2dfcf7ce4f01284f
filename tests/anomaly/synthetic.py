"""Synthetic labelled series for testing the univariate detector: normal shapes and injected anomalies.

Each series is five-minute data with a known anomaly window (NAB-style: the window opens a little before the
change and lasts a tenth of the series). Only for tests and tuning; nothing here is used at run time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

START_S = 1_700_000_000 - (1_700_000_000 % 86_400)  # a midnight, UTC
STEP_S = 300

BASES = ("noise", "daily", "wander", "spiky", "counts")
ANOMALIES = ("level_shift", "spike", "variance", "flatline", "pattern")


@dataclass(frozen=True)
class Series:
    base: str
    anomaly: str | None
    timestamps: list[float]
    values: list[float]
    onset: int | None  # index where the anomaly starts
    window: tuple[int, int] | None  # labelled window (inclusive start, exclusive end)


def _normal(base: str, n: int, rng: random.Random) -> tuple[list[float], list[float], float]:
    """Values, the clean daily shape (zeros if none) and the noise scale."""
    values: list[float] = []
    shape: list[float] = []
    level = rng.uniform(20, 80)
    sd = rng.uniform(0.5, 3.0)
    amplitude = rng.uniform(4, 10) * sd
    state = 0.0
    for i in range(n):
        ts = START_S + i * STEP_S
        hour = (ts % 86_400) / 3600
        weekend = ((ts // 86_400) + 3) % 7 >= 5
        if base == "noise":
            daily, value = 0.0, level + rng.gauss(0, sd)
        elif base == "daily":
            daily = amplitude * math.sin(2 * math.pi * (hour - 8) / 24) * (0.6 if weekend else 1.0)
            value = level + daily + rng.gauss(0, sd)
        elif base == "wander":
            state = 0.97 * state + rng.gauss(0, sd)
            daily, value = 0.0, level + state
        elif base == "spiky":
            daily = 0.0
            value = level + rng.gauss(0, sd)
            if rng.random() < 0.01:
                value += rng.uniform(2, 5) * sd
        else:  # counts
            daily = 10 + 8 * math.sin(2 * math.pi * (hour - 8) / 24)
            lam = daily
            # Poisson by inversion, fine for small rates
            k, p, u = 0, math.exp(-lam), rng.random()
            cumulative = p
            while u > cumulative and k < 200:
                k += 1
                p *= lam / k
                cumulative += p
            value = float(k)
            sd = math.sqrt(10)
        values.append(value)
        shape.append(daily)
    return values, shape, sd


def make_series(base: str, anomaly: str | None, seed: int, n: int = 4000) -> Series:
    rng = random.Random(seed)
    values, shape, sd = _normal(base, n, rng)
    timestamps = [float(START_S + i * STEP_S) for i in range(n)]
    if anomaly is None:
        return Series(base, None, timestamps, values, None, None)
    onset = int(n * rng.uniform(0.55, 0.8))
    span = n // 10
    window = (max(0, onset - span // 4), min(n, onset + 3 * span // 4))
    if anomaly == "level_shift":
        jump = rng.choice((-1, 1)) * rng.uniform(5, 8) * sd
        for i in range(onset, n):
            values[i] += jump
    elif anomaly == "spike":
        values[onset] += rng.choice((-1, 1)) * rng.uniform(10, 15) * sd
    elif anomaly == "variance":
        for i in range(onset, min(n, onset + 300)):
            values[i] += rng.gauss(0, 3 * sd)
    elif anomaly == "flatline":
        stuck = values[onset - 1]
        for i in range(onset, min(n, onset + 150)):
            values[i] = stuck
    elif anomaly == "pattern":
        # The daily cycle stops: the series sits at its mean level with the usual noise for two days.
        for i in range(onset, min(n, onset + 576)):
            values[i] -= shape[i]
    else:
        raise ValueError(anomaly)
    return Series(base, anomaly, timestamps, values, onset, window)


def nab_like_score(flags: list[bool], window: tuple[int, int] | None, probation: int) -> float:
    """A simplified NAB standard-profile score for one series: +1..0 for the first hit in the window (earlier is
    better), -1 for a missed window, -0.11 per false positive after the probation period."""
    score = 0.0
    hit = False
    for i, flagged in enumerate(flags):
        if not flagged or i < probation:
            continue
        if window and window[0] <= i < window[1]:
            if not hit:
                position = (i - window[1]) / (window[1] - window[0])  # -1 at the start .. 0 at the end
                score += 2 / (1 + math.exp(5 * (position + 0.0))) - 1 + 0.0
                hit = True
        else:
            score -= 0.11
    if window and not hit:
        score -= 1.0
    return score
