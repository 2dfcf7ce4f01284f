"""Routine-change detection per home: learn each resident's normal, say plainly when today departs from it.

``RoutineDetector`` takes home ``Reading``s one at a time (``process``) and the passing of time (``tick``), and
returns ``placesense.basics.findings.Finding``s for the care team. For each home it learns, from the home's own history:

- daily features (getting-up time, bedtime, movements, kitchen visits, kettle boils, fridge openings, bathroom
  visits by day and night, movement outside the bedroom at night, time out, room temperature), each against a
  rolling weekday/weekend baseline (``anomaly.baseline``) that follows slow, healthy drift;
- an hour-of-day activity profile and the usual longest still spell, so "no movement" is judged against what is
  normal at that hour for that person;
- an hour-of-day room-temperature profile.

Checks run as early as the evidence allows: *not up yet* once the usual getting-up range has clearly passed,
*no movement* while the person is at home and normally active, *night-time wandering* as it happens, *more
bathroom visits* and *less kitchen use* during the day, *cold home* against the usual temperature at that hour,
and at the end of each routine day a multivariate check over the whole feature vector (robust z-scores against
the baselines, combined; see ``docs/anomaly.md`` for why this and not HalfSpaceTrees). Two checks accumulate
evidence over days instead: *more bathroom visits* over several days (a Poisson CUSUM against the usual rate), and
a *gradual decline* (``anomaly.decline``: later mornings, fewer movements, less kitchen use, less time out,
judged against the same person three to eight weeks earlier so the slow change cannot become its own normal).
Nothing is raised until a home has ``warm_up_days`` of learned days. Days flagged for a feature are kept out of
that feature's baseline unless the change lasts ``accept_after_days`` days, so one bad day does not become normal.

This module must not talk to MQTT, InfluxDB or the alert store: readings in, findings out.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from anomaly.baseline import DailyBaseline, Usual
from anomaly.decline import Decline, DeclineWatch
from anomaly.explain import FEATURES, amount, amount_text, change_text, clock, days_text, feature_text
from anomaly.homeday import (
    EARLIEST_BED_MIN,
    EARLIEST_WAKE_MIN,
    KETTLE_ON_W,
    NIGHT_ROOMS_EXCLUDED,
    WAKE_CONFIRM_MS,
    HomeDay,
    HomeTracker,
    local_minute,
)
from devices.readings import Reading
from devices.registry import DeviceSpec, Registry
from placesense.basics.clock import Clock
from placesense.basics.findings import Finding, Severity
from placesense.basics.stats import poisson_lower_tail, poisson_upper_tail, quantile
from placesense.basics.texts import Text, renderings, text
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS
from rules.homesense import Change, interpret, metric_state

# feature -> smallest robust scale, so a very regular resident is not alarmed by tiny changes
MIN_SCALE: dict[str, float] = {
    "wake_min": 20.0,
    "bedtime_min": 25.0,
    "motion_count": 40.0,
    "kitchen_visits": 1.5,
    "kettle_uses": 1.5,
    "fridge_opens": 2.0,
    "bathroom_day": 1.5,
    "bathroom_night": 1.0,
    "night_activity": 1.0,
    "out_min": 45.0,
    "temperature_c": 0.7,
}
# feature -> the direction of a change that worries a carer: +1 more or later, -1 fewer or colder, 0 either way.
# A day with more kitchen use, more movement, more time out or a warmer home is a good day (or visitors), not a
# routine change to tell anyone about; sleeping and getting up earlier or later both are.
CONCERNING: dict[str, int] = {
    "wake_min": 0,
    "bedtime_min": 0,
    "motion_count": -1,
    "kitchen_visits": -1,
    "kettle_uses": -1,
    "fridge_opens": -1,
    "bathroom_day": +1,
    "bathroom_night": +1,
    "night_activity": +1,
    "out_min": -1,
    "temperature_c": -1,
}
# An early or a late night on its own is an ordinary evening (tired, a late film, visitors), however far it is from
# her usual: only beside other changes is it news. (Getting up late has a rule of its own.)
NOT_ON_ITS_OWN = frozenset({"bedtime_min"})
PIR_HOLD_MS = 60_000  # a PIR's "no motion" comes about a minute after the last movement it saw
NIGHT_ACTIVITY_MIN = 4.0  # fewer uses of one room at night than this are a drink or a snack, not wandering
# Without a bed sensor bedtime is a guess from an hour of quiet in the evening (a chair, a book, out unseen): what
# she does after it and before this is still her evening, not night-time activity.
GUESSED_NIGHT_FROM_MIN = 23 * 60
STILL_FLOOR_MIN = 45.0  # stillness shorter than this is a sit-down, whatever the learned spells say
QUIET_HOUR_SHARE = 0.5  # an hour with activity on fewer days than this is one she is usually asleep in
QUIET_HOURS_AFTER_DAYS = 7  # until then every night hour counts
LATEST_WAKE_MIN = 16 * 60  # activity after a quiet afternoon or evening is not getting up
STUCK_PIR_MS = 30 * 60_000  # a PIR "seeing movement" for longer is stuck; its "no motion" says nothing


T = TypeVar("T")


@dataclass
class HomeModel:
    """Everything learned and tracked for one home; saved as it is (``placesense.evaluation_state``)."""

    tracker: HomeTracker
    baselines: dict[str, DailyBaseline] = field(default_factory=dict)
    still: DailyBaseline = field(default_factory=lambda: DailyBaseline(min_scale=5.0))
    # each learned day's longest still spell overlapping each hour of the day (minutes), newest last
    still_hours: deque[list[int]] = field(default_factory=lambda: deque(maxlen=28))
    kitchen_curves: deque[tuple[bool, dict[int, int]]] = field(default_factory=lambda: deque(maxlen=28))
    hour_active: list[float] = field(default_factory=lambda: [0.0] * 24)
    temperature_mean: list[float] = field(default_factory=lambda: [0.0] * 24)
    temperature_dev: list[float] = field(default_factory=lambda: [0.0] * 24)
    temperature_n: list[int] = field(default_factory=lambda: [0] * 24)
    days_learned: int = 0
    held: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    open_rules: set[str] = field(default_factory=set)
    flagged_today: set[str] = field(default_factory=set)
    last_kitchen_check_hour: int = -1
    recent_z: dict[str, deque[float]] = field(default_factory=dict)  # feature -> robust z of the last days
    trend_quiet_days: int = 0
    cold_streak: int = 0
    decline: DeclineWatch = field(default_factory=DeclineWatch)
    bathroom_cusum: float = 0.0  # evidence of more bathroom visits over the last days (see _bathroom_trend)
    bathroom_quiet_days: int = 0
    bathroom_run: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=7))  # (day, night) visits
    # each closed day's getting-up moment, newest last, for the care page's chart: (wake_ms, local minute, weekend)
    wake_days: deque[tuple[int, float, bool]] = field(default_factory=lambda: deque(maxlen=28))

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A model pickled by the previous release before a field existed gets that field's default, so its
        # routine.pkl still loads (``placesense.evaluation_state`` reads it once). The JSON state does the same
        # for every dataclass by itself.
        for spec in dataclasses.fields(self):
            if spec.name not in state:
                if spec.default_factory is not dataclasses.MISSING:
                    state[spec.name] = spec.default_factory()
                elif spec.default is not dataclasses.MISSING:
                    state[spec.name] = spec.default
        self.__dict__.update(state)

    def baseline(self, feature: str) -> DailyBaseline:
        if feature not in self.baselines:
            self.baselines[feature] = DailyBaseline(min_scale=MIN_SCALE.get(feature, 1.0))
        return self.baselines[feature]

    def usual(self, feature: str, weekend: bool) -> Usual | None:
        baseline = self.baselines.get(feature)
        return baseline.usual(weekend) if baseline is not None else None


def _usual_range(usual: Usual | None) -> dict[str, float] | None:
    if usual is None:
        return None
    return {"low": round(usual.low, 1), "median": round(usual.median, 1), "high": round(usual.high, 1)}


def _room(name: str) -> str:
    return name.replace("_", " ")


def _over(usual: Usual | None) -> Text:
    """' over the last 14 days.' (or '10 weekdays', '4 weekend days'), or just the full stop when nothing is
    learned yet."""
    return text("routine.over_days", days=days_text(usual)) if usual is not None else text("routine.full_stop")


def _locked(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: RoutineDetector, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class RoutineDetector:
    """Per-home routine learning and routine-change findings.

    Feed every home ``Reading`` to ``process``; call ``tick(now_ms)`` every minute or so (with an event clock,
    after each batch of readings) so time-based checks fire when nothing arrives.
    """

    # Attributes that are caches of the registry, not learned state: built again after a restart, never saved.
    DERIVED = frozenset({"_pir_rooms_by_home"})

    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        warm_up_days: int = 14,
        accept_after_days: int = 3,
        significance: float = 1e-3,
        bathroom_rate_ratio: float = 1.5,
        bathroom_threshold: float = 4.5,
        bathroom_quiet_days: int = 5,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.warm_up_days = warm_up_days
        self.accept_after_days = accept_after_days
        self.significance = significance
        self.bathroom_rate_ratio = bathroom_rate_ratio
        self.bathroom_threshold = bathroom_threshold
        self.bathroom_quiet_days = bathroom_quiet_days
        self._homes: dict[str, HomeModel] = {}
        self._pir_rooms_by_home: dict[str, frozenset[str]] = {}  # from the registry: not learned state
        # Safe from several threads: tools and tests call it directly, beside the evaluation process's one loop.
        self._lock = threading.RLock()

    # -- public -------------------------------------------------------------------------------------------------

    def process(self, reading: Reading) -> list[Finding]:
        """Take one reading; returns the findings it triggers (often none)."""
        # Before the lock: half of a fleet's readings are beds' and air sites', and taking the lock cost them
        # more than the check.
        if reading.domain != "home":
            return []
        return self._process_home(reading)

    @_locked
    def _process_home(self, reading: Reading) -> list[Finding]:
        device = self.registry.devices.get(reading.device_id)
        kind = device.kind if device is not None else None
        model = self._home(reading.subject)
        if model is None:
            return []
        tracker = model.tracker
        ts = reading.ts_ms
        findings = self._advance(reading.subject, model, ts)
        minute, _ = local_minute(ts, tracker.timezone)
        metrics = reading.metrics
        if "temperature_c" in metrics and kind == "climate":
            findings += self._temperature(reading.subject, model, ts, metrics["temperature_c"], minute)
        if device is None:
            return findings
        state = metric_state(device, metrics, KETTLE_ON_W)
        if state is None:
            return findings
        change = interpret(device, tracker.device_state.get(device.id), state)
        tracker.device_state[device.id] = state
        if change is None:
            return findings  # a check-in repeating the state: the device is alive, nobody moved
        return findings + self._changed(reading.subject, model, device, change, ts, minute)

    def _changed(
        self, home_id: str, model: HomeModel, device: DeviceSpec, change: Change, ts: int, minute: int
    ) -> list[Finding]:
        tracker = model.tracker
        kind, room = device.kind, device.room
        if kind == "motion":
            if change.what == "still":
                # The PIR saw movement until about a minute ago, unless it was stuck "on" for far longer.
                since = tracker.motion_since.pop(device.id, None)
                door = tracker.last_door_ms
                left = door is not None and since is not None and since <= door <= ts  # she went out meanwhile
                if since is not None and ts - since <= STUCK_PIR_MS and not left and not tracker.is_out(ts):
                    tracker.activity(ts - PIR_HOLD_MS)
                return []
            tracker.motion_since[device.id] = ts
        if kind == "bed":
            tracker.has_bed_sensor = True
            if tracker.believe(device.id, ts):
                tracker.bed(ts, change.what == "in_bed", minute)
            return []
        if not change.active:
            return []  # an appliance switching itself off
        if kind == "front_door":
            tracker.front_door(ts, change.what == "opened")
            return self._night_check(home_id, model, ts)
        if not tracker.believe(device.id, ts):
            return []  # one device alone while she is out: not her
        findings: list[Finding] = []
        if tracker.asleep and EARLIEST_WAKE_MIN <= minute < LATEST_WAKE_MIN and room not in NIGHT_ROOMS_EXCLUDED:
            # Up and about outside the bedroom in the morning, confirmed by a second sign within half an hour:
            # up, whatever the bed says (a mat can stick).
            pending = tracker.pending_wake_ms
            if pending is not None and ts - pending <= WAKE_CONFIRM_MS:
                wake = tracker.bed_left_ms if tracker.bed_left_ms is not None else pending
                tracker.pending_wake_ms = None
                findings += self._wake(home_id, model, wake, ts)
            else:
                tracker.pending_wake_ms = ts
        if tracker.has_bed_sensor or not EARLIEST_WAKE_MIN <= minute < GUESSED_NIGHT_FROM_MIN:
            tracker.night_use(device.id, room, kind == "motion")
        if kind == "motion" or (room or "other") not in self._pir_rooms(home_id):
            tracker.presence(ts, room, minute)
        else:
            # The room's PIR says where she is and counts her visits; a cupboard or the fridge there is a sign of
            # life (and kitchen use), not another movement.
            tracker.activity(ts)
        if kind == "fridge_door" and change.what == "opened":
            tracker.fridge_opened(ts)
        elif kind == "kettle" and change.what == "on":
            tracker.kettle_on_now(ts)
        findings += self._night_check(home_id, model, ts)
        findings += self._bathroom_check(home_id, model, ts)
        return findings

    @_locked
    def tick(self, now_ms: int | None = None) -> list[Finding]:
        """Time-based checks for every home (not up yet, no movement, little kitchen use)."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        findings: list[Finding] = []
        for home_id, model in self._homes.items():
            findings += self._advance(home_id, model, now)
            findings += self._late_wake_check(home_id, model, now)
            findings += self._stillness_check(home_id, model, now)
            findings += self._kitchen_check(home_id, model, now)
        return findings

    @_locked
    def warm_up(self, home_id: str) -> dict[str, Any]:
        """Warm-up status for the API: days learned, days needed, whether routine alerts can be raised."""
        model = self._homes.get(home_id)
        learned = model.days_learned if model else 0
        return {"days_learned": learned, "days_needed": self.warm_up_days, "ready": learned >= self.warm_up_days}

    @_locked
    def routine_today(self, home_id: str) -> dict[str, Any]:
        """Today so far against the learned baseline, for ``GET /api/v1/homes/{home}/routine``."""
        model = self._homes.get(home_id)
        result: dict[str, Any] = {"home": home_id, "warm_up": self.warm_up(home_id), "features": [], "state": None}
        if model is None:
            return result
        tracker = model.tracker
        now = self.clock.now_ms()
        result["state"] = "asleep" if tracker.asleep else ("out" if tracker.is_out(now) else "up")
        result["open_findings"] = sorted(model.open_rules)
        result["hour_activity"] = [round(p, 3) for p in model.hour_active]
        # The last weeks' getting-up times and the usual range each kind of day is judged against now.
        result["wake_history"] = [{"wake_ms": ms, "wake_min": round(minute, 1), "weekend": weekend}
                                  for ms, minute, weekend in model.wake_days]
        result["usual_wake"] = {kind: _usual_range(model.usual("wake_min", weekend))
                                for kind, weekend in (("weekday", False), ("weekend", True))}
        day = tracker.day
        if day is None:
            return result
        result["day_started"] = clock(day.wake_min)
        for feature, value in day.features().items():
            usual = model.usual(feature, day.weekend)
            label = text("feature.label", feature=feature)
            entry: dict[str, Any] = {
                "feature": feature, "label": label.english, "labels": renderings(label, label.english),
                "today": round(value, 2),
            }
            if usual is not None:
                sentence = feature_text(feature, value, usual)
                entry |= {
                    "usual_low": round(usual.low, 2),
                    "usual_high": round(usual.high, 2),
                    "usual_median": round(usual.median, 2),
                    "days": usual.days,
                    "text": sentence.english,
                    "texts": renderings(sentence, sentence.english),
                }
            result["features"].append(entry)
        return result

    @_locked
    def homes(self) -> list[str]:
        return sorted(self._homes)

    # -- persistence --------------------------------------------------------------------------------------------

    @_locked
    def state(self) -> dict[str, Any]:
        """Every home's learned model and tracked day (``placesense.evaluation_state``)."""
        return {"homes": self._homes}

    @_locked
    def restore(self, state: Mapping[str, Any]) -> None:
        self._homes.update({home: model for home, model in state["homes"].items() if home in self.registry.homes})

    @_locked
    def forget(self, home_id: str) -> bool:
        """Drop one home's learned model (erasure); True if there was one."""
        return self._homes.pop(home_id, None) is not None

    # -- day boundaries -----------------------------------------------------------------------------------------

    def _pir_rooms(self, home_id: str) -> frozenset[str]:
        rooms = self._pir_rooms_by_home.get(home_id)
        if rooms is None:
            rooms = frozenset(
                d.room or "other" for d in self.registry.devices.values() if d.subject == home_id and d.kind == "motion"
            )
            self._pir_rooms_by_home[home_id] = rooms
        return rooms

    def _home(self, home_id: str) -> HomeModel | None:
        model = self._homes.get(home_id)
        if model is None:
            home = self.registry.homes.get(home_id)
            if home is None:
                return None
            model = HomeModel(tracker=HomeTracker(timezone=home.timezone))
            self._homes[home_id] = model
        return model

    def _advance(self, home_id: str, model: HomeModel, now: int) -> list[Finding]:
        tracker = model.tracker
        findings: list[Finding] = []
        wake = tracker.pending_wake(now)
        if wake is not None and tracker.asleep:
            findings += self._wake(home_id, model, wake, now)
        bedtime = tracker.pending_bedtime(now)
        if bedtime is not None and not tracker.asleep:
            tracker.go_to_bed(bedtime)
        last_up = tracker.last_up_ms if tracker.last_up_ms is not None else tracker.last_activity_ms
        if not tracker.asleep and last_up is not None:
            # Without a bed sensor (or with one that never settles: a flickering or stuck mat), an hour with
            # nothing outside the bedroom and bathroom late in the evening is bedtime, from her last activity
            # there, if that was in the evening: quiet since the afternoon is being out unseen, or a nap.
            minute, _ = local_minute(now, tracker.timezone)
            last_minute, _ = local_minute(last_up, tracker.timezone)
            evening = last_minute >= EARLIEST_BED_MIN or last_minute < EARLIEST_WAKE_MIN
            late = minute >= 21 * 60 or minute < EARLIEST_WAKE_MIN
            inferred = not tracker.has_bed_sensor or minute < EARLIEST_WAKE_MIN
            # ... and only in an hour she is usually quiet in: where only cupboards and doors are sensed, an hour's
            # quiet at 22:00 is an evening in a chair if she is usually about then.
            hour_quiet = model.hour_active[minute // 60] < QUIET_HOUR_SHARE
            quiet_hour = tracker.has_bed_sensor or model.days_learned < QUIET_HOURS_AFTER_DAYS or hour_quiet
            settled = now - last_up >= HOUR_MS and evening and not tracker.is_out(now)
            if inferred and late and quiet_hour and settled:
                tracker.go_to_bed(last_up)
        return findings

    def _wake(self, home_id: str, model: HomeModel, wake_ms: int, now: int) -> list[Finding]:
        tracker = model.tracker
        ended = tracker.start_day(wake_ms)
        model.last_kitchen_check_hour = -1
        findings: list[Finding] = []
        for rule in ("routine_late_wakeup", "routine_night_wandering"):
            if rule in model.open_rules:
                model.open_rules.discard(rule)
                findings.append(self._finding(rule, home_id, "info", "Up and about again.", now, active=False))
        if ended is not None:
            findings += self._close_day(home_id, model, ended, now)
        model.flagged_today = set()
        return findings

    def _close_day(self, home_id: str, model: HomeModel, day: HomeDay, now: int) -> list[Finding]:
        features = day.features()
        findings: list[Finding] = []
        flagged: set[str] = set()
        if self._ready(model):
            findings, flagged = self._daily_check(home_id, model, day, features, now)
        findings += self._decline_check(home_id, model, day, features, now)
        flagged |= {name for name in model.flagged_today if name in features}
        for feature, value in features.items():
            if feature in flagged:
                held = model.held.setdefault(feature, [])
                held.append((value, day.weekend))
                if len(held) >= self.accept_after_days:
                    # A change that lasts is the new normal (the carers have been told); learn it.
                    for old_value, old_weekend in held:
                        model.baseline(feature).add(old_value, old_weekend)
                    held.clear()
            else:
                model.held.pop(feature, None)
                model.baseline(feature).add(value, day.weekend)
        if "still" not in model.flagged_today:  # a stillness the care team was told of is not her normal
            model.still.add(day.longest_still_ms / MINUTE_MS, day.weekend)
            model.still_hours.append([round(ms / MINUTE_MS) for ms in day.still_by_hour])
        model.kitchen_curves.append((day.weekend, dict(day.kitchen_by_hour)))
        model.wake_days.append((day.wake_ms, day.wake_min, day.weekend))
        rate = max(1.0 / (model.days_learned + 1), 1.0 / 14)
        for hour in range(24):
            seen = 1.0 if hour in day.active_hours else 0.0
            model.hour_active[hour] += rate * (seen - model.hour_active[hour])
        model.days_learned += 1
        return findings

    def _ready(self, model: HomeModel) -> bool:
        return model.days_learned >= self.warm_up_days

    # -- checks ---------------------------------------------------------------------------------------------

    def _daily_check(
        self, home_id: str, model: HomeModel, day: HomeDay, features: dict[str, float], now: int
    ) -> tuple[list[Finding], set[str]]:
        """The multivariate check: robust z per feature, combined; several moderate moves or one big one."""
        moved: list[tuple[float, str, float, Usual]] = []
        for feature, value in features.items():
            usual = model.usual(feature, day.weekend)
            if usual is None:
                continue
            z = usual.z(value)
            # Beyond every learned day by a noticeable step ("got up at 09:36; usually 04:01–09:33" is no news).
            step = MIN_SCALE.get(feature, 0.0) / 2
            outside = value > usual.highest + step or value < usual.lowest - step
            if abs(z) >= 3.0 and outside and _concerning(feature, z):
                moved.append((abs(z), feature, value, usual))
        moved.sort(reverse=True)
        trend = self._trend(home_id, model, day, features, now)
        trend += self._bathroom_trend(home_id, model, day, features, now)
        flagged = {feature for _, feature, _, _ in moved}
        strength = sum(min(z, 10.0) for z, _, _, _ in moved)
        fresh = [m for m in moved if m[1] not in model.flagged_today]
        big = [m for m in moved if m[0] >= 6.0 and m[1] not in NOT_ON_ITS_OWN]
        if not fresh or not ((len(moved) >= 2 and strength >= 8.0) or big):
            return trend, flagged
        sentences = [feature_text(feature, value, usual) for _, feature, value, usual in moved[:4]]
        evidence: dict[str, float | int | str | None] = {"features_moved": len(moved), "strength": round(strength, 2)}
        for z, feature, value, usual in moved[:4]:
            evidence[f"{feature}"] = round(value, 2)
            evidence[f"{feature}_usual_low"] = round(usual.low, 2)
            evidence[f"{feature}_usual_high"] = round(usual.high, 2)
            evidence[f"{feature}_z"] = round(z, 2)
        evidence["days"] = moved[0][3].days
        message = text("routine_change", sentences=sentences)
        severity: Severity = "warning" if len(moved) >= 2 else "info"
        return [self._finding("routine_change", home_id, severity, message, now, evidence=evidence)], flagged

    def _trend(
        self, home_id: str, model: HomeModel, day: HomeDay, features: dict[str, float], now: int
    ) -> list[Finding]:
        """A change sustained over two or three days: the mean robust z, which grows with √days."""
        for feature, value in features.items():
            usual = model.usual(feature, day.weekend)
            if usual is not None:
                model.recent_z.setdefault(feature, deque(maxlen=3)).append(max(-10.0, min(10.0, usual.z(value))))
        if model.trend_quiet_days > 0:
            model.trend_quiet_days -= 1
            return []
        moved: list[tuple[float, str, int]] = []
        for feature, history in model.recent_z.items():
            known = model.usual(feature, day.weekend)
            yesterday = features.get(feature)
            if known is None or yesterday is None or known.low <= yesterday <= known.high:
                continue  # yesterday within her usual range: not a change to tell anyone about
            if not _concerning(feature, history[-1]):
                continue
            for days in (2, 3):
                if len(history) >= days:
                    last = list(history)[-days:]
                    same_sign = all(z > 0 for z in last) or all(z < 0 for z in last)
                    combined = abs(sum(last)) / math.sqrt(days)
                    if same_sign and combined >= 3.5:
                        moved.append((combined, feature, days))
                        break
        moved.sort(reverse=True)
        if len(moved) < 2 or sum(z for z, _, _ in moved) < 8.0:
            return []
        model.trend_quiet_days = 7  # one heads-up a week about the same slow change is enough
        parts: list[Text] = []
        evidence: dict[str, float | int | str | None] = {"features_moved": len(moved)}
        for combined, feature, days in moved[:4]:
            usual = model.usual(feature, day.weekend)
            if usual is None:
                continue
            later = model.recent_z[feature][-1] > 0
            if FEATURES[feature][1] == "clock":
                direction = "later" if later else "earlier"
            else:
                direction = "more" if later else "less"
            parts.append(text(
                "routine_trend.part", feature=feature, direction=direction, days=days,
                yesterday=amount_text(feature, features.get(feature, usual.median)),
                low=amount_text(feature, usual.low), high=amount_text(feature, usual.high),
            ))
            evidence[f"{feature}_z"] = round(combined, 2)
            evidence[f"{feature}_days"] = days
        message = text("routine_trend", parts=parts, days=model.days_learned)
        return [self._finding("routine_change", home_id, "warning", message, now, evidence=evidence)]

    def _bathroom_trend(
        self, home_id: str, model: HomeModel, day: HomeDay, features: dict[str, float], now: int
    ) -> list[Finding]:
        """More bathroom visits, by day and at night together, over several days: an early sign of a urinary
        infection that one busy day on its own does not show.

        A Poisson CUSUM: each day adds the log-likelihood ratio of its day and night counts under "visits are
        ``bathroom_rate_ratio`` times the usual mean" against "as usual", and the sum never goes below zero, so
        a rise of half again is found in two to four days while ordinary ups and downs cancel out."""
        rule = "routine_more_bathroom_visits"
        by_day, at_night = features.get("bathroom_day"), features.get("bathroom_night")
        usual_day, usual_night = model.usual("bathroom_day", day.weekend), model.usual("bathroom_night", day.weekend)
        if by_day is None or at_night is None or usual_day is None or usual_night is None:
            return []
        if "bathroom_day" in model.flagged_today or "bathroom_night" in model.flagged_today:
            # told today by the check that runs during the day: count afresh from tomorrow, so the days before
            # are not told again later, while the days after can still show that the rise goes on
            model.bathroom_cusum = 0.0
            model.bathroom_run.clear()
            return []
        ratio = self.bathroom_rate_ratio
        rate_day, rate_night = max(usual_day.mean, 1.0), max(usual_night.mean, 0.5)
        evidence_today = (by_day + at_night) * math.log(ratio) - (ratio - 1.0) * (rate_day + rate_night)
        model.bathroom_cusum = max(0.0, model.bathroom_cusum + evidence_today)
        if model.bathroom_cusum == 0.0:
            model.bathroom_run.clear()
        else:
            model.bathroom_run.append((round(by_day), round(at_night)))
        if model.bathroom_quiet_days > 0:
            model.bathroom_quiet_days -= 1
            return []
        if model.bathroom_cusum < self.bathroom_threshold or len(model.bathroom_run) < 2:
            return []
        days = len(model.bathroom_run)
        totals = [str(d + n) for d, n in model.bathroom_run]
        message = text(
            "routine_bathroom_trend", days=days, listed=text("list_and", first=", ".join(totals[:-1]), last=totals[-1]),
            by_day=round(by_day), at_night=round(at_night), usual=round(rate_day + rate_night),
            day_low=amount("bathroom_day", usual_day.low), day_high=amount("bathroom_day", usual_day.high),
            night_low=amount("bathroom_night", usual_night.low), night_high=amount("bathroom_night", usual_night.high),
            usual_days=days_text(usual_day),
        )
        evidence: dict[str, float | int | str | None] = {
            "days": days, "cusum": round(model.bathroom_cusum, 2), "visits_per_day": " ".join(totals),
            "usual_per_day": round(rate_day + rate_night, 2), "bathroom_day": by_day, "bathroom_night": at_night,
        }
        model.bathroom_cusum, model.bathroom_quiet_days = 0.0, self.bathroom_quiet_days
        model.bathroom_run.clear()
        model.flagged_today |= {"bathroom_day", "bathroom_night"}
        return [self._finding(rule, home_id, "warning", message, now, evidence=evidence)]

    def _decline_check(self, home_id: str, model: HomeModel, day: HomeDay, features: dict[str, float], now: int
                       ) -> list[Finding]:
        """Feed the day to the home's ``DeclineWatch`` (always, so its lagged reference fills during warm-up);
        a gradual decline it reports becomes a finding once the home is past warm-up."""
        kitchen = ("kitchen_visits", "kettle_uses", "fridge_opens")
        told = model.flagged_today  # what a same-day check has reported is not counted twice
        values: dict[str, float | None] = {
            "wake_min": None if "wake_min" in told else features.get("wake_min"),
            "motion_count": features.get("motion_count"),
            "kitchen_events": None if told & set(kitchen) else sum(features.get(k, 0.0) for k in kitchen),
            "out_min": features.get("out_min"),
        }
        decline = model.decline.add_day(values, day.weekend)
        if decline is None or not self._ready(model):
            return []
        return [self._decline_finding(home_id, decline, now)]

    def _decline_finding(self, home_id: str, decline: Decline, now: int) -> Finding:
        parts = [change_text(moved.feature, moved.recent, moved.usual) for moved in decline.moved]
        weeks_from, weeks_to = decline.reference_to_days_ago // 7, decline.reference_from_days_ago // 7
        message = text("routine_decline", days=decline.days, weeks_from=weeks_from, weeks_to=weeks_to, parts=parts)
        evidence: dict[str, float | int | str | None] = {
            "days": decline.days, "cusum": round(decline.cusum, 2), "reference_days": decline.reference_days,
        }
        for moved in decline.moved:
            evidence[moved.feature] = round(moved.recent, 2)
            evidence[f"{moved.feature}_usual"] = round(moved.usual, 2)
            evidence[f"{moved.feature}_z"] = round(moved.z, 2)
        return self._finding("routine_gradual_decline", home_id, "warning", message, now, evidence=evidence)

    def _late_wake_check(self, home_id: str, model: HomeModel, now: int) -> list[Finding]:
        tracker = model.tracker
        if not self._ready(model) or not tracker.asleep or "routine_late_wakeup" in model.open_rules:
            return []
        if tracker.is_out(now):
            return []  # out since the front door: not in bed
        if tracker.bed_left_ms is not None:
            return []  # out of bed, waiting to see whether it is for good
        minute, weekend = local_minute(now, tracker.timezone)
        usual = model.usual("wake_min", weekend)
        if usual is None or not EARLIEST_WAKE_MIN <= minute < 18 * 60:
            return []  # in bed in the evening or at night is not "not up yet"
        limit = max(usual.high + 45.0, usual.median + 3.0 * usual.scale)
        if minute < limit:
            return []
        message = text(
            "routine_late_wakeup", time=clock(minute), usual_from=clock(usual.low), usual_to=clock(usual.high),
            days=days_text(usual),
        )
        evidence: dict[str, float | int | str | None] = {
            "now_min": minute, "usual_low_min": round(usual.low), "usual_high_min": round(usual.high),
            "days": usual.days,
        }
        model.open_rules.add("routine_late_wakeup")
        model.flagged_today.add("wake_min")
        return [self._finding("routine_late_wakeup", home_id, "warning", message, now, evidence=evidence)]

    def _stillness_check(self, home_id: str, model: HomeModel, now: int) -> list[Finding]:
        tracker = model.tracker
        rule = "routine_no_movement"
        still_ms = tracker.still_for_ms(now)
        if rule in model.open_rules:
            if still_ms < 5 * MINUTE_MS:
                model.open_rules.discard(rule)
                return [self._finding(rule, home_id, "info", text("routine_no_movement.cleared"), now, active=False)]
            return []
        day = tracker.day
        if not self._ready(model) or day is None or tracker.asleep or tracker.is_out(now):
            return []
        minute, weekend = local_minute(now, tracker.timezone)
        hour = minute // 60
        if now - day.wake_ms < HOUR_MS or min(model.hour_active[hour], model.hour_active[(hour + 23) % 24]) < 0.7:
            return []
        bedtime = model.usual("bedtime_min", weekend)
        if bedtime is not None and minute + 60 > bedtime.low and minute >= EARLIEST_WAKE_MIN:
            return []  # getting close to bedtime: stillness may be sleep
        # Half again her usual longest still spell around this hour (90th percentile over the learned days of
        # the longest spell overlapping this hour or the one before): in a home with a PIR in every room that is
        # under an hour; where only cupboards and doors are sensed, her ordinary quiet spells are hours long.
        around = sorted(
            float(max(spells[hour], spells[(hour + 23) % 24])) for spells in model.still_hours
            if max(spells[hour], spells[(hour + 23) % 24]) > 0
        )
        usual_still = model.still.usual(weekend)
        whole_day = usual_still.high if usual_still is not None else 30.0
        longest = around[-1] + 15.0 if len(around) >= 5 else 0.0  # longer than any learned spell around now
        typical = quantile(around, 0.9) if len(around) >= 5 else whole_day
        # Never sooner than half again the day's usual longest spell (up to 50 min), as before hours were learned.
        limit_min = max(STILL_FLOOR_MIN, min(50.0, 1.5 * whole_day), 1.5 * typical, longest)
        if still_ms < limit_min * MINUTE_MS or tracker.last_activity_ms is None:
            return []
        since = local_minute(tracker.last_activity_ms, tracker.timezone)[0]
        message = text(
            "routine_no_movement", still=still_ms / MINUTE_MS, since=clock(since), typical=typical,
            over=_over(usual_still),
        )
        evidence: dict[str, float | int | str | None] = {
            "still_min": round(still_ms / MINUTE_MS), "since_min": since, "limit_min": round(limit_min),
            "hour_active_share": round(model.hour_active[hour], 2),
        }
        model.open_rules.add(rule)
        model.flagged_today.add("still")
        return [self._finding(rule, home_id, "critical", message, now, evidence=evidence)]

    def _night_check(self, home_id: str, model: HomeModel, now: int) -> list[Finding]:
        tracker = model.tracker
        day = tracker.day
        rule = "routine_night_wandering"
        if not self._ready(model) or day is None or not tracker.asleep or day.bedtime_ms is None:
            return []
        if rule in model.open_rules:
            return []
        count = day.night_activity + day.night_door_opens
        usual = model.usual("night_activity", day.weekend)
        usual_most = usual.high if usual is not None else 0.0
        # Wandering goes from room to room, or out of the door; a snack in the kitchen is one room.
        least = 3.0 if len(day.night_rooms) >= 2 or day.night_door_opens else NIGHT_ACTIVITY_MIN
        if count < max(least, usual_most + 2.0) and not (day.night_door_opens and usual_most < 1.0):
            return []
        minute, _ = local_minute(now, tracker.timezone)
        doors = (
            text("routine_night_wandering.doors", count=day.night_door_opens) if day.night_door_opens
            else text("empty")
        )
        rooms: Text | list[Text] = (
            [text("routine.room", room=r) for r in sorted(day.night_rooms)] or text("routine.nowhere")
        )
        message = text(
            "routine_night_wandering", count=day.night_activity, rooms=rooms, doors=doors, time=clock(minute),
            most=round(usual_most), over=_over(usual),
        )
        evidence: dict[str, float | int | str | None] = {
            "night_movements": day.night_activity, "night_door_opens": day.night_door_opens,
            "usual_most": usual_most,
        }
        model.open_rules.add(rule)
        model.flagged_today.add("night_activity")
        return [self._finding(rule, home_id, "warning", message, now, evidence=evidence)]

    def _bathroom_check(self, home_id: str, model: HomeModel, now: int) -> list[Finding]:
        tracker = model.tracker
        day = tracker.day
        rule = "routine_more_bathroom_visits"
        if not self._ready(model) or day is None or "bathroom_day" in model.flagged_today:
            return []
        usual = model.usual("bathroom_day", day.weekend)
        night = model.usual("bathroom_night", day.weekend)
        if usual is None or night is None:
            return []
        bedtime, wake = model.usual("bedtime_min", day.weekend), model.usual("wake_min", day.weekend)
        awake_min = bedtime.median - wake.median if bedtime is not None and wake is not None else 900.0
        share = min(1.0, max(0.1, (now - day.wake_ms) / MINUTE_MS / max(awake_min, 60.0)))
        visits = day.bathroom_day + day.bathroom_night
        expected = max(usual.median * share + (night.median if day.bathroom_night else 0.0), 1.0)
        # On a day busy all over the house (visitors, a clean-up) she passes the bathroom more too: judge the
        # visits against how busy the rest of the house is (the bathroom's own movements would count the very
        # visits judged). More visits with an ordinary day elsewhere is what an infection looks like.
        elsewhere = day.motion_count - day.bathroom_motion
        busy = _busier_than_usual(elsewhere, model.usual("motion_count", day.weekend), share)
        judged = visits / busy
        # Where her days vary more than chance (most real homes), also more than on any learned day.
        if judged < usual.high + 3 or (usual.overdispersed and judged <= usual.highest + night.highest):
            return []
        if poisson_upper_tail(round(judged), expected) >= 10 * self.significance:
            return []
        minute, _ = local_minute(now, tracker.timezone)
        message = text(
            "routine_more_bathroom_visits.today", visits=visits, time=clock(minute),
            low=amount("bathroom_day", usual.low), high=amount("bathroom_day", usual.high), days=days_text(usual),
        )
        evidence: dict[str, float | int | str | None] = {
            "visits": visits, "usual_low": usual.low, "usual_high": usual.high, "days": usual.days,
            "expected_by_now": round(expected, 1),
        }
        model.flagged_today |= {"bathroom_day", "bathroom_night"}
        return [self._finding(rule, home_id, "warning", message, now, evidence=evidence)]

    def _kitchen_check(self, home_id: str, model: HomeModel, now: int) -> list[Finding]:
        tracker = model.tracker
        day = tracker.day
        if not self._ready(model) or day is None or tracker.asleep or "kitchen_visits" in model.flagged_today:
            return []
        if tracker.is_out(now) or day.out_ms >= 6 * HOUR_MS:
            return []  # out, or out for most of the day: her meals were elsewhere
        hour = int((now - day.wake_ms) // HOUR_MS)
        if hour < 6 or hour > 15 or hour == model.last_kitchen_check_hour:
            return []
        model.last_kitchen_check_hour = hour
        curves = [c for w, c in model.kitchen_curves if w == day.weekend]
        if len(curves) < 4:
            curves = [c for _, c in model.kitchen_curves]
        if len(curves) < 5:
            return []
        by_now = sorted(float(max((n for h, n in c.items() if h < hour), default=0)) for c in curves)
        today = max((n for h, n in day.kitchen_by_hour.items() if h < hour), default=0)
        median = quantile(by_now, 0.5)
        mean = sum(by_now) / len(by_now)
        overdispersed = sum((n - mean) ** 2 for n in by_now) / len(by_now) > max(mean, 1.0)
        # Kitchen counts are steadier than Poisson (meals come every day), so the tail test can be looser; where
        # her days vary more than a Poisson count would (most real homes), it must also be fewer than on every
        # learned day.
        if today > 0.5 * median or median - today < 4 or (overdispersed and today >= by_now[0]):
            return []
        if poisson_lower_tail(today, median) >= 10 * self.significance:
            return []
        minute, _ = local_minute(now, tracker.timezone)
        message = text(
            "routine_reduced_kitchen_use.today", today=today, time=clock(minute), low=round(quantile(by_now, 0.1)),
            high=round(quantile(by_now, 0.9)), days=len(curves),
        )
        evidence: dict[str, float | int | str | None] = {
            "kitchen_events": today, "usual_median": median, "days": len(curves), "hours_since_up": hour,
        }
        model.flagged_today |= {"kitchen_visits", "kettle_uses", "fridge_opens"}
        return [self._finding("routine_reduced_kitchen_use", home_id, "warning", message, now, evidence=evidence)]

    def _temperature(self, home_id: str, model: HomeModel, now: int, value: float, minute: int) -> list[Finding]:
        model.tracker.temperature(value)
        hour = minute // 60
        rule = "routine_cold_home"
        n = model.temperature_n[hour]
        mean, dev = model.temperature_mean[hour], model.temperature_dev[hour]
        limit = mean - max(2.5, 4.0 * dev)
        # Below 16 °C is where care teams start to worry (DESIGN.md); relative to usual so a cool house is not.
        cold = self._ready(model) and n >= 20 and value < min(16.0, limit)
        # Three readings in a row (half an hour or more): a cold snap at dawn before the heating is not it.
        model.cold_streak = model.cold_streak + 1 if cold else 0
        findings: list[Finding] = []
        if model.cold_streak >= 3 and rule not in model.open_rules:
            model.open_rules.add(rule)
            message = text("routine_cold_home", now_c=value, time=clock(minute), usual_c=mean, days=model.days_learned)
            evidence: dict[str, float | int | str | None] = {
                "temperature_c": value, "usual_c": round(mean, 2), "limit_c": round(limit, 2),
            }
            findings.append(self._finding(rule, home_id, "warning", message, now, evidence=evidence))
        elif rule in model.open_rules and value >= min(18.0, mean - 1.5):
            model.open_rules.discard(rule)
            findings.append(self._finding(rule, home_id, "info", text("routine_cold_home.cleared"), now, active=False))
        if not cold and rule not in model.open_rules:
            model.temperature_n[hour] = n + 1
            rate = max(1.0 / (n + 1), 1.0 / 80)
            model.temperature_mean[hour] = mean + rate * (value - mean)
            model.temperature_dev[hour] = dev + rate * (abs(value - mean) - dev)
        return findings

    # -- findings -----------------------------------------------------------------------------------------------

    @staticmethod
    def _finding(
        rule: str,
        home_id: str,
        severity: Severity,
        message: str | Text,
        at_ms: int,
        active: bool = True,
        evidence: Mapping[str, float | int | str | None] | None = None,
    ) -> Finding:
        words = message if isinstance(message, Text) else None
        return Finding(
            rule=rule, audience="care", subject=home_id, severity=severity,
            message=words.english if words is not None else str(message), at_ms=at_ms,
            active=active, evidence=dict(evidence or {}), text=words,
        )


def _concerning(feature: str, z: float) -> bool:
    """Whether a move of robust z in this feature is in a direction that worries a carer (``CONCERNING``)."""
    direction = CONCERNING.get(feature, 0)
    return direction == 0 or z * direction > 0


BUSY_SLACK = 0.5  # see _busier_than_usual
BUSY_MIN_MOVEMENTS = 20.0  # fewer usual movements a day than this (a home of contacts, few PIRs) says nothing


def _busier_than_usual(movements: int, usual: Usual | None, share: float) -> float:
    """How much busier than usual the day is so far, 1 to 3: her movements over her usual for this part of the day,
    less half a day's worth (walking to and from the bathroom more is itself a little busier, and not a reason to
    discount the visits); 1 where movements are not usually counted."""
    if usual is None or usual.median < BUSY_MIN_MOVEMENTS:
        return 1.0
    return max(1.0, min(3.0, movements / max(usual.median * share, 1.0) - BUSY_SLACK))
