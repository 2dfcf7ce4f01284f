"""The generic univariate streaming detector behind ``placesense detect``.

One value at a time, bounded memory, no look-ahead. Several robust statistics each watch for one kind of
departure, and each is calibrated against its own history:

- **spike / dip**: distance of the value from the median of the last few values, in units of the typical
  step size (mean absolute successive difference);
- **level shift**: median of the last few values against the median of an older reference window, in units
  of the typical deviation from that median;
- **changed variance**: recent mean step size against the long-run step size (up: noisier; down: quieter);
- **changed daily pattern**: when timestamps show a daily cycle that explains the series better than its
  level does, the recent residuals against an hour-of-day (weekday/weekend) profile learned online (the
  detector's ``anomaly.seasonal.SeasonalProfile``, which it asks what is usual at an hour);
- **flat-line**: run length of exactly repeated values.

Calibration is by "records": each statistic keeps a slowly decaying maximum of the values it saw on normal
points, and a point is as anomalous as the largest ratio of statistic to ``max(floor, margin × record)``.
So a noisy, spiky series needs a bigger spike to alarm than a smooth one, and a point that merely repeats
what has been normal before does not alarm. A departure that *recurs* is normal too: each statistic also
remembers the two largest values it took in flagged episodes (``remember_one``, called by ``EpisodeFilter``
for the points it keeps from learning; an episode counts once it is over), and the second counts as a record.
So the same jump at the same time every day (a heating timer, a square wave, a quantised reading stepping
between two levels) alarms at most twice, and the third is expected. A move that persisted at the same time of
an earlier day (a counter's reset at midnight, a heating timer's switch) is expected from its second day: each
hour of the day remembers its largest such rise and fall (the seasonal profile's transition memory). The ratio
(severity) maps to a score in [0, 1) with the calibrated limit at 0.5.

This module holds the statistics and their records; what a series' day usually looks like is
``anomaly.seasonal``'s, and the level shift's window of older values ``anomaly.reference``'s. It must not read
files or know about homes: it scores numbers.
"""

from __future__ import annotations

import bisect
import math
from array import array
from datetime import UTC, datetime
from typing import Any, cast

from anomaly.base import NEUTRAL_SCORE, Detector, Features, severity_to_score
from anomaly.reference import ReferenceWindow
from anomaly.seasonal import CLIP, SeasonalProfile
from placesense.basics.memory import keep_last
from placesense.basics.stats import median_sorted

_COMPONENTS = (
    "spike_up", "spike_down", "shift_up", "shift_down", "noisier", "quieter", "pattern_up", "pattern_down", "flat",
)
# Where each kind of departure is in ``_COMPONENTS``: the rise, and the fall right after it; "flat" last.
_SPIKE, _SHIFT, _VARIANCE, _PATTERN, _FLAT = 0, 2, 4, 6, 8
_PAIRS = (_SPIKE, _SHIFT, _VARIANCE, _PATTERN)
_VARIANCE_NAMES = (_COMPONENTS[_VARIANCE], _COMPONENTS[_VARIANCE + 1])
_ROW = len(_COMPONENTS)  # statistics per point
_WAITING = len(_PAIRS) + 1  # values per point in ``SeriesDetector._pending``: see ``_Point.waiting``


DAY_CAP_POINTS = 2000  # the longest a slowly sampled series waits for its first whole day


def _timestamp_s(raw: Any) -> float | None:
    """Epoch seconds from a number (seconds or milliseconds) or a datetime; None when there is no time."""
    if raw is None:
        return None
    if isinstance(raw, datetime):
        stamp = raw if raw.tzinfo else raw.replace(tzinfo=UTC)
        return stamp.timestamp()
    value = float(raw)
    return value / 1000.0 if value > 1e11 else value


class _Point:
    """One point's statistics and limits against a detector's state, kept for the calls that judge and learn it."""

    __slots__ = ("limits", "stats", "ts", "value", "worst")

    def __init__(self, value: float, ts: float | None, stats: list[float | None], limits: list[float]) -> None:
        self.value = value
        self.ts = ts
        self.stats = stats  # in ``_COMPONENTS`` order; None for a statistic not computed for this point
        self.limits = limits
        self.worst: float | None = None  # the largest severity, once asked for

    def waiting(self) -> list[float]:
        """What this point will teach the records, as ``_WAITING`` numbers (``SeriesDetector._update_records``
        reads them back).

        Each statistic is capped at its limit, and one not computed is 0.0 (records are never negative, so it
        can never raise one). A rise and its fall are never both above zero, so each pair waits as one signed
        number, the rise or minus the fall: with nine numbers a point, the queue was a young detector's largest
        part. Only a zero's sign is lost, and no zero raises a record.
        """
        stats, limits = self.stats, self.limits
        row: list[float] = []
        for rise in _PAIRS:
            rise_value, fall_value = stats[rise], stats[rise + 1]
            if rise_value is None or fall_value is None:
                row.append(0.0)
            elif rise_value > 0.0:
                row.append(min(rise_value, limits[rise]))
            else:
                row.append(-min(fall_value, limits[rise + 1]))
        flat = stats[_FLAT]
        row.append(0.0 if flat is None else min(flat, limits[_FLAT]))
        return row

    def same(self, value: float, ts: float | None) -> bool:
        if value != self.value or ts != self.ts:
            return False
        # -0.0 == 0.0, but the sign of a zero can reach a statistic (a spike of -0.0), so it must match too.
        return value != 0.0 or math.copysign(1.0, value) == math.copysign(1.0, self.value)


class SeriesDetector(Detector):
    """Ensemble of robust, self-calibrating statistics for one numeric series.

    ``x`` is ``{"value": float, "timestamp": epoch seconds | epoch ms | datetime}`` (timestamp optional).

    >>> import math
    >>> detector = SeriesDetector()
    >>> for i in range(300):
    ...     x = {"value": 20 + math.sin(i / 5), "timestamp": 1_700_000_000 + 300 * i}
    ...     detector.learn_one(x)
    >>> detector.score_one({"value": 20.5, "timestamp": 1_700_090_000}) < 0.5
    True
    >>> detector.score_one({"value": 35.0, "timestamp": 1_700_090_000}) > 0.5
    True
    """

    # Slots: a fleet holds thousands of these, and a per-instance dict of 35 attributes cost ~1 KiB each.
    __slots__ = (
        "_decay",
        "_deviation_scale",
        "_episode",
        "_flagged",
        "_last",
        "_long_mean",
        "_long_scale",
        "_n",
        "_pending",
        "_point",
        "_quantum",
        "_recent",
        "_records",
        "_reference",
        "_run",
        "_seasonal",
        "_step_scale",
        "_steps",
        "_variance_hot",
        "flat_floor",
        "margin",
        "memory",
        "pattern_floor",
        "quieter_floor",
        "reference_window",
        "seasonal_days",
        "shift_floor",
        "short_window",
        "spike_floor",
        "variance_floor",
        "warm_up",
    )

    def __init__(
        self,
        warm_up: int = 150,
        short_window: int = 7,
        reference_window: int = 150,
        memory: int = 3000,
        margin: float = 1.2,
        spike_floor: float = 6.0,
        shift_floor: float = 3.5,
        variance_floor: float = 0.7,
        quieter_floor: float = 1.2,
        pattern_floor: float = 3.0,
        flat_floor: int = 12,
        seasonal_days: float = 5.0,
    ) -> None:
        self.warm_up = warm_up
        self.short_window = short_window
        self.reference_window = reference_window
        self.memory = memory
        self.margin = margin
        self.spike_floor = spike_floor
        self.shift_floor = shift_floor
        self.variance_floor = variance_floor
        self.quieter_floor = quieter_floor
        self.pattern_floor = pattern_floor
        self.flat_floor = flat_floor
        self.seasonal_days = seasonal_days

        self._n = 0
        # The windows are flat arrays of floats, oldest first (see ``placesense.basics.memory.keep_last``): a fleet
        # holds thousands of detectors, and as deques of floats these windows were most of a young detector's memory.
        self._recent: array[float] = array("d")  # at most ``short_window``
        self._steps: array[float] = array("d")  # at most ``2 * short_window``
        # The older values a level shift is judged against: those that left ``_recent``.
        self._reference = ReferenceWindow(reference_window)
        self._last: float | None = None
        self._step_scale = 0.0
        self._deviation_scale = 0.0
        self._long_mean = 0.0
        self._long_scale = 0.0
        self._run = 0
        self._variance_hot = False  # the last point's variance statistic was past its limit
        self._quantum = math.inf  # the smallest change between two values seen: the series' resolution
        self._records: array[float] = array("d", bytes(8 * _ROW))  # in ``_COMPONENTS`` order
        # The two largest values each statistic took on flagged points: (largest, second) per component.
        self._flagged: array[float] = array("d", bytes(8 * 2 * _ROW))
        # The largest value of each statistic over the flagged episode going on; it joins ``_flagged`` when the
        # episode ends, so an episode that goes on cannot make itself normal.
        self._episode: array[float] = array("d", bytes(8 * _ROW))
        self._decay = 0.5 ** (1.0 / memory)
        # Statistics waiting to become records, oldest first: one row of ``_WAITING`` values per point (see
        # ``_Point.waiting``), all rows in one flat array. A dict per point here was half of a soil sensor's
        # detector memory, and an array per point a deque of them still a third of a young one's.
        self._pending: array[float] = array("d")
        # What the series' day usually looks like: asked whether a daily cycle judges level, what level and step to
        # expect at an hour, and whether a move is a known daily transition.
        self._seasonal = SeasonalProfile(seasonal_days, 2 * short_window)
        # The point last judged, until the state changes: see ``_judged``.
        self._point: _Point | None = None

    def __getstate__(self) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        # The judged point is a cache of what the state implies, not state: a pickle leaves it out, so judging a
        # point changes nothing a copy would see.
        instance_dict, slots = cast(tuple[dict[str, Any] | None, dict[str, Any]], super().__getstate__())
        return instance_dict, {**slots, "_point": None}

    def __setstate__(self, state: tuple[dict[str, Any] | None, dict[str, Any]] | dict[str, Any]) -> None:
        # From pickle, (instance dict, slots); from ``placesense.statecodec``, one mapping of attributes. A detector
        # saved before its seasonal profile and reference window were objects of their own (issue 22) kept their
        # state among its own attributes: they move into them.
        attributes = dict(state) if isinstance(state, dict) else {**(state[0] or {}), **state[1]}
        if "_seasonal" not in attributes:
            attributes["_seasonal"] = SeasonalProfile.from_saved(
                attributes, attributes["seasonal_days"], 2 * attributes["short_window"]
            )
        if not isinstance(attributes.get("_reference"), ReferenceWindow):
            attributes["_reference"] = ReferenceWindow.from_saved(attributes, attributes["reference_window"])
        for name, value in attributes.items():
            setattr(self, name, value)

    # -- public -------------------------------------------------------------------------------------------------

    @property
    def warmed_up(self) -> bool:
        return self._n >= self.warm_up and not self._before_first_day()

    def _before_first_day(self, points: int = 0) -> bool:
        """A series sampled every minute or slower has a day of its own (people, weather, traffic): it is judged
        once it has shown one whole day (or ``DAY_CAP_POINTS`` points), not before its first evening. With
        ``points``, whether it is still within that many points of its first whole day."""
        seasonal = self._seasonal
        first, last, interval_s = seasonal.first_ts, seasonal.last_ts, seasonal.interval_s
        if first is None or last is None or interval_s < 60.0 or self._n >= DAY_CAP_POINTS + points:
            return False
        return last - first < 86_400.0 + points * interval_s

    def score_one(self, x: Features) -> float:
        value = float(x["value"])
        if not math.isfinite(value) or self._n < self.warm_up or self._before_first_day():
            return NEUTRAL_SCORE
        point = self._judged(value, _timestamp_s(x.get("timestamp")))
        if point.worst is None:
            point.worst = max(self._severity(point).values(), default=0.0)
        return severity_to_score(point.worst)

    def explain_one(self, x: Features) -> dict[str, float]:
        """Severity per statistic for ``x`` (1.0 = at its limit): which kind of departure drives the score."""
        value = float(x["value"])
        if not math.isfinite(value) or not self.warmed_up:
            return {}
        point = self._judged(value, _timestamp_s(x.get("timestamp")))
        severity = self._severity(point)
        point.worst = max(severity.values(), default=0.0)
        return severity

    def point_severity(self, x: Features) -> float:
        """Severity of ``x``'s spike or dip alone (1.0 = at its limit), 0.0 while warming up.

        The other statistics judge windows that overlap from one point to the next, so inside an anomalous spell
        they say more of the same; a spike judges this point against the last few, so one past its limit inside a
        spell is a departure of its own (``EpisodeFilter``'s ``escalation`` asks for it).
        """
        severity = self.explain_one(x)
        return max(severity.get(_COMPONENTS[_SPIKE], 0.0), severity.get(_COMPONENTS[_SPIKE + 1], 0.0))

    def remember_one(self, x: Features) -> None:
        """Note a point that was flagged and is not learned: the statistics past their limit, so a departure
        that comes back a third time is expected (see the module's docstring). Changes no other state."""
        value = float(x["value"])
        if not math.isfinite(value) or self._n < self.warm_up:
            return
        point = self._judged(value, _timestamp_s(x.get("timestamp")))
        self._note_variance(point)
        episode = self._episode
        for index, (stat, limit) in enumerate(zip(point.stats, point.limits, strict=True)):
            if stat is not None and stat >= limit and stat > episode[index]:
                episode[index] = stat
        self._point = None  # its severity depended on the variance flag just noted

    def _end_episode(self) -> None:
        """The flagged episode is over: its largest statistics join the two largest flagged ones."""
        episode, flagged = self._episode, self._flagged
        for index, stat in enumerate(episode):
            if stat <= 0.0:
                continue
            largest, second = flagged[2 * index], flagged[2 * index + 1]
            if stat > largest:
                flagged[2 * index], flagged[2 * index + 1] = stat, largest
            elif stat > second:
                flagged[2 * index + 1] = stat
            episode[index] = 0.0

    def learn_one(self, x: Features) -> None:
        value = float(x["value"])
        if not math.isfinite(value):
            return
        if any(self._episode):
            self._end_episode()
        ts = _timestamp_s(x.get("timestamp"))
        if self._n >= 20:
            point = self._judged(value, ts)
            self._note_variance(point)
            # Records learn from statistics a little in the past: a change that builds up over a few points
            # (a mean of residuals creeping upwards) must not raise its own bar as it grows. A statistic
            # above its limit (learned only when the filter accepts a lasting change) counts as the limit, so
            # one accepted episode raises a bar by the margin, not to the size of the episode.
            self._pending.extend(point.waiting())
            if len(self._pending) > 3 * self.short_window * _WAITING:
                self._update_records(self._pending[:_WAITING])
                del self._pending[:_WAITING]
        self._point = None  # the state changes now
        self._update_state(value, ts)
        self._n += 1

    # -- statistics ---------------------------------------------------------------------------------------------

    def _floor_scale(self, scale: float) -> float:
        # A constant series has zero scale; compare against a tiny fraction of its magnitude instead.
        return max(scale, 1e-9 * (abs(self._long_mean) + 1.0))

    def _resolution(self) -> float:
        """Half the smallest change between two values seen (the series' resolution), 0.0 before any."""
        return 0.5 * self._quantum if math.isfinite(self._quantum) else 0.0

    def _judged(self, value: float, ts: float | None) -> _Point:
        """The statistics and limits of ``value`` at ``ts`` against the state as it is.

        A filter explains, scores and then learns each point: three calls against one state, and computing the
        statistics was most of their cost. So the last point's are kept until ``learn_one`` changes the state.
        """
        point = self._point
        if point is None or not point.same(value, ts):
            point = self._point = _Point(value, ts, self._statistics(value, ts), self._limits())
        return point

    def _statistics(self, value: float, ts: float | None) -> list[float | None]:
        stats: list[float | None] = [None] * _ROW
        tiny = 1e-9 * (abs(self._long_mean) + 1.0)  # as in ``_floor_scale``, once for the three scales here
        # With a daily cycle the pattern statistic judges level; a plain level comparison would see every
        # evening as a "shift".
        seasonal = self._seasonal.active(self._long_scale)
        recent = sorted(self._recent)
        previous = self._last
        # Against whichever of "the last value" and "the recent median" is closer: the median ignores a
        # single earlier spike, the last value follows a series that wanders.
        median = median_sorted(recent) if recent else value
        last = previous if previous is not None else value
        local = median if abs(value - median) < abs(value - last) else last
        # A quantised series (whole degrees, 0.1-point probes) mostly repeats itself, so its mean step shrinks
        # towards nothing and one step of its resolution would look like a spike: no scale goes below half of it.
        resolution = self._resolution()
        step = max(self._step_scale, tiny, resolution)
        spike = (value - local) / step
        stats[_SPIKE] = max(spike, 0.0)
        stats[_SPIKE + 1] = max(-spike, 0.0)
        index = _SPIKE if spike > 0.0 else _SPIKE + 1
        if abs(spike) > self._records[index] and ts is not None and self._seasonal.known_transition(value - local, ts):
            # The move this point makes was made at this time of day before (a counter's reset, a timer): it counts
            # as no more than the largest spike seen, so it neither alarms nor raises the records.
            stats[index] = self._records[index]

        if self._reference and not seasonal:
            bisect.insort(recent, value)
            shift = (median_sorted(recent) - self._reference.median()) / max(self._deviation_scale, tiny, resolution)
            stats[_SHIFT] = max(shift, 0.0)
            stats[_SHIFT + 1] = max(-shift, 0.0)

        if previous is not None and len(self._steps) >= self.short_window:
            steps = [*self._steps, abs(value - previous)]
            recent_step = sum(steps) / len(steps)
            # With a daily cycle the usual step size can depend on the hour (counts are noisier by day). The recent
            # steps span more than this point's hour, so they are judged against the usual steps of the hours they
            # span: noisier than the larger, quieter than the smaller.
            low, high = (
                self._seasonal.usual_steps(ts, len(steps), self._step_scale, tiny)
                if seasonal and ts is not None
                else (step, step)
            )
            # A series that has never moved has no variance to change (a constant reading is the flat-line's).
            if high > 10.0 * tiny:
                ratio = math.log((recent_step + 0.05 * step) / (high + 0.05 * step))
                stats[_VARIANCE] = max(ratio, 0.0)
                # Quieter is judged to the series' resolution: a quantised reading that sits on one value for a
                # while (whole degrees) has not gone quiet, it has not crossed a step.
                quiet = math.log((recent_step + 0.05 * step + resolution) / (low + 0.05 * step + resolution))
                stats[_VARIANCE + 1] = max(-quiet, 0.0)

        if seasonal and ts is not None:
            pattern = self._seasonal.pattern(value, ts, tiny, resolution)
            if pattern is not None:
                stats[_PATTERN] = max(pattern, 0.0)
                stats[_PATTERN + 1] = max(-pattern, 0.0)

        repeated = previous is not None and abs(value - previous) <= 1e-12 * (1.0 + abs(value))
        stats[_FLAT] = float(self._run + 1 if repeated else 1)
        return stats

    def _limits(self) -> list[float]:
        """Each statistic's limit in ``_COMPONENTS`` order: its floor, or a margin above its record."""
        margin = self._margin_records()
        floors = (
            self.spike_floor, self.spike_floor, self.shift_floor, self.shift_floor,
            self.variance_floor, self.quieter_floor, self.pattern_floor, self.pattern_floor,
        )
        # ``floors`` stops before "flat", whose limit is twice its record.
        limits = [max(floor, self.margin * record) for floor, record in zip(floors, margin, strict=False)]
        limits.append(max(float(self.flat_floor), 2.0 * margin[_FLAT]))
        return limits

    def _margin_records(self) -> list[float]:
        """Each statistic's record, or the second largest value it took on flagged points if that is larger."""
        flagged = self._flagged
        return [max(record, flagged[2 * index + 1]) for index, record in enumerate(self._records)]

    def _severity(self, point: _Point) -> dict[str, float]:
        """Severity per computed statistic (1.0 = at its limit). A change of variance counts from its second
        point past the limit: one odd step is a spike's business, and a single borderline point is noise."""
        severity = {
            name: stat / limit
            for name, stat, limit in zip(_COMPONENTS, point.stats, point.limits, strict=True)
            if stat is not None
        }
        if not self._variance_hot:
            for name in _VARIANCE_NAMES:
                if name in severity:
                    severity[name] = min(severity[name], 0.99)
        # A statistic over a window judges a point once its window holds only judged points: a data set that starts
        # at midnight meets its first reset or switch at the end of its first day, unjudged, and the windows after
        # it would carry that as a change of level or variance.
        if self._before_first_day(2 * self.short_window):
            for name in (*_VARIANCE_NAMES, _COMPONENTS[_SHIFT], _COMPONENTS[_SHIFT + 1]):
                if name in severity:
                    severity[name] = min(severity[name], 0.99)
        return severity

    def _note_variance(self, point: _Point) -> None:
        self._variance_hot = any(
            (stat := point.stats[index]) is not None and stat >= point.limits[index]
            for index in (_VARIANCE, _VARIANCE + 1)
        )

    # -- learning -----------------------------------------------------------------------------------------------

    def _update_records(self, waiting: array[float]) -> None:
        """Learn one point's row from ``_pending`` (see ``_Point.waiting``)."""
        stats: list[float] = []
        for signed in waiting[:-1]:  # a rise, or minus a fall
            stats += (max(signed, 0.0), max(-signed, 0.0))
        stats.append(waiting[-1])
        decay = self._decay
        records = self._records
        for index, value in enumerate(stats):
            record = records[index] * decay
            records[index] = value if value > record else record
        flagged = self._flagged
        for index in range(len(flagged)):
            flagged[index] *= decay

    def _update_state(self, value: float, ts: float | None) -> None:
        rate = 2.0 / (self.reference_window + 1.0)
        n = self._n
        early = n <= 10
        last = self._last
        if last is not None:
            step = abs(value - last)
            scale = self._step_scale
            # A transition this time of day knows is not noise: the variance statistics must not see it. Only a step
            # past the series' resolution can be one: a whole-degree reading's every step is a move its hour has
            # made before, and clipping them would shrink the scale without end.
            if (
                not early
                and step > CLIP * max(scale, self._resolution())
                and ts is not None
                and self._seasonal.known_transition(value - last, ts)
            ):
                step = CLIP * scale
            # Huber-style clipping: one wild value moves a scale by a bounded amount.
            clipped = step if early else min(step, 4.0 * scale)
            # Slower than the level's rate: a burst of noise must not talk the detector into it.
            self._step_scale = scale + max(0.5 * rate, 1.0 / n) * (clipped - scale)
            keep_last(self._steps, step, 2 * self.short_window)
            self._run = self._run + 1 if step <= 1e-12 * (1.0 + abs(value)) else 1
            if self._run == 1 and step < self._quantum:
                self._quantum = step
        else:
            self._run = 1
        if self._reference:
            deviation = abs(value - self._reference.median())
            scale = self._deviation_scale
            clipped = deviation if early else min(deviation, 4.0 * scale)
            weight = max(0.5 * rate, 1.0 / len(self._reference))
            self._deviation_scale = scale + weight * (clipped - scale)
        long_rate = max(1.0 / (n + 1), 1.0 / self.memory)
        long_mean = self._long_mean
        deviation_long = abs(value - long_mean)
        self._long_mean = long_mean + long_rate * (value - long_mean)
        self._long_scale += long_rate * (deviation_long - self._long_scale)
        recent = self._recent
        tiny = 1e-9 * (abs(self._long_mean) + 1.0)  # as in ``_floor_scale``
        self._seasonal.update(value, ts, last, recent[-2] if len(recent) >= 2 else None, tiny, self._resolution())
        # The oldest recent value moves into the reference window.
        if len(recent) == self.short_window:
            self._reference.enter(recent[0])
        keep_last(recent, value, self.short_window)
        self._last = value
