"""Home care rules: the routine-change alerts a care team acts on, each with its evidence in plain English.

Rules (all in the home's own time zone; defaults in ``rules.config``):
- ``not_up``: no activity outside the bedroom and bathroom by the wake deadline (09:30); clears at first activity.
- ``inactivity``: no movement anywhere for 3 h during waking hours while the resident is usually active then;
  not while they are in bed or seem to be out (front door used after the last movement).
- ``night_door``: the front door opened during the night window (23:00–06:00).
- ``bathroom_stay``: in the bathroom (last movement there, none elsewhere) for over 60 minutes.
- ``bathroom_visits``: more night-time bathroom visits than this home's own recent nights.
- ``cold_home``: a room below 16 °C for 2 hours (counted 07:00–23:00); clears once every room is above 17 °C.
- ``no_kitchen_use``: no kettle or fridge use by 11:00; clears at the first use.
- ``help_button``: the help button was pressed (critical).

Absence-of-events rules run from timers, fired by the engine at the exact due time, so event-clock replays
give the same alerts every run. Findings name the home only by its pseudonymous id. This module must not
touch alerts, storage or MQTT.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from devices.readings import Domain, Reading
from devices.registry import DeviceSpec, Registry
from placesense.memory import keep_last
from rules.config import (
    BathroomStayRule,
    BathroomVisitsRule,
    ColdHomeRule,
    HelpButtonRule,
    InactivityRule,
    KitchenRule,
    NightDoorRule,
    SectionLookup,
    WakeRule,
    Window,
)
from rules.findings import Finding, Severity
from rules.localtime import (
    HOUR_MS,
    MINUTE_MS,
    at_local,
    day_of,
    duration,
    hm,
    hm_of_minutes,
    local,
    minutes_of_day,
    next_local,
    zone,
)
from rules.timers import Timers

NOT_UP_ROOMS = frozenset({"bedroom", "bathroom"})
# The front door used within this long before the last movement means the resident probably went out.
LEFT_HOME_MS = 2 * MINUTE_MS

Evidence = dict[str, float | int | str | None]
HISTORY_KEPT = 60  # days (or nights) of each learned history a home keeps


def _room(name: str | None) -> str:
    return (name or "home").replace("_", " ")


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


def counted_until(since_ms: int, minutes: float, window: Window, tz: ZoneInfo) -> int:
    """When ``minutes`` of time inside the daily ``window`` will have passed since ``since_ms``."""
    remaining = minutes * MINUTE_MS
    day = local(since_ms, tz).date() - timedelta(days=1)
    for offset in range(400):
        start = at_local(day + timedelta(days=offset), window.start, tz)
        end_day = day + timedelta(days=offset + (1 if window.end <= window.start else 0))
        end = at_local(end_day, window.end, tz)
        begin = max(start, since_ms)
        if end <= begin:
            continue
        if end - begin >= remaining:
            return int(begin + remaining)
        remaining -= end - begin
    raise AssertionError("unreachable: a daily window adds time every day")


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(slots=True)
class _Home:
    tz: ZoneInfo
    last_activity_ms: int | None = None
    last_activity_room: str | None = None
    last_front_door_ms: int | None = None
    door_open: dict[str, bool] = field(default_factory=dict)
    in_bed: bool = False
    # local date -> bit mask of the hours of that day with any activity (for "usually active at this time")
    active_hours: dict[date, int] = field(default_factory=dict)
    # wake-up
    up_day: date | None = None
    wake_minutes: list[tuple[date, int]] = field(default_factory=list)  # oldest first, as all the histories
    not_up_active: bool = False
    # kitchen
    kitchen_day: date | None = None
    kitchen_minutes: list[tuple[date, int]] = field(default_factory=list)
    no_kitchen_active: bool = False
    # inactivity
    inactivity_active: bool = False
    # bathroom
    bath_enter_ms: int | None = None
    bath_last_ms: int | None = None
    bath_stay_active: bool = False
    # bathroom visits per period (a day and the night after it), keyed by the period's date: (night, total)
    visits: dict[date, list[int]] = field(default_factory=dict)
    visit_history: list[tuple[int, int]] = field(default_factory=list)
    # the totals of the periods before this one, newest last: a rise that lasts several days adds up
    recent_totals: list[int] = field(default_factory=list)  # at most two
    visits_active: bool = False
    # kitchen uses (kettle boils, fridge openings) per day
    kitchen_uses: dict[date, int] = field(default_factory=dict)
    kitchen_history: list[int] = field(default_factory=list)
    reduced_kitchen_active: bool = False
    kettle_on: bool = False
    # night door
    night_door_openings: dict[date, int] = field(default_factory=dict)
    # cold home
    below_since: dict[str, int] = field(default_factory=dict)
    temperatures: dict[str, tuple[int, float]] = field(default_factory=dict)
    cold_devices: set[str] = field(default_factory=set)


class HomeRules:
    """Routine and safety rules for every home in the registry."""

    domains: frozenset[Domain] = frozenset({"home"})

    def __init__(self, registry: Registry, lookup: SectionLookup) -> None:
        self._registry = registry
        self._lookup = lookup
        self._homes: dict[str, _Home] = {
            home_id: _Home(tz=zone(home.timezone)) for home_id, home in registry.homes.items()
        }
        self._timers: Timers[tuple[str, str]] = Timers()

    # -- saved state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Every home's tracked day and learned history, and the deadlines set (``placesense.evaluation_state``)."""
        return {"homes": self._homes, "timers": self._timers.deadlines()}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back what ``state`` gave, for the homes still in the registry (call before ``start``)."""
        for home_id, home in state["homes"].items():
            if home_id in self._homes:
                home.tz = self._homes[home_id].tz  # the registry's zone wins, should it have changed
                self._homes[home_id] = home
        self._timers.restore([(key, due) for key, due in state["timers"] if key[0] in self._homes])

    def forget(self, subject: str) -> None:
        """Drop everything kept about one home, to save the state without it (erasure, with serve stopped)."""
        self._homes.pop(subject, None)
        self._timers.cancel_where(lambda key: key[0] != subject)

    # -- timers --------------------------------------------------------------------------------------

    def start(self, now_ms: int) -> None:
        scheduled = {key[0] for key, _ in self._timers.deadlines()}
        for home_id, home in self._homes.items():
            if home_id in scheduled:
                continue  # restored from a saved state: its deadlines stand, and fire late if they passed
            kitchen = self._lookup.get(KitchenRule, home_id)
            visits = self._lookup.get(BathroomVisitsRule, home_id)
            self._schedule_wake(home_id, home, now_ms)
            self._timers.set((home_id, "kitchen"), next_local(now_ms, kitchen.deadline, home.tz))
            self._timers.set((home_id, "kitchen_day"), next_local(now_ms, kitchen.day_starts, home.tz))
            self._timers.set((home_id, "visits"), next_local(now_ms, visits.night.end, home.tz))
            self._schedule_inactivity(home_id, home, now_ms)

    def on_time(self, now_ms: int) -> list[Finding]:
        findings: list[Finding] = []
        # A timer may set another one that is already due (a re-check an hour on after a long gap): loop.
        while due := self._timers.pop_due(now_ms):
            findings += self._fire(due)
        return findings

    def _fire(self, due: list[tuple[int, tuple[str, str]]]) -> list[Finding]:
        findings: list[Finding] = []
        for due_ms, (home_id, what) in due:
            home = self._homes[home_id]
            if what == "wake":
                findings += self._wake_deadline(home_id, home, due_ms)
            elif what == "kitchen":
                findings += self._kitchen_deadline(home_id, home, due_ms)
            elif what == "kitchen_day":
                findings += self._kitchen_day_over(home_id, home, due_ms)
            elif what == "visits":
                findings += self._night_over(home_id, home, due_ms)
            elif what == "inactivity":
                findings += self._inactivity_due(home_id, home, due_ms)
            elif what == "bath_stay":
                findings += self._bath_stay_due(home_id, home, due_ms)
            elif what.startswith("cold:"):
                findings += self._cold_due(home_id, home, what.removeprefix("cold:"), due_ms)
        return findings

    # -- readings ------------------------------------------------------------------------------------

    def on_reading(self, reading: Reading, device: DeviceSpec) -> list[Finding]:
        home = self._homes.get(reading.subject)
        if home is None:
            return []
        metrics = reading.metrics
        ts = reading.ts_ms
        findings: list[Finding] = []
        if device.kind == "climate" and "temperature_c" in metrics:
            findings += self._temperature(reading, device, home, metrics["temperature_c"])
        if device.kind == "help_button" and metrics.get("help_pressed") == 1:
            findings += self._help(reading, device, home)

        room = device.room
        active = False
        kitchen_use = False
        if device.kind == "motion" and metrics.get("motion") == 1:
            active = True
        elif device.kind in ("front_door", "fridge_door", "door") and "door_open" in metrics:
            opened = metrics["door_open"] == 1
            was_open = home.door_open.get(device.id, False)
            home.door_open[device.id] = opened
            if opened != was_open:  # a check-in repeating the same state is not a new event
                active = True
                if device.kind == "front_door":
                    home.last_front_door_ms = ts
                    if opened:
                        findings += self._night_door(reading, home)
                elif device.kind == "fridge_door" and opened:
                    kitchen_use = True
        elif device.kind == "bed" and "occupied" in metrics:
            home.in_bed = metrics["occupied"] == 1
            if home.in_bed:
                # Getting into bed ends a bathroom stay, but lying still is not activity for the day's timers.
                findings += self._leave_bathroom(reading.subject, home, ts, "the bedroom")
        elif device.kind == "chair" and "occupied" in metrics:
            active = True
        elif device.kind in ("kettle", "plug") and "power_w" in metrics:
            cfg = self._lookup.get(KitchenRule, reading.subject)
            switched_on = metrics["power_w"] >= cfg.kettle_on_w
            if device.kind == "kettle" and switched_on and not home.kettle_on:
                active = True
                kitchen_use = True
            if device.kind == "kettle":
                home.kettle_on = switched_on
        if active:
            findings += self._activity(reading, device, home, room or "other")
        if kitchen_use:
            findings += self._kitchen_used(reading, home, device)
        return findings

    def _activity(self, reading: Reading, device: DeviceSpec, home: _Home, room: str) -> list[Finding]:
        home_id, ts = reading.subject, reading.ts_ms
        findings: list[Finding] = []
        moment = local(ts, home.tz)
        home.active_hours[moment.date()] = home.active_hours.get(moment.date(), 0) | (1 << moment.hour)
        if len(home.active_hours) > 70:
            for old in sorted(home.active_hours)[:-62]:
                del home.active_hours[old]
        gap_start = home.last_activity_ms
        home.last_activity_ms, home.last_activity_room = ts, room

        if home.inactivity_active and gap_start is not None:
            home.inactivity_active = False
            cfg = self._lookup.get(InactivityRule, home_id)
            message = (
                f"Movement again: {_room(room)} at {hm(ts, home.tz)} after "
                f"{duration(ts - gap_start)} without any movement."
            )
            findings.append(
                self._finding(
                    "inactivity",
                    home_id,
                    cfg.severity,
                    message,
                    ts,
                    False,
                    {"gap_minutes": round((ts - gap_start) / MINUTE_MS)},
                    device,
                )
            )
        self._schedule_inactivity(home_id, home, ts)

        if room == "bathroom":
            findings += self._enter_bathroom(home_id, home, ts)
        else:
            findings += self._leave_bathroom(home_id, home, ts, f"the {_room(room)}")

        if room not in NOT_UP_ROOMS or device.kind == "front_door":
            findings += self._up(home_id, home, ts, room, device)
        return findings

    # -- wake-up -------------------------------------------------------------------------------------

    def _usual_wake(self, home: _Home, cfg: WakeRule, before: date) -> tuple[str, str] | None:
        recent = [m for d, m in home.wake_minutes if before - timedelta(days=cfg.history_days) <= d < before]
        if len(recent) < 3:
            return None
        return hm_of_minutes(_quantile(recent, 0.1)), hm_of_minutes(_quantile(recent, 0.9))

    def _up(self, home_id: str, home: _Home, ts: int, room: str, device: DeviceSpec) -> list[Finding]:
        cfg = self._lookup.get(WakeRule, home_id)
        today = day_of(ts, cfg.day_starts, home.tz)
        if home.up_day == today:
            return []
        home.up_day = today
        first = minutes_of_day(ts, home.tz)
        usual = self._usual_wake(home, cfg, today)
        keep_last(home.wake_minutes, (today, first), HISTORY_KEPT)
        if not home.not_up_active:
            return []
        home.not_up_active = False
        usual_words = f"usually up by {usual[1]}" if usual else "no usual time learned yet"
        message = f"First activity {hm(ts, home.tz)} ({_room(room)}); {usual_words}."
        return [
            self._finding(
                "not_up", home_id, cfg.severity, message, ts, False, {"first_activity_minutes": first}, device
            )
        ]

    def _deadline_for(self, home: _Home, cfg: WakeRule, day: date) -> time:
        """The configured deadline until the usual wake-up is learned; then the usual latest plus a margin."""
        recent = [m for d, m in home.wake_minutes if day - timedelta(days=cfg.history_days) <= d < day]
        if not cfg.learn or len(recent) < cfg.min_history_days:
            return cfg.deadline
        minutes = min(
            _quantile(recent, 0.9) + cfg.margin_minutes,
            cfg.latest_deadline.hour * 60 + cfg.latest_deadline.minute,
        )
        whole = round(minutes)
        return time(whole // 60 % 24, whole % 60)

    def _schedule_wake(self, home_id: str, home: _Home, after_ms: int) -> None:
        cfg = self._lookup.get(WakeRule, home_id)
        day = day_of(after_ms, cfg.day_starts, home.tz)
        for offset in range(3):
            candidate = day + timedelta(days=offset)
            due = at_local(candidate, self._deadline_for(home, cfg, candidate), home.tz)
            if due > after_ms:
                self._timers.set((home_id, "wake"), due)
                return

    def _wake_deadline(self, home_id: str, home: _Home, due_ms: int) -> list[Finding]:
        cfg = self._lookup.get(WakeRule, home_id)
        self._schedule_wake(home_id, home, due_ms)
        today = day_of(due_ms, cfg.day_starts, home.tz)
        if not cfg.enabled or home.up_day == today:
            return []
        home.not_up_active = True
        usual = self._usual_wake(home, cfg, today)
        usual_words = (
            f"usually up {usual[0]}–{usual[1]} over the last {cfg.history_days} days"
            if usual
            else ("no usual time learned yet")
        )
        last = ""
        if home.last_activity_ms is not None and due_ms - home.last_activity_ms < 24 * HOUR_MS:
            last = f" Last movement: {_room(home.last_activity_room)} at {hm(home.last_activity_ms, home.tz)}."
        message = (
            f"Not up yet at {hm(due_ms, home.tz)}: no activity outside the bedroom since "
            f"{cfg.day_starts:%H:%M}; {usual_words}.{last}"
        )
        evidence: Evidence = {
            "deadline": hm(due_ms, home.tz),
            "usual_from": usual[0] if usual else None,
            "usual_to": usual[1] if usual else None,
        }
        return [self._finding("not_up", home_id, cfg.severity, message, due_ms, True, evidence)]

    # -- kitchen -------------------------------------------------------------------------------------

    def _kitchen_used(self, reading: Reading, home: _Home, device: DeviceSpec) -> list[Finding]:
        cfg = self._lookup.get(KitchenRule, reading.subject)
        today = day_of(reading.ts_ms, cfg.day_starts, home.tz)
        home.kitchen_uses[today] = home.kitchen_uses.get(today, 0) + 1
        if home.kitchen_day == today:
            return []
        home.kitchen_day = today
        keep_last(home.kitchen_minutes, (today, minutes_of_day(reading.ts_ms, home.tz)), HISTORY_KEPT)
        if not home.no_kitchen_active:
            return []
        home.no_kitchen_active = False
        what = "Kettle" if device.kind == "kettle" else "Fridge"
        message = f"{what} used at {hm(reading.ts_ms, home.tz)}, the first kitchen use today."
        return [
            self._finding("no_kitchen_use", reading.subject, cfg.severity, message, reading.ts_ms, False, {}, device)
        ]

    def _kitchen_deadline(self, home_id: str, home: _Home, due_ms: int) -> list[Finding]:
        cfg = self._lookup.get(KitchenRule, home_id)
        self._timers.set((home_id, "kitchen"), next_local(due_ms, cfg.deadline, home.tz))
        today = day_of(due_ms, cfg.day_starts, home.tz)
        if not cfg.enabled or home.kitchen_day == today:
            return []
        home.no_kitchen_active = True
        recent = [m for d, m in home.kitchen_minutes if today - timedelta(days=14) <= d < today]
        usual = f"; usually first used around {hm_of_minutes(statistics.median(recent))}" if len(recent) >= 3 else ""
        message = f"No kettle or fridge use yet today by {cfg.deadline:%H:%M}{usual}."
        return [
            self._finding(
                "no_kitchen_use", home_id, cfg.severity, message, due_ms, True, {"deadline": f"{cfg.deadline:%H:%M}"}
            )
        ]

    def _kitchen_day_over(self, home_id: str, home: _Home, due_ms: int) -> list[Finding]:
        """At the start of a day: was yesterday's kitchen use far below this home's usual?"""
        cfg = self._lookup.get(KitchenRule, home_id)
        self._timers.set((home_id, "kitchen_day"), next_local(due_ms, cfg.day_starts, home.tz))
        day = day_of(due_ms - 1, cfg.day_starts, home.tz)
        uses = home.kitchen_uses.pop(day, 0)
        for old in [d for d in home.kitchen_uses if d < day]:
            del home.kitchen_uses[old]
        history = list(home.kitchen_history)[-cfg.history_days :]
        if len(history) < cfg.min_history_days:
            keep_last(home.kitchen_history, uses, HISTORY_KEPT)
            return []
        usual = statistics.fmean(history)
        low = uses <= cfg.max_share_of_usual * usual and poisson_cdf(uses, usual) < cfg.improbability
        evidence: Evidence = {"uses": uses, "usual_mean": round(usual, 1), "days": len(history)}
        if low and cfg.enabled:
            home.reduced_kitchen_active = True
            message = (
                f"Kitchen hardly used yesterday: {uses} kettle or fridge uses; usually about {usual:.0f} a day "
                f"over the last {len(history)} days."
            )
            return [self._finding("reduced_kitchen_use", home_id, cfg.severity, message, due_ms, True, evidence)]
        keep_last(home.kitchen_history, uses, HISTORY_KEPT)
        if home.reduced_kitchen_active:
            home.reduced_kitchen_active = False
            message = f"Kitchen used {uses} times yesterday, back to about the usual {usual:.0f}."
            return [self._finding("reduced_kitchen_use", home_id, cfg.severity, message, due_ms, False, evidence)]
        return []

    # -- inactivity ----------------------------------------------------------------------------------

    def _schedule_inactivity(self, home_id: str, home: _Home, since_ms: int) -> None:
        cfg = self._lookup.get(InactivityRule, home_id)
        if not cfg.enabled:
            return
        day = local(since_ms, home.tz).date()
        for offset in range(3):
            start = at_local(day + timedelta(days=offset), cfg.waking.start, home.tz)
            end = at_local(day + timedelta(days=offset), cfg.waking.end, home.tz)
            if end <= start:  # a waking window cannot span midnight; treat it as ending at midnight
                end = at_local(day + timedelta(days=offset + 1), time(0, 0), home.tz)
            due = max(since_ms, start) + int(cfg.hours * HOUR_MS)
            if due <= end:
                self._timers.set((home_id, "inactivity"), due)
                return

    def _inactivity_due(self, home_id: str, home: _Home, due_ms: int) -> list[Finding]:
        cfg = self._lookup.get(InactivityRule, home_id)
        last = home.last_activity_ms
        if last is None or home.in_bed or home.inactivity_active:
            return []
        if home.last_front_door_ms is not None and home.last_front_door_ms >= last - LEFT_HOME_MS:
            return []  # probably out: the front door was the last thing that happened
        gap_from = max(last, due_ms - int(cfg.hours * HOUR_MS))
        share, days = self._usually_active(home, cfg, gap_from, due_ms)
        if days >= cfg.min_history_days and share < cfg.usually_active_share:
            # A quiet hour for this resident: look again an hour later, when they may usually be about.
            end = at_local(local(due_ms, home.tz).date(), cfg.waking.end, home.tz)
            if due_ms + HOUR_MS <= end:
                self._timers.set((home_id, "inactivity"), due_ms + HOUR_MS)
            return []
        home.inactivity_active = True
        usual = (
            f"usually active at this time ({round(share * days)} of the last {days} days)"
            if days >= cfg.min_history_days
            else "no usual pattern learned yet"
        )
        message = (
            f"No movement anywhere since {hm(last, home.tz)} ({duration(due_ms - last)}), "
            f"last seen in the {_room(home.last_activity_room)}; {usual}."
        )
        evidence: Evidence = {
            "last_movement_ms": last,
            "gap_minutes": round((due_ms - last) / MINUTE_MS),
            "usually_active_share": round(share, 2),
        }
        return [self._finding("inactivity", home_id, cfg.severity, message, due_ms, True, evidence)]

    def _usually_active(self, home: _Home, cfg: InactivityRule, from_ms: int, to_ms: int) -> tuple[float, int]:
        """Share of recent days with activity in the hours of [from, to), and how many days that is over."""
        today = local(to_ms, home.tz).date()
        hours = 0
        cursor = from_ms
        while cursor < to_ms:
            hours |= 1 << local(cursor, home.tz).hour
            cursor += HOUR_MS
        days = [d for d in home.active_hours if today - timedelta(days=cfg.history_days) <= d < today]
        if not days:
            return 0.0, 0
        active = sum(1 for d in days if home.active_hours[d] & hours)
        return active / len(days), len(days)

    # -- bathroom ------------------------------------------------------------------------------------

    def _enter_bathroom(self, home_id: str, home: _Home, ts: int) -> list[Finding]:
        visits = self._lookup.get(BathroomVisitsRule, home_id)
        new_visit = home.bath_enter_ms is None or (
            home.bath_last_ms is not None and ts - home.bath_last_ms > visits.separate_minutes * MINUTE_MS
        )
        if home.bath_enter_ms is None:
            home.bath_enter_ms = ts
            stay = self._lookup.get(BathroomStayRule, home_id)
            if stay.enabled:
                self._timers.set((home_id, "bath_stay"), ts + int(stay.minutes * MINUTE_MS))
        home.bath_last_ms = ts
        if new_visit:
            period = home.visits.setdefault(day_of(ts, visits.night.end, home.tz), [0, 0])
            period[1] += 1
            if visits.night.contains(local(ts, home.tz).time()):
                period[0] += 1
        return []

    def _leave_bathroom(self, home_id: str, home: _Home, ts: int, where: str) -> list[Finding]:
        entered = home.bath_enter_ms
        if entered is None:
            return []
        home.bath_enter_ms = None
        self._timers.cancel((home_id, "bath_stay"))
        if not home.bath_stay_active:
            return []
        home.bath_stay_active = False
        cfg = self._lookup.get(BathroomStayRule, home_id)
        message = f"Left the bathroom: movement in {where} at {hm(ts, home.tz)}, after {duration(ts - entered)}."
        return [
            self._finding(
                "bathroom_stay",
                home_id,
                cfg.severity,
                message,
                ts,
                False,
                {"minutes": round((ts - entered) / MINUTE_MS)},
            )
        ]

    def _bath_stay_due(self, home_id: str, home: _Home, due_ms: int) -> list[Finding]:
        cfg = self._lookup.get(BathroomStayRule, home_id)
        entered = home.bath_enter_ms
        if entered is None:
            return []
        home.bath_stay_active = True
        last = home.bath_last_ms or entered
        message = (
            f"In the bathroom since {hm(entered, home.tz)} ({duration(due_ms - entered)}) with no movement "
            f"anywhere else; last movement in the bathroom at {hm(last, home.tz)}. Possible fall or illness."
        )
        return [
            self._finding(
                "bathroom_stay",
                home_id,
                cfg.severity,
                message,
                due_ms,
                True,
                {"entered_ms": entered, "minutes": round((due_ms - entered) / MINUTE_MS)},
            )
        ]

    def _night_over(self, home_id: str, home: _Home, due_ms: int) -> list[Finding]:
        """At the end of the night: were there unusually many bathroom visits, at night or over the day?"""
        cfg = self._lookup.get(BathroomVisitsRule, home_id)
        self._timers.set((home_id, "visits"), next_local(due_ms, cfg.night.end, home.tz))
        period = day_of(due_ms - 1, cfg.night.end, home.tz)
        night, total = home.visits.pop(period, [0, 0])
        for old in [d for d in home.visits if d < period]:
            del home.visits[old]
        for old in [d for d in home.night_door_openings if d < period - timedelta(days=2)]:
            del home.night_door_openings[old]
        previous = list(home.recent_totals)
        keep_last(home.recent_totals, total, 2)
        history = list(home.visit_history)[-cfg.history_nights :]
        if len(history) < cfg.min_history_nights:
            keep_last(home.visit_history, (night, total), HISTORY_KEPT)
            return []
        usual_night = max(0.25, statistics.fmean(n for n, _ in history))
        usual_total = max(1.0, statistics.fmean(t for _, t in history))

        def unusual(count: int, mean: float, improbability: float = cfg.improbability) -> bool:
            return count >= mean + cfg.min_extra_visits and poisson_sf(count, mean) < improbability

        # An infection raises the count for days; one day may not be improbable on its own, but two or three
        # in a row are. Three days count only when each of them is above the usual, so one busy day does
        # not hold the alert open for three. The longest window that is unusual is the one reported.
        span_days, span_total = 1, total
        for days in (3, 2):
            window = [*previous[-(days - 1):], total]
            sustained = days == 2 or all(count >= usual_total + 1 for count in window)
            # Requiring every day of three to be up already rules out most chance; the sum may then be a
            # little less improbable than a single day must be.
            limit = cfg.improbability * (5 if days == 3 else 1)
            if len(window) == days and sustained and unusual(sum(window), days * usual_total, limit):
                span_days, span_total = days, sum(window)
                break
        more = unusual(night, usual_night) or unusual(total, usual_total) or span_days > 1
        evidence: Evidence = {
            "night_visits": night,
            "visits_24h": total,
            "usual_night": round(usual_night, 1),
            "usual_24h": round(usual_total, 1),
            "nights": len(history),
        }
        if more and cfg.enabled:
            home.visits_active = True
            over = f" ({span_total} over {'two' if span_days == 2 else 'three'} days)" if span_days > 1 else ""
            message = (
                f"More bathroom visits than usual: {night} last night ({cfg.night.label()}) and {total} in the last "
                f"24 hours{over}; usually about {usual_night:.0f} at night and {usual_total:.0f} a day over the "
                f"last {len(history)} days. More visits can be an early sign of a urinary infection."
            )
            return [self._finding("bathroom_visits", home_id, cfg.severity, message, due_ms, True, evidence)]
        keep_last(home.visit_history, (night, total), HISTORY_KEPT)  # an unusual day is not learned as normal
        if home.visits_active:
            home.visits_active = False
            message = (
                f"Bathroom visits back to usual: {night} last night and {total} in the last 24 hours "
                f"(usually about {usual_night:.0f} and {usual_total:.0f})."
            )
            return [self._finding("bathroom_visits", home_id, cfg.severity, message, due_ms, False, evidence)]
        return []

    # -- night door, help, cold ----------------------------------------------------------------------

    def _night_door(self, reading: Reading, home: _Home) -> list[Finding]:
        cfg = self._lookup.get(NightDoorRule, reading.subject)
        if not cfg.enabled or not cfg.night.contains(local(reading.ts_ms, home.tz).time()):
            return []
        night = day_of(reading.ts_ms, cfg.night.end, home.tz)
        home.night_door_openings[night] = openings = home.night_door_openings.get(night, 0) + 1
        times = "once" if openings == 1 else f"{openings} times"
        message = (
            f"Front door opened at {hm(reading.ts_ms, home.tz)}, during the night ({cfg.night.label()}); "
            f"opened {times} tonight."
        )
        return [
            self._finding(
                "night_door",
                reading.subject,
                cfg.severity,
                message,
                reading.ts_ms,
                True,
                {"openings_tonight": openings},
                self._registry.devices.get(reading.device_id),
            )
        ]

    def _help(self, reading: Reading, device: DeviceSpec, home: _Home) -> list[Finding]:
        cfg = self._lookup.get(HelpButtonRule, reading.subject)
        if not cfg.enabled:
            return []
        message = f"Help button pressed at {hm(reading.ts_ms, home.tz)} ({_room(device.room)}). Call or visit now."
        finding = self._finding("help_button", reading.subject, cfg.severity, message, reading.ts_ms, True, {}, device)
        return [replace(finding, new_event=True)]  # each press counts, even after someone acknowledged the last

    def _temperature(self, reading: Reading, device: DeviceSpec, home: _Home, celsius: float) -> list[Finding]:
        cfg = self._lookup.get(ColdHomeRule, reading.subject, device)
        home.temperatures[device.id] = (reading.ts_ms, celsius)
        key = (reading.subject, f"cold:{device.id}")
        if celsius < cfg.below_c:
            if device.id not in home.below_since:
                home.below_since[device.id] = reading.ts_ms
                if cfg.enabled:
                    self._timers.set(key, counted_until(reading.ts_ms, cfg.for_minutes, cfg.counted, home.tz))
        elif device.id not in home.cold_devices or celsius >= cfg.clear_above_c:
            # Onset needs two hours strictly below; once alerting, only a clear rise above 17 °C ends it,
            # so a room hovering around 16 °C neither flaps nor piles up half-cold spells.
            home.below_since.pop(device.id, None)
            self._timers.cancel(key)
            if device.id in home.cold_devices:
                home.cold_devices.discard(device.id)
                if not home.cold_devices:
                    message = (
                        f"{_room(device.room).capitalize()} is back up to {celsius:.1f} °C at "
                        f"{hm(reading.ts_ms, home.tz)}."
                    )
                    return [
                        self._finding(
                            "cold_home",
                            reading.subject,
                            cfg.severity,
                            message,
                            reading.ts_ms,
                            False,
                            {"temperature_c": celsius},
                            device,
                        )
                    ]
        return []

    def _cold_due(self, home_id: str, home: _Home, device_id: str, due_ms: int) -> list[Finding]:
        device = self._registry.devices[device_id]
        cfg = self._lookup.get(ColdHomeRule, home_id, device)
        since = home.below_since.get(device_id)
        if since is None:
            return []
        home.cold_devices.add(device_id)
        coldest = min(home.temperatures.get(d, (0, 99.0))[1] for d in home.cold_devices)
        _, now_c = home.temperatures.get(device_id, (0, coldest))
        message = (
            f"Cold home: {_room(device.room)} below {cfg.below_c:g} °C since {hm(since, home.tz)} "
            f"({duration(due_ms - since)}); now {now_c:.1f} °C. Below 18 °C raises health risks for older people."
        )
        return [
            self._finding(
                "cold_home",
                home_id,
                cfg.severity,
                message,
                due_ms,
                True,
                {"temperature_c": now_c, "coldest_c": coldest, "since_ms": since},
                device,
            )
        ]

    # -- shared --------------------------------------------------------------------------------------

    def _finding(
        self,
        rule: str,
        home_id: str,
        severity: Severity,
        message: str,
        at_ms: int,
        active: bool,
        evidence: Evidence,
        device: DeviceSpec | None = None,
    ) -> Finding:
        return Finding(
            rule=rule,
            audience="care",
            subject=home_id,
            severity=severity,
            message=message,
            at_ms=at_ms,
            active=active,
            evidence=evidence,
            device_id=device.id if device is not None else None,
        )
