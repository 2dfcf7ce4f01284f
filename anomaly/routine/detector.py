"""``RoutineDetector``: the routine detector the evaluation drives. It keeps every home's model, reads each home
reading as her activity or not, closes her routine day when she gets up, and hands ticks, activity, climate readings
and closed days to the checks.

How a reading becomes her activity (the rest is the checks'): a device repeating its state is alive, not proof
anyone moved (``rules.homesense``); a PIR's "no motion" dates her last movement; while she is out, one device alone
is not her. Getting up and bedtime close and open her routine day (``anomaly.homeday``); a closed day goes to the
end-of-day checks and is then learned into her baselines, unless a check flagged it. The checks are called in a
fixed order, the order in which their findings always came. This module must not talk to MQTT, InfluxDB or the
alert store.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from anomaly.baseline import Usual
from anomaly.explain import clock, feature_text
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
from anomaly.routine.bathroom import BathroomCheck
from anomaly.routine.bathroom_trend import BathroomTrendCheck
from anomaly.routine.check import OnActivity, OnDayClosed, OnTemperature, OnTick, Tuning
from anomaly.routine.daily import DailyCheck
from anomaly.routine.decline import DeclineCheck
from anomaly.routine.kitchen import KitchenCheck
from anomaly.routine.late_wake import LateWakeCheck
from anomaly.routine.model import HomeModel
from anomaly.routine.night import NightCheck
from anomaly.routine.stillness import StillnessCheck
from anomaly.routine.temperature import TemperatureCheck
from anomaly.routine.trend import TrendCheck
from devices.readings import Reading
from devices.registry import DeviceSpec, Registry
from placesense.basics.clock import Clock
from placesense.basics.findings import Finding, care_finding
from placesense.basics.texts import renderings, text
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS
from rules.homesense import metric_state
from rules.presence import Seen, SharedPresence

# Without a bed sensor bedtime is a guess from an hour of quiet in the evening (a chair, a book, out unseen): what
# she does after it and before this is still her evening, not night-time activity.
GUESSED_NIGHT_FROM_MIN = 23 * 60
QUIET_HOUR_SHARE = 0.5  # an hour with activity on fewer days than this is one she is usually asleep in
QUIET_HOURS_AFTER_DAYS = 7  # until then every night hour counts
LATEST_WAKE_MIN = 16 * 60  # activity after a quiet afternoon or evening is not getting up


T = TypeVar("T")


def _usual_range(usual: Usual | None) -> dict[str, float] | None:
    if usual is None:
        return None
    return {"low": round(usual.low, 1), "median": round(usual.median, 1), "high": round(usual.high, 1)}



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
    DERIVED = frozenset({"_pir_rooms_by_home", "_shared"})

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
        self._shared: SharedPresence | None = None  # the care rules' presence, when both run (``share_presence``)
        self._pir_rooms_by_home: dict[str, frozenset[str]] = {}  # from the registry: not learned state
        # Safe from several threads: tools and tests call it directly, beside the evaluation process's one loop.
        self._lock = threading.RLock()
        tuning = Tuning(warm_up_days, significance, bathroom_rate_ratio, bathroom_threshold, bathroom_quiet_days)
        self._night, self._bathroom = NightCheck(tuning), BathroomCheck(tuning)
        self._daily = DailyCheck([TrendCheck(), BathroomTrendCheck(tuning)])
        self._decline: OnDayClosed = DeclineCheck(tuning)
        self._temperature: OnTemperature = TemperatureCheck(tuning)
        self._on_tick: list[OnTick] = [LateWakeCheck(tuning), StillnessCheck(tuning), KitchenCheck(tuning)]
        self._on_activity: list[OnActivity] = [self._night, self._bathroom]

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
        return self.advance(reading) + self.take(reading)

    @_locked
    def advance(self, reading: Reading) -> list[Finding]:
        """``process``'s first half: the home's time-based state up to the reading's time, before it is taken (with
        a shared presence, the rules observe it in between: these see the home as it was until then)."""
        model = self._home(reading.subject) if reading.domain == "home" else None
        return [] if model is None else self._advance(reading.subject, model, reading.ts_ms)

    @_locked
    def take(self, reading: Reading) -> list[Finding]:
        """``process``'s second half: the reading itself."""
        model = self._home(reading.subject) if reading.domain == "home" else None
        if model is None:
            return []
        device = self.registry.devices.get(reading.device_id)
        tracker = model.tracker
        ts = reading.ts_ms
        findings: list[Finding] = []
        minute, _ = local_minute(ts, tracker.timezone)
        metrics = reading.metrics
        if "temperature_c" in metrics and device is not None and device.kind == "climate":
            findings += self._temperature.on_temperature(reading.subject, model, ts, metrics["temperature_c"], minute)
        if device is None:
            return findings
        state = metric_state(device, metrics, KETTLE_ON_W)
        if state is None:
            return findings
        observed, seen = self._shared.seen(reading) if self._shared is not None else (False, None)
        if not observed:
            seen = tracker.presence.observe(device, state, ts)
        if seen is None:
            return findings  # a check-in repeating the state: the device is alive, nobody moved
        return findings + self._changed(reading.subject, model, device, seen, minute)

    def share_presence(self, shared: SharedPresence | None) -> None:
        """Read each home's presence from the care rules (``rules.presence.SharedPresence``): one presence per home,
        which the rules observe and this reads. Call again whenever either side's homes were rebuilt or restored."""
        with self._lock:
            self._shared = shared
            if shared is None:
                return
            for home_id, model in self._homes.items():
                presence = shared.share(home_id, model.tracker.presence)
                if presence is not None:
                    model.tracker.presence = presence

    def _changed(self, home_id: str, model: HomeModel, device: DeviceSpec, seen: Seen, minute: int) -> list[Finding]:
        tracker = model.tracker
        kind, room, change, ts = device.kind, device.room, seen.change, seen.at_ms
        if kind == "motion" and change.what == "still":
            # The PIR saw movement until a minute or two ago (``at_ms``), unless it was stuck "on" for far longer.
            if seen.hers:
                tracker.activity(seen)
            return []
        if kind == "bed":
            tracker.has_bed_sensor = True
            if seen.hers:
                tracker.bed(seen, change.what == "in_bed", minute)
            return []
        if not change.active:
            return []  # an appliance switching itself off
        if kind == "front_door":
            tracker.front_door(seen, change.what == "opened")
            return self._night.on_activity(home_id, model, ts)
        if not seen.hers:
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
            tracker.seen_in(seen, room, minute)
        else:
            # The room's PIR says where she is and counts her visits; a cupboard or the fridge there is a sign of
            # life (and kitchen use), not another movement.
            tracker.activity(seen)
        if kind == "fridge_door" and change.what == "opened":
            tracker.fridge_opened(ts)
        elif kind == "kettle" and change.what == "on":
            tracker.kettle_on_now(ts)
        for check in self._on_activity:
            findings += check.on_activity(home_id, model, ts)
        return findings

    @_locked
    def tick(self, now_ms: int | None = None) -> list[Finding]:
        """Time-based checks for every home (not up yet, no movement, little kitchen use)."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        findings: list[Finding] = []
        for home_id, model in self._homes.items():
            findings += self._advance(home_id, model, now)
            for check in self._on_tick:
                findings += check.on_tick(home_id, model, now)
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
        self.share_presence(self._shared)  # the saved trackers' presence is the rules' again

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
            shared = self._shared.share(home_id, model.tracker.presence) if self._shared is not None else None
            if shared is not None:
                model.tracker.presence = shared
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
                findings.append(care_finding(rule, home_id, "info", "Up and about again.", now, active=False))
        if ended is not None:
            findings += self._close_day(home_id, model, ended, now)
        model.flagged_today = set()
        return findings

    def _close_day(self, home_id: str, model: HomeModel, day: HomeDay, now: int) -> list[Finding]:
        features = day.features()
        findings: list[Finding] = []
        flagged: set[str] = set()
        if self._ready(model):
            findings, flagged = self._daily.check(home_id, model, day, features, now)
        findings += self._decline.on_day_closed(home_id, model, day, features, now)
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
