"""What one home's sensors say about the resident's day, accumulated event by event.

A *routine day* runs from one getting-up to the next, so the night belongs to the day before it. ``HomeDay``
follows the resident through it: getting up (leaving the bed for good after 04:00, or activity outside the
bedroom, bathroom and hallway confirmed by a second within half an hour), going to bed, bathroom and kitchen
visits, the kettle, the fridge, going out (front door and then nothing: a lone sensor while she is out is not
her; ``rules.presence``, the same presence the care rules keep), activity outside the bedroom at night, room
temperature, and the longest stretch without any activity while awake and at home. Every device counts where it
means activity (PIRs, doors, cupboards, taps, the flush, appliances, mats), and only its changes do: a repeated
state is a check-in. ``features()`` is the day's vector.

This module only observes; it never judges what is unusual and never emits findings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from placesense.basics.localtime import zone
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS
from rules.presence import Presence, Seen

VISIT_GAP_MS = 10 * MINUTE_MS  # movement in a room after this much quiet there is a new visit
CONFIRM_MS = 30 * MINUTE_MS  # out of bed (or in bed) this long before it counts as up (or gone to bed)
WAKE_CONFIRM_MS = 30 * MINUTE_MS  # activity after the night counts as getting up once a second follows this soon
NIGHT_ROOMS_EXCLUDED = frozenset({"bedroom", "bathroom", "hallway"})  # a night-time trip to the toilet
EARLIEST_WAKE_MIN = 4 * 60
EARLIEST_BED_MIN = 19 * 60
KETTLE_ON_W = 300.0  # the care rules' default (``rules.config.KitchenRule``): one meaning of "the kettle is on"


def local_minute(ts_ms: int, timezone: str) -> tuple[int, bool]:
    """Minutes after local midnight and whether the local day is a Saturday or Sunday."""
    stamp = datetime.fromtimestamp(ts_ms / 1000, tz=zone(timezone))
    return stamp.hour * 60 + stamp.minute, stamp.weekday() >= 5


def _fill_defaults(instance: object, state: dict[str, Any]) -> None:
    for spec in dataclasses.fields(instance):  # type: ignore[arg-type]
        if spec.name not in state:
            if spec.default_factory is not dataclasses.MISSING:
                state[spec.name] = spec.default_factory()
            elif spec.default is not dataclasses.MISSING:
                state[spec.name] = spec.default


@dataclass
class HomeDay:
    """One routine day of one home, from getting up (``wake_ms``) onwards."""

    wake_ms: int
    wake_min: float
    weekend: bool
    bedtime_ms: int | None = None
    bedtime_min: float | None = None
    motion_count: int = 0
    bathroom_motion: int = 0  # of motion_count, those in the bathroom
    kitchen_visits: int = 0
    kettle_uses: int = 0
    fridge_opens: int = 0
    bathroom_day: int = 0
    bathroom_night: int = 0
    night_activity: int = 0  # see ``night_use``
    night_rooms: set[str] = field(default_factory=set)  # rooms (not bedroom, bathroom, hallway) used at night
    night_door_opens: int = 0
    night_devices: set[str] = field(default_factory=set)  # devices other than PIRs counted at night so far
    out_ms: int = 0
    temperature_sum: float = 0.0
    temperature_n: int = 0
    longest_still_ms: int = 0
    # local hour of day -> the longest still spell (at home, awake) that overlapped that hour, in ms
    still_by_hour: list[int] = field(default_factory=lambda: [0] * 24)
    kitchen_by_hour: dict[int, int] = field(default_factory=dict)  # hours since getting up -> kitchen events so far
    active_hours: set[int] = field(default_factory=set)  # local hours of day with any movement

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A day saved before a field existed gets that field's default, so older state files still load.
        _fill_defaults(self, state)
        self.__dict__.update(state)

    def features(self) -> dict[str, float]:
        features: dict[str, float] = {
            "wake_min": self.wake_min,
            "motion_count": float(self.motion_count),
            "kitchen_visits": float(self.kitchen_visits),
            "kettle_uses": float(self.kettle_uses),
            "fridge_opens": float(self.fridge_opens),
            "bathroom_day": float(self.bathroom_day),
            "bathroom_night": float(self.bathroom_night),
            "night_activity": float(self.night_activity + self.night_door_opens),
            "out_min": self.out_ms / MINUTE_MS,
        }
        if self.bedtime_min is not None:
            features["bedtime_min"] = self.bedtime_min
        if self.temperature_n:
            features["temperature_c"] = self.temperature_sum / self.temperature_n
        return features

    @property
    def kitchen_events(self) -> int:
        return self.kitchen_visits + self.kettle_uses + self.fridge_opens


# Presence's fields as the tracker named them before they became ``HomeTracker.presence``.
_PRESENCE_FIELDS = {"device_state": "device_state", "motion_since": "motion_since", "while_out": "while_out",
                    "last_activity_ms": "last_activity_ms", "last_front_door_ms": "last_door_ms",
                    "out_since_ms": "out_since_ms"}


@dataclass
class HomeTracker:
    """Where the resident is in their day: asleep or up, home or out, and the current ``HomeDay``."""

    timezone: str
    has_bed_sensor: bool = False
    day: HomeDay | None = None
    asleep: bool = True
    bed_occupied: bool | None = None
    bed_left_ms: int | None = None  # candidate getting-up time
    bed_entered_ms: int | None = None  # candidate bedtime
    # devices' last states, her last activity, the front door, out or in: in serve, the care rules' own object
    presence: Presence = field(default_factory=Presence)
    room_last_ms: dict[str, int] = field(default_factory=dict)
    kettle_on: bool = False
    doors_open: dict[str, bool] = field(default_factory=dict)
    motion_on: dict[str, bool] = field(default_factory=dict)  # PIR device id -> last reported state
    pending_wake_ms: int | None = None  # a first sign of getting up, waiting for a second
    last_up_ms: int | None = None  # her last activity outside the bedroom, bathroom and hallway

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A tracker saved before a field existed gets that field's default, so older state files still load.
        state = self.upgrade_saved(state)
        state.pop("last_motion_ms", None)  # replaced by the presence's last activity
        _fill_defaults(self, state)
        self.__dict__.update(state)

    @staticmethod
    def upgrade_saved(fields: dict[str, Any]) -> dict[str, Any]:
        """A tracker saved before its presence was shared kept those fields among its own (``statecodec``)."""
        return Presence.gather(fields, _PRESENCE_FIELDS)

    # -- presence -------------------------------------------------------------------------------------------

    def is_out(self, now_ms: int) -> bool:
        return self.presence.is_out(now_ms)

    def still_for_ms(self, now_ms: int) -> int:
        last = self.presence.last_activity_ms
        return 0 if last is None else now_ms - last

    @property
    def last_activity_ms(self) -> int | None:
        return self.presence.last_activity_ms

    # -- events ---------------------------------------------------------------------------------------------

    def activity(self, seen: Seen) -> None:
        """A sign of life at ``seen.at_ms``, already in the presence (``Presence.observe``): track the longest
        stillness while awake and at home, against her activity before it, and the time she had been out."""
        ts_ms, day, last, door = seen.at_ms, self.day, seen.before_ms, seen.door_before_ms
        if day is not None and not self.asleep and last is not None:
            went_out = door is not None and last <= door
            if not went_out:
                spell = ts_ms - last
                day.longest_still_ms = max(day.longest_still_ms, spell)
                for moment in range(last, ts_ms + HOUR_MS, HOUR_MS):
                    hour = local_minute(min(moment, ts_ms), self.timezone)[0] // 60
                    day.still_by_hour[hour] = max(day.still_by_hour[hour], spell)
        out = seen.out_since_ms
        if out is not None and day is not None:
            day.out_ms += max(0, ts_ms - out)
            # Hours spent out count as "accounted for": the hour-of-day profile is about movement at home.
            for moment in range(out, ts_ms + 1, HOUR_MS // 2):
                day.active_hours.add(local_minute(moment, self.timezone)[0] // 60)

    def seen_in(self, seen: Seen, room: str | None, minute: int) -> None:
        """She did something in ``room`` (a PIR saw her, a door or cupboard moved, an appliance came on)."""
        self.activity(seen)
        ts_ms = seen.at_ms
        if room not in NIGHT_ROOMS_EXCLUDED:
            self.last_up_ms = ts_ms
        previous = self.room_last_ms.get(room or "other")
        self.room_last_ms[room or "other"] = ts_ms
        new_visit = previous is None or ts_ms - previous > VISIT_GAP_MS
        day = self.day
        if day is None:
            return
        day.motion_count += 1
        if room == "bathroom":
            day.bathroom_motion += 1
        day.active_hours.add(minute // 60)
        if self.asleep:
            if room == "bathroom" and new_visit and day.bedtime_ms is not None:
                day.bathroom_night += 1
            return
        if room == "bathroom" and new_visit:
            day.bathroom_day += 1
        if room == "kitchen" and new_visit:
            day.kitchen_visits += 1
            self._kitchen_tick(ts_ms)

    def _kitchen_tick(self, ts_ms: int) -> None:
        day = self.day
        if day is not None:
            hour = max(0, (ts_ms - day.wake_ms) // HOUR_MS)
            day.kitchen_by_hour[int(hour)] = day.kitchen_events

    def night_use(self, device: str, room: str | None, motion: bool) -> None:
        """Something used outside the bedroom and bathroom after bedtime (any device: a PIR, the fridge, a
        cupboard, an appliance): night-time activity. A PIR counts each time it sees movement again (walking
        back and forth is wandering); any other device counts once a night (a chair mat flickering under a
        restless sleeper or a cat, a cupboard's opening and its closing, is one thing used)."""
        day = self.day
        if self.asleep and day is not None and day.bedtime_ms is not None and room not in NIGHT_ROOMS_EXCLUDED:
            if not motion:
                if device in day.night_devices:
                    return
                day.night_devices.add(device)
            day.night_activity += 1
            day.night_rooms.add(room or "other")

    def front_door(self, seen: Seen, opened: bool) -> None:
        """The front door moved (a change: the caller drops check-ins)."""
        self.activity(seen)
        self.last_up_ms = seen.at_ms
        if not opened:
            return
        day = self.day
        if day is not None and self.asleep and day.bedtime_ms is not None:
            day.night_door_opens += 1

    def fridge_opened(self, ts_ms: int) -> None:
        if self.day is not None and not self.asleep:
            self.day.fridge_opens += 1
            self._kitchen_tick(ts_ms)

    def kettle_on_now(self, ts_ms: int) -> None:
        if self.day is not None and not self.asleep:
            self.day.kettle_uses += 1
            self._kitchen_tick(ts_ms)

    def temperature(self, value: float) -> None:
        if self.day is not None:
            self.day.temperature_sum += value
            self.day.temperature_n += 1

    def bed(self, seen: Seen, occupied: bool, minute: int) -> None:
        if self.bed_occupied is occupied:
            return  # a check-in repeating the state, not a change
        self.bed_occupied = occupied
        self.activity(seen)
        ts_ms = seen.at_ms
        if occupied:
            self.bed_left_ms = None
            if not self.asleep and (minute >= EARLIEST_BED_MIN or minute < EARLIEST_WAKE_MIN):
                self.bed_entered_ms = ts_ms
        else:
            self.bed_entered_ms = None
            if self.asleep and minute >= EARLIEST_WAKE_MIN and minute < 20 * 60:
                self.bed_left_ms = ts_ms

    def pending_wake(self, now_ms: int) -> int | None:
        """The getting-up time once it is confirmed (out of bed for ``CONFIRM_MS``), else None."""
        if self.bed_left_ms is not None and now_ms - self.bed_left_ms >= CONFIRM_MS:
            return self.bed_left_ms
        return None

    def pending_bedtime(self, now_ms: int) -> int | None:
        if self.bed_entered_ms is not None and now_ms - self.bed_entered_ms >= CONFIRM_MS:
            return self.bed_entered_ms
        return None

    def start_day(self, wake_ms: int) -> HomeDay | None:
        """Begin a new routine day at ``wake_ms``; returns the day that ends."""
        ended = self.day
        minute, weekend = local_minute(wake_ms, self.timezone)
        self.day = HomeDay(wake_ms=wake_ms, wake_min=float(minute), weekend=weekend)
        self.asleep = False
        self.bed_left_ms = None
        self.day.active_hours.add(minute // 60)
        return ended

    def go_to_bed(self, bedtime_ms: int) -> None:
        self.asleep = True
        self.bed_entered_ms = None
        if self.day is not None:
            minute, _ = local_minute(bedtime_ms, self.timezone)
            # After midnight counts as late evening of the same routine day.
            self.day.bedtime_min = float(minute + (1440 if minute < EARLIEST_WAKE_MIN else 0))
            self.day.bedtime_ms = bedtime_ms
