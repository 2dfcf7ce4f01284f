"""The generic univariate streaming detector behind ``placesense detect``.

One value at a time, bounded memory, no look-ahead. Several robust statistics each watch for one kind of
departure, and each is calibrated against its own history:

- **spike / dip**: distance of the value from the median of the last few values, in units of the typical
  step size (mean absolute successive difference);
- **level shift**: median of the last few values against the median of an older reference window, in units
  of the typical deviation from that median;
- **changed variance**: recent mean step size against the long-run step size (up: noisier; down: quieter);
- **changed daily pattern**: when timestamps show a daily cycle that explains the series better than its
  level does, the recent residuals against an hour-of-day (weekday/weekend) profile learned online;
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
hour of the day remembers its largest such rise and fall (``SeriesDetector._transitions``). The ratio (severity)
maps to a score in [0, 1) with the calibrated limit at 0.5.

This module must not read files or know about homes: it scores numbers.
"""

from __future__ import annotations

import bisect
import math
from array import array
from datetime import UTC, datetime
from typing import Any, cast

from anomaly.base import NEUTRAL_SCORE, Detector, Features, severity_to_score
from placesense.basics.memory import keep_last
from placesense.basics.stats import median_sorted

_BUCKETS = 48  # hours of a weekday and of a weekend day: see ``SeriesDetector._bucket``
# Where each per-bucket statistic starts in ``SeriesDetector._profile``: level, points seen, step size, and the
# typical size of a residual against the level (its spread).
_LEVEL, _COUNT, _STEP, _SPREAD = 0, _BUCKETS, 2 * _BUCKETS, 3 * _BUCKETS
_HOURS = 24
# Where each block starts in ``SeriesDetector._transitions``: per hour of day, the largest rise and the largest fall
# from one point to the next seen on earlier days, then the largest of each seen since that hour was last folded
# in (today's). See ``SeriesDetector._fold_transitions``.
_RISE, _FALL, _RISE_TODAY, _FALL_TODAY = 0, _HOURS, 2 * _HOURS, 3 * _HOURS
# A move is a known daily transition when it is no larger than this times the largest move the same way seen within
# an hour of this time of day on an earlier day; that memory halves every ``TRANSITION_HALF_LIFE_DAYS``, so a
# weekly one (a Saturday's drop) is still known a week later.
TRANSITION_MARGIN = 1.5
TRANSITION_HALF_LIFE_DAYS = 14.0
_TRANSITION_DECAY = 0.5 ** (1.0 / TRANSITION_HALF_LIFE_DAYS)
_CLIP = 4.0  # a step or residual counts at most this many times its usual size when it is learned
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
        "_first_ts",
        "_flagged",
        "_interval_s",
        "_last",
        "_last_ts",
        "_long_mean",
        "_long_scale",
        "_n",
        "_pattern_n",
        "_pattern_residuals",
        "_pattern_scale",
        "_pending",
        "_point",
        "_profile",
        "_quantum",
        "_recent",
        "_records",
        "_reference",
        "_reference_oldest",
        "_reference_order",
        "_run",
        "_step_scale",
        "_steps",
        "_transition_hour",
        "_transitions",
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
        # The reference window (at most ``reference_window`` values) is kept once, as a ring in arrival order, and
        # sorted as one small slot number per value (``_reference_order``, in value order): as a second array of
        # floats, the sorted copy cost 1.2 KB a detector. See ``_enter_reference``.
        self._reference: array[float] = array("d")
        self._reference_oldest = 0  # the ring's slot of the oldest value, once it is full
        self._reference_order: bytearray | array[int] = bytearray() if reference_window <= 256 else array("I")
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
        # seasonal state
        self._first_ts: float | None = None
        self._last_ts: float | None = None
        self._interval_s = 0.0
        # Per ``_bucket`` (48 hours of the week's two kinds of day), the level, the number of points (a whole
        # number, exact as a double) and the step size, one block of 48 after another in one flat array: a dict
        # of floats per statistic was a third of a soil sensor's detector memory, and three arrays cost two more
        # array headers. A step not learned yet is NaN. Empty until the first timestamped point, so a fleet's new
        # detectors cost little.
        self._profile: array[float] = array("d")
        self._pattern_scale = 0.0
        self._pattern_n = 0
        # Residuals in units of their bucket's spread (see ``_residual_unit``), at most ``2 * short_window``.
        self._pattern_residuals: array[float] = array("d")
        # The largest rise and fall per hour of day (see ``_RISE``): a counter reset at midnight, a timer's switch,
        # the weekend's drop, met again at the same time of day, are the pattern, not a spike. Empty like
        # ``_profile`` until the first timestamped point; ``_transition_hour`` is the hour (since the epoch) of the
        # last point that updated it. Single precision: a move's size needs no more, and a fleet holds thousands.
        self._transitions: array[float] = array("f")
        self._transition_hour = -1
        # The point last judged, until the state changes: see ``_judged``.
        self._point: _Point | None = None

    def __getstate__(self) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        # The judged point is a cache of what the state implies, not state: a pickle leaves it out, so judging a
        # point changes nothing a copy would see.
        instance_dict, slots = cast(tuple[dict[str, Any] | None, dict[str, Any]], super().__getstate__())
        return instance_dict, {**slots, "_point": None}

    def __setstate__(self, state: tuple[dict[str, Any] | None, dict[str, Any]] | dict[str, Any]) -> None:
        # From pickle, (instance dict, slots); from ``placesense.statecodec``, one mapping of attributes. A detector
        # saved before the transition memory and the per-bucket spread existed starts them empty.
        attributes = state if isinstance(state, dict) else {**(state[0] or {}), **state[1]}
        self._transitions = array("f")
        self._transition_hour = -1
        for name, value in attributes.items():
            setattr(self, name, value)
        profile = self._profile
        if profile and len(profile) == 3 * _BUCKETS:
            self._profile = profile + array("d", [math.nan]) * _BUCKETS

    # -- public -------------------------------------------------------------------------------------------------

    @property
    def warmed_up(self) -> bool:
        return self._n >= self.warm_up and not self._before_first_day()

    def _before_first_day(self, points: int = 0) -> bool:
        """A series sampled every minute or slower has a day of its own (people, weather, traffic): it is judged
        once it has shown one whole day (or ``DAY_CAP_POINTS`` points), not before its first evening. With
        ``points``, whether it is still within that many points of its first whole day."""
        first, last = self._first_ts, self._last_ts
        if first is None or last is None or self._interval_s < 60.0 or self._n >= DAY_CAP_POINTS + points:
            return False
        return last - first < 86_400.0 + points * self._interval_s

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
        seasonal = self._seasonal_active()
        recent = sorted(self._recent)
        previous = self._last
        # Against whichever of "the last value" and "the recent median" is closer: the median ignores a
        # single earlier spike, the last value follows a series that wanders.
        median = median_sorted(recent) if recent else value
        last = previous if previous is not None else value
        local = median if abs(value - median) < abs(value - last) else last
        # A quantised series (whole degrees, 0.1-point probes) mostly repeats itself, so its mean step shrinks
        # towards nothing and one step of its resolution would look like a spike: no scale goes below half of it.
        resolution = 0.5 * self._quantum if math.isfinite(self._quantum) else 0.0
        step = max(self._step_scale, tiny, resolution)
        spike = (value - local) / step
        stats[_SPIKE] = max(spike, 0.0)
        stats[_SPIKE + 1] = max(-spike, 0.0)
        index = _SPIKE if spike > 0.0 else _SPIKE + 1
        if abs(spike) > self._records[index] and ts is not None and self._known_transition(value - local, ts):
            # The move this point makes was made at this time of day before (a counter's reset, a timer): it counts
            # as no more than the largest spike seen, so it neither alarms nor raises the records.
            stats[index] = self._records[index]

        if self._reference and not seasonal:
            bisect.insort(recent, value)
            shift = (median_sorted(recent) - self._reference_median()) / max(self._deviation_scale, tiny, resolution)
            stats[_SHIFT] = max(shift, 0.0)
            stats[_SHIFT + 1] = max(-shift, 0.0)

        if previous is not None and len(self._steps) >= self.short_window:
            steps = [*self._steps, abs(value - previous)]
            recent_step = sum(steps) / len(steps)
            # With a daily cycle the usual step size can depend on the hour (counts are noisier by day). The recent
            # steps span more than this point's hour, so they are judged against the usual steps of the hours they
            # span: noisier than the larger, quieter than the smaller.
            low, high = self._usual_steps(ts, len(steps)) if seasonal and ts is not None else (step, step)
            # A series that has never moved has no variance to change (a constant reading is the flat-line's).
            if high > 10.0 * tiny:
                ratio = math.log((recent_step + 0.05 * step) / (high + 0.05 * step))
                stats[_VARIANCE] = max(ratio, 0.0)
                # Quieter is judged to the series' resolution: a quantised reading that sits on one value for a
                # while (whole degrees) has not gone quiet, it has not crossed a step.
                quiet = math.log((recent_step + 0.05 * step + resolution) / (low + 0.05 * step + resolution))
                stats[_VARIANCE + 1] = max(-quiet, 0.0)

        if seasonal and ts is not None:
            bucket = self._bucket(ts)
            expected = self._expected(bucket)
            if expected is not None:
                residuals = [*self._pattern_residuals, (value - expected) / self._residual_unit(bucket, tiny)]
                pattern = sum(residuals) / len(residuals)
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
            resolution = 0.5 * self._quantum if math.isfinite(self._quantum) else 0.0
            if (
                not early
                and step > _CLIP * max(scale, resolution)
                and ts is not None
                and self._known_transition(value - last, ts)
            ):
                step = _CLIP * scale
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
            deviation = abs(value - self._reference_median())
            scale = self._deviation_scale
            clipped = deviation if early else min(deviation, 4.0 * scale)
            weight = max(0.5 * rate, 1.0 / len(self._reference))
            self._deviation_scale = scale + weight * (clipped - scale)
        long_rate = max(1.0 / (n + 1), 1.0 / self.memory)
        long_mean = self._long_mean
        deviation_long = abs(value - long_mean)
        self._long_mean = long_mean + long_rate * (value - long_mean)
        self._long_scale += long_rate * (deviation_long - self._long_scale)
        self._update_seasonal(value, ts)
        # The oldest recent value moves into the reference window.
        recent = self._recent
        if len(recent) == self.short_window:
            self._enter_reference(recent[0])
        keep_last(recent, value, self.short_window)
        self._last = value

    def _enter_reference(self, moving: float) -> None:
        """Add ``moving`` to the reference window; once the window is full, its oldest value leaves.

        A new value goes after its equals, so equal values are in arrival order, as in the sorted list of
        values this replaces; the medians are the same numbers, down to the sign of a zero.
        """
        values, order = self._reference, self._reference_order
        by_value = values.__getitem__
        if len(values) < self.reference_window:
            slot = len(values)
            values.append(moving)
        elif self.reference_window > 0:
            slot = self._reference_oldest
            self._reference_oldest = (slot + 1) % len(values)
            # Equal values are in arrival order, so the first entry equal to the oldest value is its own.
            del order[bisect.bisect_left(order, values[slot], key=by_value)]
            values[slot] = moving
        else:
            return
        order.insert(bisect.bisect_right(order, moving, key=by_value), slot)

    def _reference_median(self) -> float:
        values, order = self._reference, self._reference_order
        n = len(order)
        mid = n // 2
        return values[order[mid]] if n % 2 else 0.5 * (values[order[mid - 1]] + values[order[mid]])

    # -- seasonality --------------------------------------------------------------------------------------------

    @staticmethod
    def _bucket(ts: float) -> int:
        """The hour of day in UTC, plus 24 at weekends (0-47)."""
        hours = int(ts // 3600)
        weekday = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        return hours % 24 + (24 if weekday >= 5 else 0)

    def _seasonal_active(self) -> bool:
        if self._first_ts is None or self._last_ts is None or not 0 < self._interval_s <= 3600:
            return False
        if self._last_ts - self._first_ts < 3 * 86_400 or self._pattern_n < 100:
            return False
        # Only when the hour-of-day profile explains the series clearly better than its overall level.
        return self._pattern_scale < 0.6 * self._long_scale

    def _needed(self) -> int:
        """Points an hour's profile needs before it is trusted: three hours' worth at the current interval."""
        return 3 * max(1, int(3600 / max(self._interval_s, 1.0)))

    def _trusted(self, bucket: int) -> int | None:
        """``bucket`` once its profile has seen enough points to judge by, else None.

        An hour is never judged by the other kind of day's profile: a first weekend judged by the weekdays is
        flagged wherever the weekend differs (an office's empty Saturday, a weekend's lower traffic), and the
        points flagged are not learned, so the weekend's own profile filled slowly and every weekend was flagged
        again. Until its weekend hours are trusted, a series' weekends are judged by the other statistics only.
        A weekend hour is trusted after half a weekday hour's points: a weekend of it, less what its first hours
        lost to the flags that met them (three days' worth would take a weekend and a half).
        """
        profile = self._profile
        if not profile:
            return None
        needed = self._needed()
        return bucket if profile[_COUNT + bucket] >= (needed if bucket < 24 else max(2, needed // 2)) else None

    def _expected(self, bucket: int) -> float | None:
        trusted = self._trusted(bucket)
        return None if trusted is None else self._profile[_LEVEL + trusted]

    def _residual_unit(self, bucket: int, tiny: float) -> float:
        """What one unit of residual is at ``bucket``: the spread of its profile where that is wider than the
        series' typical residual. An hour that holds a sharp daily transition (a timer switching, a counter's
        reset) has wide residuals every day, and they are its pattern, not a change of it."""
        resolution = 0.5 * self._quantum if math.isfinite(self._quantum) else 0.0
        unit = max(self._pattern_scale, tiny, resolution)
        trusted = self._trusted(bucket)
        if trusted is not None:
            spread = self._profile[_SPREAD + trusted]
            if math.isnan(spread):  # a weekend hour just trusted starts from the weekday's spread, and back
                spread = self._profile[_SPREAD + (trusted + 24) % 48]
            if spread > unit:  # False for NaN: a spread not learned yet
                unit = spread
        return unit

    def _usual_steps(self, ts: float, steps: int) -> tuple[float, float]:
        """The smaller and the larger usual step size of the hours the last ``steps`` steps span, up to ``ts``."""
        first = self._usual_step(ts - (steps - 1) * self._interval_s)
        last = self._usual_step(ts)
        return (first, last) if first <= last else (last, first)

    def _usual_step(self, ts: float) -> float:
        profile = self._profile
        if not profile:
            return self._floor_scale(self._step_scale)
        bucket = self._bucket(ts)
        needed = self._needed()
        for key in (bucket, (bucket + 24) % 48):
            if profile[_COUNT + key] >= needed and not math.isnan(profile[_STEP + key]):
                return self._floor_scale(profile[_STEP + key])
        return self._floor_scale(self._step_scale)

    def _known_transition(self, move: float, ts: float) -> bool:
        """Whether a move this large, this way, was made within an hour of this time of day on an earlier day."""
        transitions = self._transitions
        if not transitions or move == 0.0:
            return False
        last_ts = self._last_ts
        if last_ts is not None and ts > last_ts:
            # Where the weekend begins or ends, the two kinds of day's profiles say what move to expect (the
            # weekend's drop at midnight on Friday, a week after the first was flagged and not learned).
            now, before = self._trusted(self._bucket(ts)), self._trusted(self._bucket(last_ts))
            if now is not None and before is not None and (now < 24) != (before < 24):
                expected = self._profile[_LEVEL + now] - self._profile[_LEVEL + before]
                if move * expected > 0.0 and abs(move) <= TRANSITION_MARGIN * abs(expected):
                    return True
        hour = int(ts // 3600) % _HOURS
        block = _RISE if move > 0.0 else _FALL
        largest = max(transitions[block + (hour + shift) % _HOURS] for shift in (-1, 0, 1))
        return largest > 0.0 and abs(move) <= TRANSITION_MARGIN * largest

    def _learn_transition(self, move: float, ts: float) -> None:
        transitions = self._transitions
        if not transitions:
            transitions = self._transitions = array("f", bytes(4 * 2 * _HOURS)) + array("f", [math.nan]) * (2 * _HOURS)
        hour = int(ts // 3600)
        if hour != self._transition_hour:
            self._fold_transitions(hour % _HOURS)
            self._transition_hour = hour
        hour %= _HOURS
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
        for other in range(_HOURS):
            if (hour - other) % _HOURS <= 2 or math.isnan(transitions[_RISE_TODAY + other]):
                continue
            for earlier, today in ((_RISE + other, _RISE_TODAY + other), (_FALL + other, _FALL_TODAY + other)):
                transitions[earlier] = max(_TRANSITION_DECAY * transitions[earlier], transitions[today])
                transitions[today] = math.nan

    def _update_seasonal(self, value: float, ts: float | None) -> None:
        if ts is None:
            return
        last_ts = self._last_ts
        if self._last_ts is not None and ts > self._last_ts:
            gap = ts - self._last_ts
            self._interval_s = gap if self._interval_s == 0 else self._interval_s + 0.05 * (gap - self._interval_s)
        if self._first_ts is None:
            self._first_ts = ts
        self._last_ts = ts
        if not 0 < self._interval_s <= 3600:
            return
        key = self._bucket(ts)
        trusted = self._trusted(key)
        per_day = max(1.0, 3600.0 / self._interval_s)
        profile = self._profile
        if trusted is not None:
            residual = value - profile[_LEVEL + trusted]
            unit = self._residual_unit(key, 1e-9 * (abs(self._long_mean) + 1.0))
            self._pattern_n += 1
            size = abs(residual) if self._pattern_n <= 10 else min(abs(residual), _CLIP * self._pattern_scale)
            self._pattern_scale += max(0.01, 1.0 / self._pattern_n) * (size - self._pattern_scale)
            keep_last(self._pattern_residuals, residual / unit, 2 * self.short_window)
            # The spread of the bucket that judged this point: its own, or the other kind of day's until its own
            # is trusted (so a weekend hour starts from the weekday's).
            spread = profile[_SPREAD + trusted]
            if math.isnan(spread):
                profile[_SPREAD + trusted] = abs(residual)
            else:
                size = min(abs(residual), _CLIP * max(spread, self._pattern_scale))
                rate = max(1.0 / profile[_COUNT + trusted], 1.0 / (per_day * self.seasonal_days))
                profile[_SPREAD + trusted] = spread + rate * (size - spread)
        if not profile:
            profile = self._profile = array("d", bytes(8 * 2 * _BUCKETS)) + array("d", [math.nan]) * (2 * _BUCKETS)
        count = profile[_COUNT + key] + 1
        profile[_COUNT + key] = count
        rate = max(1.0 / count, 1.0 / (per_day * self.seasonal_days))
        previous = profile[_LEVEL + key] if count > 1 else value
        profile[_LEVEL + key] = previous + rate * (value - previous)
        if self._last is not None:
            move = value - self._last
            step = abs(move)
            usual = profile[_STEP + key]
            if math.isnan(usual):
                usual = step
            if count > 10 or self._known_transition(move, ts):
                step = min(step, _CLIP * usual)
            profile[_STEP + key] = usual + rate * (step - usual)
            recent = self._recent
            if last_ts is not None and len(recent) >= 2:
                # The last point's move is a transition if this one does not take it back: a level the series
                # moved to (a reset, a switch, the weekend) is its daily pattern when it comes again, a spike is not.
                before = recent[-2]
                previous = self._last - before
                if previous * move >= 0.0 or abs(move) < 0.5 * abs(previous):
                    self._learn_transition(previous, last_ts)
