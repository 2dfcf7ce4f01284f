"""What a series' day usually looks like: the seasonal profile ``SeriesDetector`` asks about its daily pattern.

Learned online from timestamped values, in bounded memory:

- **the profile**: per hour of the day, for weekdays and for weekends apart (48 buckets, ``bucket``), the usual
  level, the usual step from one point to the next, the typical residual against the level (its spread), and how
  many points each bucket has seen. A bucket judges points once it has seen enough of them (``trusted``); the
  residuals against it, in units of their spread, are what the "changed daily pattern" statistic averages;
- **the sampling**: the first and last timestamps and the typical interval between points; the profile is only
  learned from series sampled every hour or faster, and only judges once it explains the series clearly better
  than its overall level (``active``);
- **the transition memory**: per hour of day, the largest rise and the largest fall a series made and kept on
  earlier days (a counter's reset at midnight, a heating timer's switch, the weekend's drop). Such a move, met
  again within an hour of the same time of day, is a known transition (``known_transition``): the pattern, not
  a spike. Today's moves join the earlier days' only once a point is judged against them a day later.

This module must not score or flag: it says what is usual, and ``anomaly.series`` judges a point against it. It
reads no files and knows nothing of homes.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

from placesense.basics.memory import keep_last

BUCKETS = 48  # hours of a weekday and of a weekend day: see ``bucket``
# Where each per-bucket statistic starts in ``SeasonalProfile._buckets``: level, points seen, step size, and the
# typical size of a residual against the level (its spread).
_LEVEL, _COUNT, _STEP, _SPREAD = 0, BUCKETS, 2 * BUCKETS, 3 * BUCKETS
HOURS = 24
# Where each block starts in ``SeasonalProfile._transitions``: per hour of day, the largest rise and the largest
# fall from one point to the next seen on earlier days, then the largest of each seen since that hour was last
# folded in (today's). See ``SeasonalProfile._fold_transitions``.
_RISE, _FALL, _RISE_TODAY, _FALL_TODAY = 0, HOURS, 2 * HOURS, 3 * HOURS
# A move is a known daily transition when it is no larger than this times the largest move the same way seen within
# an hour of this time of day on an earlier day; that memory halves every ``TRANSITION_HALF_LIFE_DAYS``, so a
# weekly one (a Saturday's drop) is still known a week later.
TRANSITION_MARGIN = 1.5
TRANSITION_HALF_LIFE_DAYS = 14.0
_TRANSITION_DECAY = 0.5 ** (1.0 / TRANSITION_HALF_LIFE_DAYS)
CLIP = 4.0  # a step or residual counts at most this many times its usual size when it is learned
# What a ``SeriesDetector`` saved before this module existed kept as its own attributes -> the profile's name.
_SAVED_FLAT = {
    "_first_ts": "first_ts",
    "_last_ts": "last_ts",
    "_interval_s": "interval_s",
    "_profile": "_buckets",
    "_pattern_scale": "_scale",
    "_pattern_n": "_residual_count",
    "_pattern_residuals": "_residuals",
    "_transitions": "_transitions",
    "_transition_hour": "_transition_hour",
}


def bucket(ts: float) -> int:
    """The hour of day in UTC, plus 24 at weekends (0-47).

    >>> bucket(1_699_920_000 + 7.5 * 3600)  # a Tuesday, 07:30 UTC
    7
    >>> bucket(1_699_920_000 + 4 * 86_400 + 3600)  # that Saturday, 01:00
    25
    """
    hours = int(ts // 3600)
    weekday = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    return hours % 24 + (24 if weekday >= 5 else 0)


class SeasonalProfile:
    """The hour-of-day (weekday/weekend) profile of one series and its memory of recurring daily transitions.

    ``days``: the profile's memory, in days (how fast a bucket follows a change of its level); ``residual_window``:
    how many recent residuals the pattern statistic averages with the point's own.
    """

    # Slots: a fleet holds thousands of these, one per detector.
    __slots__ = (
        "_buckets",
        "_residual_count",
        "_residuals",
        "_scale",
        "_transition_hour",
        "_transitions",
        "days",
        "first_ts",
        "interval_s",
        "last_ts",
        "residual_window",
    )

    def __init__(self, days: float, residual_window: int) -> None:
        self.days = days
        self.residual_window = residual_window
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.interval_s = 0.0
        # Per ``bucket`` (48 hours of the week's two kinds of day), the level, the number of points (a whole number,
        # exact as a double), the step size and the spread, one block of 48 after another in one flat array: a dict
        # of floats per statistic was a third of a soil sensor's detector memory, and separate arrays cost more
        # array headers. A step or spread not learned yet is NaN. Empty until the first timestamped point, so a
        # fleet's new detectors cost little.
        self._buckets: array[float] = array("d")
        # The typical size of a residual against a trusted bucket's level, and how many points have been judged so.
        self._scale = 0.0
        self._residual_count = 0
        # Residuals in units of their bucket's spread (see ``_residual_unit``), at most ``residual_window``.
        self._residuals: array[float] = array("d")
        # The largest rise and fall per hour of day (see ``_RISE``): a counter reset at midnight, a timer's switch,
        # the weekend's drop, met again at the same time of day, are the pattern, not a spike. Empty like
        # ``_buckets`` until the first timestamped point; ``_transition_hour`` is the hour (since the epoch) of the
        # last point that updated it. Single precision: a move's size needs no more, and a fleet holds thousands.
        self._transitions: array[float] = array("f")
        self._transition_hour = -1

    @classmethod
    def from_saved(cls, attributes: dict[str, Any], days: float, residual_window: int) -> SeasonalProfile:
        """The profile a ``SeriesDetector`` saved before this class existed kept among its own ``attributes``;
        takes them out of ``attributes``. One saved before the transition memory and the per-bucket spread existed
        starts them empty."""
        profile = cls(days, residual_window)
        for old, new in _SAVED_FLAT.items():
            if old in attributes:
                setattr(profile, new, attributes.pop(old))
        buckets = profile._buckets
        if buckets and len(buckets) == 3 * BUCKETS:
            profile._buckets = buckets + array("d", [math.nan]) * BUCKETS
        return profile

    # -- what the detector asks ---------------------------------------------------------------------------------

    def active(self, overall_scale: float) -> bool:
        """Whether the daily pattern judges level: the series is sampled every hour or faster, has shown three days
        and 100 judged points, and its residuals against the profile are clearly smaller than ``overall_scale``
        (its typical deviation from its overall level)."""
        if self.first_ts is None or self.last_ts is None or not 0 < self.interval_s <= 3600:
            return False
        if self.last_ts - self.first_ts < 3 * 86_400 or self._residual_count < 100:
            return False
        return self._scale < 0.6 * overall_scale

    def pattern(self, value: float, ts: float, tiny: float, resolution: float) -> float | None:
        """The mean residual of the recent points and ``value`` at ``ts``, each in units of its bucket's spread;
        None when the bucket of ``ts`` is not trusted yet. No unit is below ``tiny`` or the series'
        ``resolution``."""
        key = bucket(ts)
        expected = self._expected(key)
        if expected is None:
            return None
        residuals = [*self._residuals, (value - expected) / self._residual_unit(key, tiny, resolution)]
        return sum(residuals) / len(residuals)

    def usual_steps(self, ts: float, steps: int, overall: float, tiny: float) -> tuple[float, float]:
        """The smaller and the larger usual step size of the hours the last ``steps`` steps span, up to ``ts``;
        ``overall`` (the series' usual step) for an hour not learned yet; none below ``tiny``."""
        first = self._usual_step(ts - (steps - 1) * self.interval_s, overall, tiny)
        last = self._usual_step(ts, overall, tiny)
        return (first, last) if first <= last else (last, first)

    def known_transition(self, move: float, ts: float) -> bool:
        """Whether a move this large, this way, was made within an hour of this time of day on an earlier day."""
        transitions = self._transitions
        if not transitions or move == 0.0:
            return False
        last_ts = self.last_ts
        if last_ts is not None and ts > last_ts:
            # Where the weekend begins or ends, the two kinds of day's profiles say what move to expect (the
            # weekend's drop at midnight on Friday, a week after the first was flagged and not learned).
            now, before = self._trusted(bucket(ts)), self._trusted(bucket(last_ts))
            if now is not None and before is not None and (now < 24) != (before < 24):
                expected = self._buckets[_LEVEL + now] - self._buckets[_LEVEL + before]
                if move * expected > 0.0 and abs(move) <= TRANSITION_MARGIN * abs(expected):
                    return True
        hour = int(ts // 3600) % HOURS
        block = _RISE if move > 0.0 else _FALL
        largest = max(transitions[block + (hour + shift) % HOURS] for shift in (-1, 0, 1))
        return largest > 0.0 and abs(move) <= TRANSITION_MARGIN * largest

    # -- learning -----------------------------------------------------------------------------------------------

    def update(
        self, value: float, ts: float | None, last: float | None, before_last: float | None, tiny: float,
        resolution: float,
    ) -> None:
        """Learn ``value`` at ``ts``. ``last`` is the value learned before it and ``before_last`` the one before
        that (None when there are none); ``tiny`` and ``resolution`` as for ``pattern``."""
        if ts is None:
            return
        last_ts = self.last_ts
        if self.last_ts is not None and ts > self.last_ts:
            gap = ts - self.last_ts
            self.interval_s = gap if self.interval_s == 0 else self.interval_s + 0.05 * (gap - self.interval_s)
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        if not 0 < self.interval_s <= 3600:
            return
        key = bucket(ts)
        trusted = self._trusted(key)
        per_day = max(1.0, 3600.0 / self.interval_s)
        profile = self._buckets
        if trusted is not None:
            residual = value - profile[_LEVEL + trusted]
            unit = self._residual_unit(key, tiny, resolution)
            self._residual_count += 1
            size = abs(residual) if self._residual_count <= 10 else min(abs(residual), CLIP * self._scale)
            self._scale += max(0.01, 1.0 / self._residual_count) * (size - self._scale)
            keep_last(self._residuals, residual / unit, self.residual_window)
            # The spread of the bucket that judged this point: its own, or the other kind of day's until its own
            # is trusted (so a weekend hour starts from the weekday's).
            spread = profile[_SPREAD + trusted]
            if math.isnan(spread):
                profile[_SPREAD + trusted] = abs(residual)
            else:
                size = min(abs(residual), CLIP * max(spread, self._scale))
                rate = max(1.0 / profile[_COUNT + trusted], 1.0 / (per_day * self.days))
                profile[_SPREAD + trusted] = spread + rate * (size - spread)
        if not profile:
            profile = self._buckets = array("d", bytes(8 * 2 * BUCKETS)) + array("d", [math.nan]) * (2 * BUCKETS)
        count = profile[_COUNT + key] + 1
        profile[_COUNT + key] = count
        rate = max(1.0 / count, 1.0 / (per_day * self.days))
        previous = profile[_LEVEL + key] if count > 1 else value
        profile[_LEVEL + key] = previous + rate * (value - previous)
        if last is not None:
            move = value - last
            step = abs(move)
            usual = profile[_STEP + key]
            if math.isnan(usual):
                usual = step
            if count > 10 or self.known_transition(move, ts):
                step = min(step, CLIP * usual)
            profile[_STEP + key] = usual + rate * (step - usual)
            if last_ts is not None and before_last is not None:
                # The last point's move is a transition if this one does not take it back: a level the series
                # moved to (a reset, a switch, the weekend) is its daily pattern when it comes again, a spike is not.
                previous = last - before_last
                if previous * move >= 0.0 or abs(move) < 0.5 * abs(previous):
                    self._learn_transition(previous, last_ts)

    # -- the profile --------------------------------------------------------------------------------------------

    def _needed(self) -> int:
        """Points an hour's profile needs before it is trusted: three hours' worth at the current interval."""
        return 3 * max(1, int(3600 / max(self.interval_s, 1.0)))

    def _trusted(self, key: int) -> int | None:
        """``key`` once its bucket has seen enough points to judge by, else None.

        An hour is never judged by the other kind of day's profile: a first weekend judged by the weekdays is
        flagged wherever the weekend differs (an office's empty Saturday, a weekend's lower traffic), and the
        points flagged are not learned, so the weekend's own profile filled slowly and every weekend was flagged
        again. Until its weekend hours are trusted, a series' weekends are judged by the other statistics only.
        A weekend hour is trusted after half a weekday hour's points: a weekend of it, less what its first hours
        lost to the flags that met them (three days' worth would take a weekend and a half).
        """
        profile = self._buckets
        if not profile:
            return None
        needed = self._needed()
        return key if profile[_COUNT + key] >= (needed if key < 24 else max(2, needed // 2)) else None

    def _expected(self, key: int) -> float | None:
        trusted = self._trusted(key)
        return None if trusted is None else self._buckets[_LEVEL + trusted]

    def _residual_unit(self, key: int, tiny: float, resolution: float) -> float:
        """What one unit of residual is at bucket ``key``: the spread of its profile where that is wider than the
        series' typical residual. An hour that holds a sharp daily transition (a timer switching, a counter's
        reset) has wide residuals every day, and they are its pattern, not a change of it."""
        unit = max(self._scale, tiny, resolution)
        trusted = self._trusted(key)
        if trusted is not None:
            spread = self._buckets[_SPREAD + trusted]
            if math.isnan(spread):  # a weekend hour just trusted starts from the weekday's spread, and back
                spread = self._buckets[_SPREAD + (trusted + 24) % 48]
            if spread > unit:  # False for NaN: a spread not learned yet
                unit = spread
        return unit

    def _usual_step(self, ts: float, overall: float, tiny: float) -> float:
        profile = self._buckets
        if not profile:
            return max(overall, tiny)
        key = bucket(ts)
        needed = self._needed()
        for other in (key, (key + 24) % 48):
            if profile[_COUNT + other] >= needed and not math.isnan(profile[_STEP + other]):
                return max(profile[_STEP + other], tiny)
        return max(overall, tiny)

    # -- the transition memory ----------------------------------------------------------------------------------

    def _learn_transition(self, move: float, ts: float) -> None:
        transitions = self._transitions
        if not transitions:
            transitions = self._transitions = array("f", bytes(4 * 2 * HOURS)) + array("f", [math.nan]) * (2 * HOURS)
        hour = int(ts // 3600)
        if hour != self._transition_hour:
            self._fold_transitions(hour % HOURS)
            self._transition_hour = hour
        hour %= HOURS
        if math.isnan(transitions[_RISE_TODAY + hour]):
            transitions[_RISE_TODAY + hour] = transitions[_FALL_TODAY + hour] = 0.0
        if move > 0.0:
            transitions[_RISE_TODAY + hour] = max(transitions[_RISE_TODAY + hour], move)
        elif move < 0.0:
            transitions[_FALL_TODAY + hour] = max(transitions[_FALL_TODAY + hour], -move)

    def _fold_transitions(self, hour: int) -> None:
        """Today's largest moves join the earlier days' at every hour of day but this one and the two before it,
        so what a point is judged against (its hour and the next and previous) was seen at least a day ago."""
        transitions = self._transitions
        for other in range(HOURS):
            if (hour - other) % HOURS <= 2 or math.isnan(transitions[_RISE_TODAY + other]):
                continue
            for earlier, today in ((_RISE + other, _RISE_TODAY + other), (_FALL + other, _FALL_TODAY + other)):
                transitions[earlier] = max(_TRANSITION_DECAY * transitions[earlier], transitions[today])
                transitions[today] = math.nan
