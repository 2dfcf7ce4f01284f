"""Deadlines learned from her own days: the default until enough mornings are known, then her usual latest plus a
margin as wide as her days vary (the getting-up and first-kitchen-use deadlines, ``rules.home.wake`` and
``rules.home.kitchen``).

Times of day from lists of minutes, and the instant the next one falls due: this module knows nothing of homes,
readings or timers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from placesense.basics.localtime import at_local, day_of
from placesense.basics.stats import quantile

LEARNING_FROM_DAYS = 3  # from this many days a deadline may move later than the default, before it is learned


class DeadlineSettings(Protocol):
    """A learned deadline's settings, as ``rules.config.WakeRule`` and ``KitchenRule`` both have them."""

    @property
    def deadline(self) -> time: ...
    @property
    def learn(self) -> bool: ...
    @property
    def margin_minutes(self) -> float: ...
    @property
    def latest_deadline(self) -> time: ...
    @property
    def day_starts(self) -> time: ...
    @property
    def history_days(self) -> int: ...


def learned_minutes(values: Sequence[float], margin: float, latest: time) -> float:
    """Her usual latest (90th percentile) plus a margin that follows her spread: at least ``margin`` minutes, or
    the width of her 10th–90th percentile range when her days vary more than that; never after ``latest``."""
    ordered = sorted(values)
    low, high = quantile(ordered, 0.1), quantile(ordered, 0.9)
    return min(high + max(margin, high - low), latest.hour * 60.0 + latest.minute)


def learned_deadline(
    recent: Sequence[float], learn: bool, min_days: int, default: time, margin: float, latest: time
) -> time:
    """The default until ``min_days`` are learned, then her own; in between, the later of the two: a late riser
    stops getting daily alerts after her first few mornings, an early riser waits for a full week's evidence."""
    if not learn or len(recent) < LEARNING_FROM_DAYS:
        return default
    own = _clock(learned_minutes(recent, margin, latest))
    return own if len(recent) >= min_days else max(own, default)


def next_due(after_ms: int, first_day: date, deadline_for: Callable[[date], time], tz: ZoneInfo) -> int | None:
    """The first of ``first_day``'s and the next two days' deadlines that is still after ``after_ms`` (None if
    none is: a deadline that moved earlier than the moment already passed)."""
    for offset in range(3):
        day = first_day + timedelta(days=offset)
        due = at_local(day, deadline_for(day), tz)
        if due > after_ms:
            return due
    return None


def next_learned_due(
    after_ms: int, history: Sequence[tuple[date, float]], cfg: DeadlineSettings, min_days: int, tz: ZoneInfo
) -> int | None:
    """When the next deadline learned from ``history`` (each day's minutes after midnight, oldest first) falls due
    after ``after_ms``: each day's deadline from the ``cfg.history_days`` days before it (``next_due``)."""

    def deadline_for(day: date) -> time:
        recent = [m for d, m in history if day - timedelta(days=cfg.history_days) <= d < day]
        return learned_deadline(recent, cfg.learn, min_days, cfg.deadline, cfg.margin_minutes, cfg.latest_deadline)

    return next_due(after_ms, day_of(after_ms, cfg.day_starts, tz), deadline_for, tz)


def _clock(minutes: float) -> time:
    whole = round(minutes)
    return time(whole // 60 % 24, whole % 60)
