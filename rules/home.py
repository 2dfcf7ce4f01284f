"""Home care rules: the routine-change alerts a care team acts on, each with its evidence in plain English.

Rules (all in the home's own time zone; defaults in ``rules.config``):
- ``not_up``: still in the night's sleep (nothing outside the bedroom and bathroom since her longest quiet spell
  of the night began) at the wake deadline: 09:30 until her usual getting-up is learned, then her usual latest
  plus a margin as wide as her mornings vary (at most 14:00); not while she is out; clears when she is up.
- ``no_kitchen_use``: no kitchen use (fridge, kettle, kitchen cupboards and appliances) by 11:00, or once learned
  by her usual latest first use plus a margin; not while she is out or not yet up; clears at the first use.
- ``reduced_kitchen_use``: a whole day at home with kitchen use far below every one of her own recent days.
- ``inactivity``: no change from any sensor for 3 h (once learned: longer than her longest quiet spell of the last
  fortnight) in waking hours, at an hour she is usually active; not while she is asleep, in bed (only a bed
  excuses stillness: an occupied chair does not) or out (front door, then silence: a state, not a fall).
- ``bathroom_stay``: in the bathroom for over 60 minutes with nothing anywhere else, only where motion sensors
  would have seen her leave (a PIR in every other sensed room, or a bed sensor in the bedroom).
- ``bathroom_visits``: more toilet visits (flushes, where a flush sensor works) or bathroom visits than her own
  days, nights and runs of days, judged against her own day-to-day variance (a door's opening and closing, the
  flush and the bathroom PIR a few minutes apart are one visit).
- ``night_door``: the front door opened during the night window (23:00–06:00), going out (not coming home): at once
  after she had settled for the night; when she was up and going out at night is not her habit, once nothing has
  moved at home for 15 minutes after the door (she really went: the bins, a look outside or a door sensor on the
  way to the bathroom are not alerts).
- ``cold_home``: a room below 16 °C for 2 hours (counted 07:00–23:00); clears once every room is above 17 °C.
- ``help_button``: the help button was pressed (critical).

Activity is a change: a device repeating its state (an hourly check-in) is alive, not proof anyone moved
(``rules.homesense``); while she is out, one device alone is not her. Each home's registry says what its sensors
can observe; a rule whose condition the
sensors cannot see does not fire on absence of evidence. Absence-of-events rules run from timers, fired by the
engine at the exact due time, so event-clock replays give the same alerts every run. Findings name the home
only by its pseudonymous id. All learned and per-home state is plain data (``_Home``). This module must not
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
from placesense.basics.findings import Finding, Severity
from placesense.basics.localtime import at_local, day_of, hm, hm_of_minutes, local, minutes_of_day, next_local, zone
from placesense.basics.memory import keep_last
from placesense.basics.stats import poisson_lower_tail, poisson_upper_tail, quantile
from placesense.basics.texts import Text, text
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS
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
from rules.homesense import Change, HomeSensing, interpret, metric_state
from rules.timers import Timers

# The front door used within this long before the last activity means the resident probably went out.
LEFT_HOME_MS = 2 * MINUTE_MS
PIR_HOLD_MS = 90_000  # a PIR's "no motion" comes a minute or two after the last movement it saw
GETTING_UP_MS = 10 * MINUTE_MS  # what happens this long before the front door at night is getting up to go out
STUCK_PIR_MS = 30 * MINUTE_MS  # a PIR "seeing movement" for longer is stuck; its "no motion" says nothing
PRESENCE_CONFIRM_MS = 10 * MINUTE_MS  # while she is out, a device is believed when another agrees this soon
NIGHT_UP_CONFIRM_MS = 10 * MINUTE_MS  # up in the night after a settled spell, once a second activity follows this soon
NIGHT_FROM = time(18, 0)  # from here the night belongs to the next morning
SLEEP_STARTED_BEFORE = time(7, 0)  # a quiet spell that began after this is not the night's sleep
EARLIEST_WAKE = time(4, 0)
UP_CONFIRM_MS = 30 * MINUTE_MS  # after a quiet spell, activity counts as her up once a second follows this soon
MOSTLY_OUT_MS = 6 * HOUR_MS  # a day she was out this long is not judged for kitchen use
HABIT_NIGHTS = 2  # out at night (going out, or coming home) on this many of the last 14 nights is her habit
JUST_HOME_MS = 15 * MINUTE_MS
FLUSH_VISIT_MS = 5 * MINUTE_MS  # flushes closer than this are one toilet visit
VISIT_RUN_DAYS = 3  # days of counts not yet learned: the longest run judged together, less today
OVERDISPERSED_Z = 3.0  # a day's visits this many of her own standard deviations above her mean
OVERDISPERSED_Z_RUN = 2.5  # a run of days' (each day above her mean already)

Evidence = dict[str, float | int | str | None]
HISTORY_KEPT = 60  # days (or nights) of each learned history a home keeps
LEARNING_FROM_DAYS = 3  # from this many days a deadline may move later than the default, before it is learned


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


def learned_minutes(values: Sequence[float], margin: float, latest: time) -> float:
    """Her usual latest (90th percentile) plus a margin that follows her spread: at least ``margin`` minutes, or
    the width of her 10th–90th percentile range when her days vary more than that; never after ``latest``."""
    low, high = quantile(sorted(values), 0.1), quantile(sorted(values), 0.9)
    return min(high + max(margin, high - low), latest.hour * 60.0 + latest.minute)


def _deadline(recent: Sequence[float], learn: bool, min_days: int, default: time, margin: float, latest: time) -> time:
    """The default until ``min_days`` are learned, then her own; in between, the later of the two: a late riser
    stops getting daily alerts after her first few mornings, an early riser waits for a full week's evidence."""
    if not learn or len(recent) < LEARNING_FROM_DAYS:
        return default
    own = _clock(learned_minutes(recent, margin, latest))
    return own if len(recent) >= min_days else max(own, default)


def _clock(minutes: float) -> time:
    whole = round(minutes)
    return time(whole // 60 % 24, whole % 60)


@dataclass(slots=True)
class _Home:
    """Everything the rules track and learn about one home: plain data only."""

    tz: ZoneInfo
    device_state: dict[str, float] = field(default_factory=dict)  # device id -> last reported state (1/0)
    last_activity_ms: int | None = None
    last_activity_room: str | None = None
    last_activity_device: str | None = None
    last_front_door_ms: int | None = None
    out_since_ms: int | None = None  # out of the home since the front door (a state, not a fall)
    came_home_ms: int | None = None
    out_by_day: dict[date, int] = field(default_factory=dict)  # time out per (kitchen) day, the last few days
    motion_since: dict[str, int] = field(default_factory=dict)  # PIR device id -> when it last saw movement
    while_out: dict[str, int] = field(default_factory=dict)  # device id -> its last activity while she was out
    in_bed: bool = False
    # the night's sleep: activity outside the bedroom and bathroom ("up" activity), and the longest gap between
    # two such in the night before ``night_of``'s morning (18:00 the evening before to 18:00 that day)
    last_up_ms: int | None = None
    pending_up_ms: int | None = None  # a first sign of her up after a quiet spell, not yet confirmed
    pending_up_room: str | None = None
    night_of: date | None = None
    night_longest_ms: int = 0
    night_wake_ms: int | None = None  # when that longest gap ended: getting up
    # local date -> bit mask of the hours of that day with any activity (for "usually active at this time")
    active_hours: dict[date, int] = field(default_factory=dict)
    # wake-up
    wake_minutes: list[tuple[date, int]] = field(default_factory=list)  # oldest first, as all the histories
    not_up_active: bool = False
    # kitchen
    kitchen_day: date | None = None
    kitchen_minutes: list[tuple[date, int]] = field(default_factory=list)
    no_kitchen_active: bool = False
    # inactivity: the longest quiet spell of each day at home, awake and in waking hours
    inactivity_active: bool = False
    quiet_day: date | None = None
    quiet_longest_ms: int = 0
    quiet_history: list[tuple[date, int]] = field(default_factory=list)
    # bathroom
    bath_enter_ms: int | None = None
    bath_last_ms: int | None = None
    bath_stay_active: bool = False
    # bathroom visits per period (a day and the night after it), keyed by the period's date:
    # [night visits, all visits, night flushes, all flushes]
    visits: dict[date, list[int]] = field(default_factory=dict)
    visit_history: list[tuple[int, int, int, int]] = field(default_factory=list)
    # the last few days' counts, learned only once they are older than a run of days the rule judges together,
    # so the first days of a rise are not already "usual" when the run is judged
    visits_pending: list[tuple[int, int, int, int]] = field(default_factory=list)
    last_flush_ms: int | None = None
    # the totals of the periods before this one, newest last: a rise that lasts several days adds up
    recent_totals: list[int] = field(default_factory=list)  # at most three
    visits_active: bool = False
    # kitchen uses per day
    kitchen_uses: dict[date, int] = field(default_factory=dict)
    kitchen_history: list[int] = field(default_factory=list)
    reduced_kitchen_active: bool = False
    # night door: when she was last active outside the bedroom (recent times, newest last)
    night_door_openings: dict[date, int] = field(default_factory=dict)
    night_outings: list[date] = field(default_factory=list)  # nights she went out of the front door, oldest first
    recent_up_activity: list[int] = field(default_factory=list)
    night_door_waiting_ms: int | None = None  # an awake opening, waiting to see whether she really went out
    night_got_up_ms: int | None = None  # up again in the night window after a settled spell (not coming home)
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
        # What each home's sensors can see: from the registry, so not state to save.
        self._sensing = {home_id: HomeSensing.of(registry, home_id) for home_id in registry.homes}
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
            self._schedule_kitchen(home_id, home, now_ms)
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
            elif what == "night_door":
                findings += self._night_door_due(home_id, home, due_ms)
            elif what.startswith("cold:"):
                findings += self._cold_due(home_id, home, what.removeprefix("cold:"), due_ms)
        return findings

    # -- readings ------------------------------------------------------------------------------------

    def on_reading(self, reading: Reading, device: DeviceSpec) -> list[Finding]:
        home = self._homes.get(reading.subject)
        if home is None:
            return []
        metrics = reading.metrics
        findings: list[Finding] = []
        if device.kind == "climate" and "temperature_c" in metrics:
            findings += self._temperature(reading, device, home, metrics["temperature_c"])
        if device.kind == "help_button" and metrics.get("help_pressed") == 1:
            findings += self._help(reading, device, home)
        state = metric_state(device, metrics, self._lookup.get(KitchenRule, reading.subject).kettle_on_w)
        if state is None:
            return findings
        change = interpret(device, home.device_state.get(device.id), state)
        home.device_state[device.id] = state
        if change is None:
            return findings  # a check-in repeating the state: the device is alive, nobody moved
        return findings + self._changed(reading, device, home, change)

    def _changed(self, reading: Reading, device: DeviceSpec, home: _Home, change: Change) -> list[Finding]:
        home_id, ts = reading.subject, reading.ts_ms
        findings: list[Finding] = []
        if device.kind == "motion":
            if change.what == "moved":
                home.motion_since[device.id] = ts
            else:
                # The PIR saw movement until it went quiet: she was moving then, unless it had been "on" for so
                # long that it was stuck, not watching someone.
                since = home.motion_since.pop(device.id, None)
                moved = ts - PIR_HOLD_MS
                door = home.last_front_door_ms
                left = door is not None and since is not None and since <= door <= ts  # she went out meanwhile
                if since is not None and ts - since <= STUCK_PIR_MS and home.out_since_ms is None and not left:
                    if home.last_activity_ms is not None and moved > home.last_activity_ms:
                        home.last_activity_ms = moved
                    if device.room == "bathroom" and home.bath_last_ms is not None and moved > home.bath_last_ms:
                        home.bath_last_ms = moved
                return []
        if device.kind == "bed":
            home.in_bed = change.what == "in_bed"
        if not change.active:
            return findings
        came_home = False
        if self._is_out(home, ts):
            home.out_since_ms = home.out_since_ms or home.last_front_door_ms
            if device.kind != "front_door" and not self._presence_confirmed(home, device, ts):
                return findings  # one device alone in an empty home (sun, heating, a pet): she is still out
            came_home = True
            self._back_home(home_id, home, ts)
        if device.kind == "front_door" and change.what == "opened" and not came_home:
            findings += self._night_door(reading, home, device)
        findings += self._activity(reading, device, home, change, came_home)
        if device.kind == "front_door":
            home.last_front_door_ms = ts
        if self._sensing[home_id].is_kitchen_use(device, change):
            findings += self._kitchen_used(reading, home, device)
        return findings

    def _presence_confirmed(self, home: _Home, device: DeviceSpec, ts: int) -> bool:
        """While she is out, one device on its own (a PIR in the sun, a mat under a cat, a flickering contact) is
        not her: coming home is the front door, or two different devices within ``PRESENCE_CONFIRM_MS``."""
        out = home.out_since_ms or ts
        agree = any(
            d != device.id and out <= t and ts - t <= PRESENCE_CONFIRM_MS for d, t in home.while_out.items()
        )
        home.while_out[device.id] = ts
        return agree

    def _back_home(self, home_id: str, home: _Home, ts: int) -> None:
        out = home.out_since_ms
        home.out_since_ms = None
        home.came_home_ms = ts
        home.while_out.clear()
        if out is None:
            return
        self._count_out(home_id, home, out, ts)
        night = self._lookup.get(NightDoorRule, home_id).night
        if night.contains(local(ts, home.tz).time()):
            self._note_night_outing(home, day_of(ts, night.end, home.tz))  # out at night, as the door going out is

    @staticmethod
    def _note_night_outing(home: _Home, night: date) -> None:
        if not home.night_outings or home.night_outings[-1] < night:
            keep_last(home.night_outings, night, 30)

    def _count_out(self, home_id: str, home: _Home, out: int, back: int) -> None:
        """Add a spell out to each day it covered (days as the kitchen rule counts them, from 05:00)."""
        starts = self._lookup.get(KitchenRule, home_id).day_starts
        cursor = out
        while cursor < back:
            day = day_of(cursor, starts, home.tz)
            day_end = at_local(day + timedelta(days=1), starts, home.tz)
            piece_end = min(back, day_end)
            home.out_by_day[day] = home.out_by_day.get(day, 0) + piece_end - cursor
            cursor = piece_end
        for old in sorted(home.out_by_day)[:-3]:
            del home.out_by_day[old]

    def _activity(
        self, reading: Reading, device: DeviceSpec, home: _Home, change: Change, came_home: bool
    ) -> list[Finding]:
        home_id, ts = reading.subject, reading.ts_ms
        room = device.room or "other"
        findings: list[Finding] = []
        moment = local(ts, home.tz)
        home.active_hours[moment.date()] = home.active_hours.get(moment.date(), 0) | (1 << moment.hour)
        if len(home.active_hours) > 70:
            for old in sorted(home.active_hours)[:-62]:
                del home.active_hours[old]
        gap_start = home.last_activity_ms
        if gap_start is not None and not came_home and not home.in_bed and not self._asleep(home, ts):
            self._quiet_spell(home_id, home, gap_start, ts)
        home.last_activity_ms, home.last_activity_room, home.last_activity_device = ts, room, device.id
        if room != "bedroom":
            self._night_up(home_id, home, ts, came_home)
            keep_last(home.recent_up_activity, ts, 30)

        if home.inactivity_active and gap_start is not None:
            home.inactivity_active = False
            cfg = self._lookup.get(InactivityRule, home_id)
            message = text("inactivity.cleared", what=self._what(device), time=hm(ts, home.tz), gap=ts - gap_start)
            findings.append(
                self._finding(
                    "inactivity", home_id, cfg.severity, message, ts, False,
                    {"gap_minutes": round((ts - gap_start) / MINUTE_MS)}, device,
                )
            )
        self._schedule_inactivity(home_id, home, ts)

        if room == "bathroom":
            findings += self._in_bathroom(home_id, home, device, ts)
        else:
            where = text("the_bed") if device.kind == "bed" else text("the_room", room=room)
            findings += self._leave_bathroom(home_id, home, ts, where)

        if room in self._sensing[home_id].up_rooms or device.kind == "front_door":
            findings += self._up(home_id, home, ts, room, device, came_home)
        return findings

    def _is_out(self, home: _Home, now_ms: int) -> bool:
        """Front door, then nothing: she went out (a state, not a fall)."""
        if home.out_since_ms is not None:
            return True
        door, last = home.last_front_door_ms, home.last_activity_ms
        return door is not None and last is not None and door >= last - LEFT_HOME_MS and now_ms - door >= LEFT_HOME_MS

    def _what(self, device: DeviceSpec) -> Text:
        """'movement in the kitchen': what the device senses, and where (words in
        ``placesense.basics.texts.SENSORS``)."""
        return text("sensor_in_room", kind=device.kind, room=device.room)

    # -- wake-up -------------------------------------------------------------------------------------

    @staticmethod
    def _morning_of(ts_ms: int, tz: ZoneInfo) -> date:
        """The morning a moment's night leads to: from 18:00 the night belongs to the next day."""
        moment = local(ts_ms, tz)
        return moment.date() + timedelta(days=1) if moment.time() >= NIGHT_FROM else moment.date()

    def _usual_wake(self, home: _Home, cfg: WakeRule, before: date) -> tuple[str, str] | None:
        recent = [m for d, m in home.wake_minutes if before - timedelta(days=cfg.history_days) <= d < before]
        if len(recent) < 3:
            return None
        return hm_of_minutes(quantile(sorted(recent), 0.1)), hm_of_minutes(quantile(sorted(recent), 0.9))

    def _asleep(self, home: _Home, now_ms: int) -> bool:
        """Still in the night's sleep: nothing outside the bedroom and bathroom since before 07:00, for at least
        an hour and for longer than any other quiet spell of this night (not a nap, not a quiet evening)."""
        last = home.last_up_ms if home.last_up_ms is not None else home.last_activity_ms
        if last is None:
            return False
        morning = self._morning_of(now_ms, home.tz)
        ongoing = now_ms - last
        longest = home.night_longest_ms if home.night_of == morning else 0
        before_seven = last < at_local(local(now_ms, home.tz).date(), SLEEP_STARTED_BEFORE, home.tz)
        return before_seven and ongoing >= max(longest, HOUR_MS)

    def _up(
        self, home_id: str, home: _Home, ts: int, room: str, device: DeviceSpec, came_home: bool
    ) -> list[Finding]:
        """Activity outside the bedroom and bathroom. After a quiet spell it counts once a second one follows
        within ``UP_CONFIRM_MS`` (or it is the front door): one lone event in the night (a PIR in the headlights of
        a car, a cat on a cupboard) does not end her sleep. The spell that ended is perhaps the night's sleep."""
        cfg = self._lookup.get(WakeRule, home_id)
        last = home.last_up_ms
        if last is not None and ts - last <= UP_CONFIRM_MS:
            home.last_up_ms = ts  # up and about
            self._new_night(home_id, home, ts)
            return []
        pending = home.pending_up_ms
        if not came_home and device.kind != "front_door" and (pending is None or ts - pending > UP_CONFIRM_MS):
            home.pending_up_ms, home.pending_up_room = ts, room  # a first sign after a quiet spell: wait
            return []
        first_room = room
        began = ts
        if pending is not None and not came_home and device.kind != "front_door":
            began, first_room = pending, home.pending_up_room or room
        home.pending_up_ms = None
        self._new_night(home_id, home, began)
        # A spell out is not sleep, and a spell that ends in the small hours was a night-time trip, not the night.
        if last is not None and not came_home and EARLIEST_WAKE <= local(began, home.tz).time() < NIGHT_FROM:
            gap = began - last
            if gap > home.night_longest_ms:
                home.night_longest_ms, home.night_wake_ms = gap, began
        home.last_up_ms = ts
        if not home.not_up_active:
            return []
        home.not_up_active = False
        today = day_of(ts, cfg.day_starts, home.tz)
        usual = self._usual_wake(home, cfg, today)
        usual_words = text("not_up.usual_by", usual_to=usual[1]) if usual else text("not_up.no_usual")
        what = (
            text("not_up.came_home", time=hm(began, home.tz)) if came_home
            else text("not_up.first_activity", time=hm(began, home.tz), room=first_room)
        )
        message = text("not_up.cleared", what=what, usual=usual_words)
        return [
            self._finding(
                "not_up", home_id, cfg.severity, message, ts, False,
                {"first_activity_minutes": minutes_of_day(began, home.tz)}, device,
            )
        ]

    def _new_night(self, home_id: str, home: _Home, ts: int) -> None:
        """From 18:00 a new night begins: learn the last one's getting-up and set tomorrow's deadline by it."""
        morning = self._morning_of(ts, home.tz)
        if home.night_of == morning:
            return
        if self._close_night(home):
            self._schedule_wake(home_id, home, ts)
        home.night_of, home.night_longest_ms, home.night_wake_ms = morning, 0, None

    def _close_night(self, home: _Home) -> bool:
        """Learn the getting-up time of the night that ended: the end of its longest quiet spell, if that was a
        night's sleep (three hours or more, ending in the morning or afternoon) and not a night away."""
        wake, night = home.night_wake_ms, home.night_of
        if wake is None or night is None or home.night_longest_ms < 3 * HOUR_MS:
            return False
        moment = local(wake, home.tz)
        if moment.date() != night or not EARLIEST_WAKE <= moment.time() < NIGHT_FROM:
            return False
        keep_last(home.wake_minutes, (night, moment.hour * 60 + moment.minute), HISTORY_KEPT)
        return True

    def _deadline_for(self, home: _Home, cfg: WakeRule, day: date) -> time:
        """The configured deadline until the usual wake-up is learned; then her usual latest plus a margin."""
        recent = [m for d, m in home.wake_minutes if day - timedelta(days=cfg.history_days) <= d < day]
        return _deadline(recent, cfg.learn, cfg.min_history_days, cfg.deadline, cfg.margin_minutes, cfg.latest_deadline)

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
        if not cfg.enabled or home.not_up_active or not self._sensing[home_id].up_rooms:
            return []
        if self._is_out(home, due_ms) or not self._asleep(home, due_ms):
            return []  # out since the front door, or up and about since the night
        home.not_up_active = True
        usual = self._usual_wake(home, cfg, today)
        usual_words = (
            text("not_up.usual", usual_from=usual[0], usual_to=usual[1], days=cfg.history_days)
            if usual
            else text("not_up.no_usual")
        )
        last = text("empty")
        if home.last_up_ms is not None and due_ms - home.last_up_ms < 24 * HOUR_MS:
            last = text("not_up.last", time=hm(home.last_up_ms, home.tz))
        message = text(
            "not_up", time=hm(due_ms, home.tz), usual=usual_words, last=last,
            bed=text("not_up.in_bed" if home.in_bed else "empty"),
        )
        evidence: Evidence = {
            "deadline": hm(due_ms, home.tz),
            "usual_from": usual[0] if usual else None,
            "usual_to": usual[1] if usual else None,
        }
        return [self._finding("not_up", home_id, cfg.severity, message, due_ms, True, evidence)]

    # -- kitchen -------------------------------------------------------------------------------------

    def _kitchen_deadline_for(self, home: _Home, cfg: KitchenRule, day: date) -> time:
        recent = [m for d, m in home.kitchen_minutes if day - timedelta(days=cfg.history_days) <= d < day]
        return _deadline(
            recent, cfg.learn, cfg.min_history_days_deadline, cfg.deadline, cfg.margin_minutes, cfg.latest_deadline
        )

    def _schedule_kitchen(self, home_id: str, home: _Home, after_ms: int) -> None:
        cfg = self._lookup.get(KitchenRule, home_id)
        day = day_of(after_ms, cfg.day_starts, home.tz)
        for offset in range(3):
            candidate = day + timedelta(days=offset)
            due = at_local(candidate, self._kitchen_deadline_for(home, cfg, candidate), home.tz)
            if due > after_ms:
                self._timers.set((home_id, "kitchen"), due)
                return

    def _kitchen_used(self, reading: Reading, home: _Home, device: DeviceSpec) -> list[Finding]:
        cfg = self._lookup.get(KitchenRule, reading.subject)
        today = day_of(reading.ts_ms, cfg.day_starts, home.tz)
        home.kitchen_uses[today] = home.kitchen_uses.get(today, 0) + 1
        if home.kitchen_day == today:
            return []
        home.kitchen_day = today
        keep_last(home.kitchen_minutes, (today, minutes_of_day(reading.ts_ms, home.tz)), HISTORY_KEPT)
        self._schedule_kitchen(reading.subject, home, reading.ts_ms)  # the next deadline knows today's use
        if not home.no_kitchen_active:
            return []
        home.no_kitchen_active = False
        message = text("no_kitchen_use.cleared", time=hm(reading.ts_ms, home.tz), what=self._what(device))
        return [
            self._finding("no_kitchen_use", reading.subject, cfg.severity, message, reading.ts_ms, False, {}, device)
        ]

    def _kitchen_deadline(self, home_id: str, home: _Home, due_ms: int) -> list[Finding]:
        cfg = self._lookup.get(KitchenRule, home_id)
        self._schedule_kitchen(home_id, home, due_ms)
        today = day_of(due_ms, cfg.day_starts, home.tz)
        if not cfg.enabled or home.kitchen_day == today or not self._sensing[home_id].kitchen_use:
            return []
        if self._is_out(home, due_ms) or home.not_up_active or self._asleep(home, due_ms):
            return []  # out, or not up yet (``not_up`` is the alert for that): the kitchen says nothing more
        home.no_kitchen_active = True
        recent = [m for d, m in home.kitchen_minutes if today - timedelta(days=14) <= d < today]
        usual = (
            text("no_kitchen_use.usual", usual=hm_of_minutes(statistics.median(recent))) if len(recent) >= 3
            else text("empty")
        )
        message = text("no_kitchen_use", deadline=hm(due_ms, home.tz), usual=usual)
        return [
            self._finding(
                "no_kitchen_use", home_id, cfg.severity, message, due_ms, True, {"deadline": hm(due_ms, home.tz)}
            )
        ]

    def _kitchen_day_over(self, home_id: str, home: _Home, due_ms: int) -> list[Finding]:
        """At the start of a day: was yesterday's kitchen use far below this home's usual?

        Real days vary far more than chance: a day is unusual only when she was at home most of it (out less
        than ``MOSTLY_OUT_MS``), used the kitchen less than on any of the last fortnight's days at home, at most
        ``max_share_of_usual`` of her median, and the count is improbable for her average."""
        cfg = self._lookup.get(KitchenRule, home_id)
        self._timers.set((home_id, "kitchen_day"), next_local(due_ms, cfg.day_starts, home.tz))
        day = day_of(due_ms - 1, cfg.day_starts, home.tz)
        self._close_quiet_day(home_id, home, day)
        uses = home.kitchen_uses.pop(day, 0)
        for old in [d for d in home.kitchen_uses if d < day]:
            del home.kitchen_uses[old]
        out_ms = home.out_by_day.get(day, 0)
        if home.out_since_ms is not None:  # still out: count the part of yesterday she has been out
            out_ms += due_ms - max(home.out_since_ms, due_ms - 24 * HOUR_MS)
        if out_ms >= MOSTLY_OUT_MS:
            return []  # out most of the day: she ate elsewhere; not a day to judge or to learn from
        history = list(home.kitchen_history)[-cfg.history_days :]
        if len(history) < cfg.min_history_days or not self._sensing[home_id].kitchen_use:
            keep_last(home.kitchen_history, uses, HISTORY_KEPT)
            return []
        usual = statistics.fmean(history)
        median = statistics.median(history)
        low = (
            uses < min(history)
            and uses <= cfg.max_share_of_usual * median
            and poisson_lower_tail(uses, usual) < cfg.improbability
        )
        evidence: Evidence = {"uses": uses, "usual_mean": round(usual, 1), "usual_least": min(history),
                              "days": len(history)}
        if low and cfg.enabled:
            home.reduced_kitchen_active = True
            message = text("reduced_kitchen_use", uses=uses, median=median, least=min(history), days=len(history))
            return [self._finding("reduced_kitchen_use", home_id, cfg.severity, message, due_ms, True, evidence)]
        keep_last(home.kitchen_history, uses, HISTORY_KEPT)
        if home.reduced_kitchen_active:
            home.reduced_kitchen_active = False
            message = text("reduced_kitchen_use.cleared", uses=uses, median=median)
            return [self._finding("reduced_kitchen_use", home_id, cfg.severity, message, due_ms, False, evidence)]
        return []

    # -- inactivity ----------------------------------------------------------------------------------

    def _quiet_spell(self, home_id: str, home: _Home, from_ms: int, to_ms: int) -> None:
        """Remember the day's longest quiet spell at home, out of bed and in waking hours (her own normal)."""
        cfg = self._lookup.get(InactivityRule, home_id)
        day = local(to_ms, home.tz).date()
        start = max(from_ms, at_local(day, cfg.waking.start, home.tz))
        end = min(to_ms, at_local(day, cfg.waking.end, home.tz))
        if end <= start:
            return
        if home.quiet_day != day:
            if home.quiet_day is not None:
                self._close_quiet_day(home_id, home, home.quiet_day)
            home.quiet_day, home.quiet_longest_ms = day, 0
        home.quiet_longest_ms = max(home.quiet_longest_ms, end - start)

    def _close_quiet_day(self, home_id: str, home: _Home, day: date) -> None:
        if home.quiet_day is None or home.quiet_day > day:
            return
        if home.quiet_longest_ms > 0:
            keep_last(home.quiet_history, (home.quiet_day, home.quiet_longest_ms), HISTORY_KEPT)
        home.quiet_day, home.quiet_longest_ms = None, 0

    def _inactivity_hours(self, home: _Home, cfg: InactivityRule, today: date) -> tuple[float, int | None]:
        """The hours of silence that are unusual for her: the configured hours, or once learned her longest quiet
        spell of the last fortnight plus a margin (longer than any she had), with that longest spell (None while
        nothing is learned).

        The longest of a fortnight is often beaten by a little on some later day, and by more where her quiet
        spells vary more, so the margin grows with their spread: at least ``margin_minutes``, or
        ``margin_spread_share`` of the way from her typical day's longest spell (the median) to the longest, more
        while fewer than ``history_days`` are known."""
        recent = [ms for d, ms in home.quiet_history if today - timedelta(days=cfg.history_days) <= d < today]
        if not cfg.learn or len(recent) < max(cfg.min_history_days, 3):
            return cfg.hours, None
        longest = max(recent)
        # Fewer days say less about how long her quiet spells can be: widen the margin until a fortnight is known.
        few_days = math.sqrt(max(1.0, cfg.history_days / len(recent)))
        spread_ms = (longest - statistics.median(recent)) * cfg.margin_spread_share * few_days
        learned_ms = longest + max(cfg.margin_minutes * MINUTE_MS, spread_ms)
        return min(max(cfg.hours, learned_ms / HOUR_MS), cfg.max_hours), longest

    def _schedule_inactivity(self, home_id: str, home: _Home, since_ms: int) -> None:
        cfg = self._lookup.get(InactivityRule, home_id)
        if not cfg.enabled:
            return
        day = local(since_ms, home.tz).date()
        hours, _ = self._inactivity_hours(home, cfg, day)
        for offset in range(3):
            start = at_local(day + timedelta(days=offset), cfg.waking.start, home.tz)
            end = at_local(day + timedelta(days=offset), cfg.waking.end, home.tz)
            if end <= start:  # a waking window cannot span midnight; treat it as ending at midnight
                end = at_local(day + timedelta(days=offset + 1), time(0, 0), home.tz)
            due = max(since_ms, start) + int(hours * HOUR_MS)
            if due <= end:
                self._timers.set((home_id, "inactivity"), due)
                return

    def _inactivity_due(self, home_id: str, home: _Home, due_ms: int) -> list[Finding]:
        cfg = self._lookup.get(InactivityRule, home_id)
        last = home.last_activity_ms
        if last is None or home.in_bed or home.inactivity_active:
            return []
        if self._is_out(home, due_ms) or self._asleep(home, due_ms):
            return []  # out (the front door was the last thing that happened), or not up yet: not stillness
        hours, learned = self._inactivity_hours(home, cfg, local(due_ms, home.tz).date())
        gap_from = max(last, due_ms - int(hours * HOUR_MS))
        share, days = self._usually_active(home, cfg, gap_from, due_ms)
        if days >= cfg.min_history_days and share < cfg.usually_active_share:
            # A quiet hour for this resident: look again an hour later, when they may usually be about.
            end = at_local(local(due_ms, home.tz).date(), cfg.waking.end, home.tz)
            if due_ms + HOUR_MS <= end:
                self._timers.set((home_id, "inactivity"), due_ms + HOUR_MS)
            return []
        home.inactivity_active = True
        usual = (
            text("inactivity.usual", active=round(share * days), days=days)
            if days >= cfg.min_history_days
            else text("inactivity.no_usual")
        )
        longest = text("empty")
        if learned is not None:
            longest = text("inactivity.longest", days=cfg.history_days, longest=learned)
        device = self._registry.devices.get(home.last_activity_device or "")
        seen = self._what(device) if device is not None else text("the_room", room=home.last_activity_room)
        unsure = text("empty" if self._sensing[home_id].front_door else "inactivity.no_front_door")
        message = text(
            "inactivity", since=hm(last, home.tz), gap=due_ms - last, seen=seen, unsure=unsure, usual=usual,
            longest=longest,
        )
        evidence: Evidence = {
            "last_movement_ms": last,
            "gap_minutes": round((due_ms - last) / MINUTE_MS),
            "usually_active_share": round(share, 2),
            "threshold_minutes": round(hours * 60),
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

    def _in_bathroom(self, home_id: str, home: _Home, device: DeviceSpec, ts: int) -> list[Finding]:
        visits = self._lookup.get(BathroomVisitsRule, home_id)
        # One visit: bathroom activity (a door's opening and closing, the flush, the PIR) with no more than
        # ``separate_minutes`` between its parts, whatever happened elsewhere meanwhile.
        new_visit = home.bath_last_ms is None or ts - home.bath_last_ms > visits.separate_minutes * MINUTE_MS
        if new_visit or home.bath_enter_ms is None:
            home.bath_enter_ms = ts
        home.bath_last_ms = ts
        stay = self._lookup.get(BathroomStayRule, home_id)
        key = (home_id, "bath_stay")
        if not stay.enabled or not self._sensing[home_id].exits_seen:
            self._timers.cancel(key)
        elif new_visit or (self._timers.get(key) is None and not home.bath_stay_active):
            self._timers.set(key, max(ts, home.bath_enter_ms + int(stay.minutes * MINUTE_MS)))
        period = home.visits.setdefault(day_of(ts, visits.night.end, home.tz), [0, 0, 0, 0])
        at_night = visits.night.contains(local(ts, home.tz).time())
        if new_visit:
            period[1] += 1
            period[0] += at_night
        if device.kind == "flush" and (home.last_flush_ms is None or ts - home.last_flush_ms > FLUSH_VISIT_MS):
            period[3] += 1
            period[2] += at_night
        if device.kind == "flush":
            home.last_flush_ms = ts
        return []

    def _leave_bathroom(self, home_id: str, home: _Home, ts: int, where: Text) -> list[Finding]:
        entered = home.bath_enter_ms
        if entered is None:
            return []
        home.bath_enter_ms = None
        self._timers.cancel((home_id, "bath_stay"))
        if not home.bath_stay_active:
            return []
        home.bath_stay_active = False
        cfg = self._lookup.get(BathroomStayRule, home_id)
        message = text("bathroom_stay.cleared", where=where, time=hm(ts, home.tz), lasted=ts - entered)
        evidence: Evidence = {"minutes": round((ts - entered) / MINUTE_MS)}
        return [self._finding("bathroom_stay", home_id, cfg.severity, message, ts, False, evidence)]

    def _bath_stay_due(self, home_id: str, home: _Home, due_ms: int) -> list[Finding]:
        """Only where the sensors would have seen her leave (motion sensors in every other sensed room, or a bed
        sensor in the bedroom): elsewhere, silence after the bathroom is left to ``inactivity``."""
        cfg = self._lookup.get(BathroomStayRule, home_id)
        entered = home.bath_enter_ms
        if entered is None or home.in_bed or self._is_out(home, due_ms) or not self._sensing[home_id].exits_seen:
            return []
        home.bath_stay_active = True
        last = home.bath_last_ms or entered
        message = text(
            "bathroom_stay", since=hm(entered, home.tz), lasted=due_ms - entered, last=hm(last, home.tz)
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
        """At the end of the night: were there unusually many bathroom visits, at night or over the day?

        Where a toilet-flush sensor counts about one flush a day or more, flushes are the visits (a flush is a
        toilet visit; washing and bathing are not); elsewhere any bathroom visit counts."""
        cfg = self._lookup.get(BathroomVisitsRule, home_id)
        self._timers.set((home_id, "visits"), next_local(due_ms, cfg.night.end, home.tz))
        period = day_of(due_ms - 1, cfg.night.end, home.tz)
        counts = home.visits.pop(period, [0, 0, 0, 0])
        for old in [d for d in home.visits if d < period]:
            del home.visits[old]
        for old in [d for d in home.night_door_openings if d < period - timedelta(days=2)]:
            del home.night_door_openings[old]
        full = list(home.visit_history)[-cfg.history_nights :]
        by_flush = bool(full) and statistics.fmean(h[3] for h in full) >= 1.0
        pick = 2 if by_flush else 0
        night, total = counts[pick], counts[pick + 1]
        previous = list(home.recent_totals)
        keep_last(home.recent_totals, total, 3)
        history = [(h[pick], h[pick + 1]) for h in full]
        if len(history) < cfg.min_history_nights or not self._sensing[home_id].bathroom:
            self._learn_visits(home, counts)
            return []
        usual_night = max(0.25, statistics.fmean(n for n, _ in history))
        usual_total = max(1.0, statistics.fmean(t for _, t in history))
        most_total = max(t for _, t in history)
        most_night = max(n for n, _ in history)

        totals = [t for _, t in history]
        nights = [n for n, _ in history]
        spread_total = max(statistics.pvariance(totals), usual_total)
        spread_night = max(statistics.pvariance(nights), usual_night)

        def unusual(count: int, mean: float, variance: float, days: int = 1, limit: float = cfg.improbability) -> bool:
            """Improbable for her average (Poisson), and for how much her days really vary (a normal z-score on
            her own day-to-day variance, which real homes' counts far exceed)."""
            z = (count - days * mean) / math.sqrt(days * variance)
            return (
                count >= days * mean + cfg.min_extra_visits and poisson_upper_tail(count, days * mean) < limit
                and z >= (OVERDISPERSED_Z if days == 1 else OVERDISPERSED_Z_RUN)
            )

        # An infection raises the count for days; one day may not be improbable on its own, but two to four in a
        # row are. Three or four days count only when each of them is above the usual, so one busy day does not
        # hold the alert open. And a day, or a run of days, must be more than any day (or run of as many days)
        # of the last fortnight. The longest window that is unusual is the one reported.
        span_days, span_total = 1, total
        for days in (4, 3, 2):
            window = [*previous[-(days - 1):], total]
            sustained = days == 2 or all(count >= usual_total + 1 for count in window)
            most_run = max((sum(totals[i : i + days]) for i in range(len(totals) - days + 1)), default=0)
            # Requiring every day of three or four to be up already rules out most chance; the sum may then be a
            # little less improbable than a single day must be.
            limit = cfg.improbability * (5 if days >= 3 else 1)
            if (
                len(window) == days and sustained and sum(window) > most_run
                and unusual(sum(window), usual_total, spread_total, days, limit)
            ):
                span_days, span_total = days, sum(window)
                break
        more = (
            (unusual(night, usual_night, spread_night) and night > most_night)
            or (unusual(total, usual_total, spread_total) and total > most_total)
            or span_days > 1
        )
        what = "flushes" if by_flush else "visits"
        evidence: Evidence = {
            "night_visits": night,
            "visits_24h": total,
            "usual_night": round(usual_night, 1),
            "usual_24h": round(usual_total, 1),
            "nights": len(history),
            "counted": "flushes" if by_flush else "bathroom visits",
        }
        if more and cfg.enabled:
            home.visits_active = True
            over = text("bathroom_visits.over", total=span_total, days=span_days) if span_days > 1 else text("empty")
            message = text(
                "bathroom_visits", what=what, night=night, hours=cfg.night.label(), total=total, over=over,
                usual_night=usual_night, usual_total=usual_total, days=len(history),
            )
            return [self._finding("bathroom_visits", home_id, cfg.severity, message, due_ms, True, evidence)]
        # an unusual day is not learned as normal
        self._learn_visits(home, counts)
        if home.visits_active:
            home.visits_active = False
            message = text(
                "bathroom_visits.cleared", what=what, night=night, total=total, usual_night=usual_night,
                usual_total=usual_total,
            )
            return [self._finding("bathroom_visits", home_id, cfg.severity, message, due_ms, False, evidence)]
        return []

    @staticmethod
    def _learn_visits(home: _Home, counts: list[int]) -> None:
        keep_last(home.visits_pending, (counts[0], counts[1], counts[2], counts[3]), VISIT_RUN_DAYS + 1)
        if len(home.visits_pending) > VISIT_RUN_DAYS:
            keep_last(home.visit_history, home.visits_pending.pop(0), HISTORY_KEPT)

    # -- night door, help, cold ----------------------------------------------------------------------

    def _night_door(self, reading: Reading, home: _Home, device: DeviceSpec) -> list[Finding]:
        """The front door opening at night, going out (coming home is not alarming). It is an alert at once when she
        had settled for the night (hardly anything outside the bedroom for a while before she got up to go). When
        she was up and about and going out at night is not her habit (out of the door, or coming home through it,
        on fewer than ``HABIT_NIGHTS`` of the last fortnight's nights), it waits ``still_out_minutes``: an alert
        only if nothing has moved at home since."""
        cfg = self._lookup.get(NightDoorRule, reading.subject)
        ts = reading.ts_ms
        if not cfg.enabled or not cfg.night.contains(local(ts, home.tz).time()):
            return []
        if home.came_home_ms is not None and ts - home.came_home_ms <= JUST_HOME_MS:
            return []  # the door again as she comes in (the shopping, the bins): still coming home
        night = day_of(ts, cfg.night.end, home.tz)
        habit = sum(1 for d in home.night_outings if night - timedelta(days=14) <= d < night)
        self._note_night_outing(home, night)
        if self._settled(home, ts, cfg):
            return [self._night_door_alert(reading.subject, home, ts, ts, "night_door.settled", device)]
        if habit >= HABIT_NIGHTS:
            return []  # she goes out at night now and then, and was up and about before: her own normal
        if cfg.still_out_minutes <= 0:
            return [self._night_door_alert(reading.subject, home, ts, ts, "night_door.not_usual", device)]
        if home.night_door_waiting_ms is None:
            home.night_door_waiting_ms = ts
            self._timers.set((reading.subject, "night_door"), ts + int(cfg.still_out_minutes * MINUTE_MS))
        return []

    def _night_door_due(self, home_id: str, home: _Home, due_ms: int) -> list[Finding]:
        """An awake night opening, ``still_out_minutes`` on: an alert if she is out (the front door, then nothing
        at home); she came back in through the door (and sat down quietly) or was seen at home meanwhile, nothing."""
        opened, home.night_door_waiting_ms = home.night_door_waiting_ms, None
        if opened is None:
            return []
        came_back = home.came_home_ms is not None and home.came_home_ms > opened
        if came_back or not self._is_out(home, due_ms):
            return []
        device = self._registry.devices.get(home.last_activity_device or "")
        return [self._night_door_alert(home_id, home, opened, due_ms, "night_door.not_usual_gone", device)]

    def _night_door_alert(
        self, home_id: str, home: _Home, opened_ms: int, at_ms: int, why: str, device: DeviceSpec | None
    ) -> Finding:
        cfg = self._lookup.get(NightDoorRule, home_id)
        night = day_of(opened_ms, cfg.night.end, home.tz)
        home.night_door_openings[night] = openings = home.night_door_openings.get(night, 0) + 1
        message = text(
            "night_door", time=hm(opened_ms, home.tz), hours=cfg.night.label(), why=text(why), times=openings
        )
        return self._finding(
            "night_door", home_id, cfg.severity, message, at_ms, True, {"openings_tonight": openings}, device
        )

    def _night_up(self, home_id: str, home: _Home, ts: int, came_home: bool) -> None:
        """She had settled for the night and got up again in the middle of it (confused walking about starts like
        this): activity outside the bedroom in the night window, before ``EARLIEST_WAKE`` (from 04:00 it may be
        her morning), after ``settled_minutes`` without any, and confirmed by more within
        ``NIGHT_UP_CONFIRM_MS`` (a lone PIR blip in the night is not her up)."""
        cfg = self._lookup.get(NightDoorRule, home_id)
        recent = home.recent_up_activity
        if came_home or len(recent) < 2 or ts - recent[-1] > NIGHT_UP_CONFIRM_MS:
            return
        began, before = recent[-1], recent[-2]
        clock = local(began, home.tz).time()
        settled = began - before >= cfg.settled_minutes * MINUTE_MS
        if settled and cfg.night.contains(clock) and not EARLIEST_WAKE <= clock < NIGHT_FROM:
            home.night_got_up_ms = began

    def _settled(self, home: _Home, ts: int, cfg: NightDoorRule) -> bool:
        """Settled for the night: hardly anything outside the bedroom (two at most: a trip to the toilet, a PIR
        blip) for ``settled_minutes`` before the last few minutes (getting up to go out), and not just home; or
        she had settled earlier tonight and got up again since, however long she has been about. A bed that reads
        occupied says nothing on its own: mats stick."""
        since = ts - GETTING_UP_MS - int(cfg.settled_minutes * MINUTE_MS)
        if home.came_home_ms is not None and home.came_home_ms >= since:
            return False  # just home: not settled for the night yet
        if sum(1 for t in home.recent_up_activity if since <= t < ts - GETTING_UP_MS) < 3:
            return True
        got_up, came_home = home.night_got_up_ms, home.came_home_ms
        tonight_from = at_local(day_of(ts, cfg.night.start, home.tz), cfg.night.start, home.tz)
        return got_up is not None and got_up >= tonight_from and (came_home is None or came_home < got_up)

    def _help(self, reading: Reading, device: DeviceSpec, home: _Home) -> list[Finding]:
        cfg = self._lookup.get(HelpButtonRule, reading.subject)
        if not cfg.enabled:
            return []
        message = text("help_button", time=hm(reading.ts_ms, home.tz), room=device.room)
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
                    message = text(
                        "cold_home.cleared", room=device.room, now_c=celsius, time=hm(reading.ts_ms, home.tz)
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
        message = text(
            "cold_home", room=device.room, below_c=cfg.below_c, since=hm(since, home.tz), lasted=due_ms - since,
            now_c=now_c,
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
        message: str | Text,
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
            message=message.english if isinstance(message, Text) else message,
            text=message if isinstance(message, Text) else None,
            at_ms=at_ms,
            active=active,
            evidence=evidence,
            device_id=device.id if device is not None else None,
        )
