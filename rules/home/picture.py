"""The per-home picture every home-care check reads: one home's day as the sensors showed it, and what has been
learned of her own normal, as plain data (saved as it is, ``placesense.evaluation_state``).

Where she is (devices' last states, her last activity, the front door, out or in) is its ``presence``, the
``rules.presence.Presence`` the rules observe and, in serve, the routine detector reads as well. Besides the dataclass:
the few facts every check asks of it (is she still in the night's sleep, which morning a moment's night leads to)
and how a change that is hers is written into it. This module holds no rule: it
must not read the rules config, set timers or build findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from devices.registry import DeviceSpec
from placesense.basics.localtime import at_local, local
from placesense.basics.memory import keep_last
from placesense.basics.timeunits import HOUR_MS
from rules.presence import Presence

NIGHT_FROM = time(18, 0)  # from here the night belongs to the next morning
SLEEP_STARTED_BEFORE = time(7, 0)  # a quiet spell that began after this is not the night's sleep
EARLIEST_WAKE = time(4, 0)
HISTORY_KEPT = 60  # days (or nights) of each learned history a home keeps


@dataclass(slots=True)
class HomePicture:
    """Everything the rules track and learn about one home: plain data only.

    State saved before home care was split into modules names this class ``rules.home:_Home``
    (``placesense.statecodec.RENAMED`` reads such files)."""

    tz: ZoneInfo
    # devices' last states, her last activity, the front door, out or in: in serve, the routine detector's too
    presence: Presence = field(default_factory=Presence)
    last_activity_room: str | None = None
    last_activity_device: str | None = None
    came_home_ms: int | None = None
    out_by_day: dict[date, int] = field(default_factory=dict)  # time out per (kitchen) day, the last few days
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
    # [night visits, all visits, night flushes, all flushes, visits soon after the one before, flushes soon after
    # the one before] (``rules.home.bathroom.VISIT_COUNTS``; state saved before the last two had four)
    visits: dict[date, list[int]] = field(default_factory=dict)
    visit_history: list[tuple[int, ...]] = field(default_factory=list)
    # the last few days' counts, learned only once they are older than a run of days the rule judges together,
    # so the first days of a rise are not already "usual" when the run is judged
    visits_pending: list[tuple[int, ...]] = field(default_factory=list)
    last_flush_ms: int | None = None
    last_visit_ms: int | None = None  # when the last bathroom visit began
    # the totals of the periods before this one, newest last: a rise that lasts several days adds up
    recent_totals: list[int] = field(default_factory=list)  # at most three
    recent_soon: list[int] = field(default_factory=list)  # the same for visits soon after the one before
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

    @staticmethod
    def upgrade_saved(fields: dict[str, Any]) -> dict[str, Any]:
        """A picture saved before its presence was shared kept those fields among its own (``statecodec``)."""
        return Presence.gather(fields, _PRESENCE_FIELDS)


# Presence's fields as the picture named them before they became ``HomePicture.presence``.
_PRESENCE_FIELDS = {name: name for name in ("device_state", "motion_since", "while_out", "last_activity_ms",
                                            "last_front_door_ms", "out_since_ms")}


def morning_of(ts_ms: int, tz: ZoneInfo) -> date:
    """The morning a moment's night leads to: from 18:00 the night belongs to the next day."""
    moment = local(ts_ms, tz)
    return moment.date() + timedelta(days=1) if moment.time() >= NIGHT_FROM else moment.date()


def asleep(home: HomePicture, now_ms: int, last_activity_ms: int | None = None) -> bool:
    """Still in the night's sleep: nothing outside the bedroom and bathroom since before 07:00, for at least
    an hour and for longer than any other quiet spell of this night (not a nap, not a quiet evening).
    ``last_activity_ms``: her last activity before the one being judged, which the presence already holds."""
    last = home.last_up_ms
    if last is None:
        last = last_activity_ms if last_activity_ms is not None else home.presence.last_activity_ms
    if last is None:
        return False
    morning = morning_of(now_ms, home.tz)
    ongoing = now_ms - last
    longest = home.night_longest_ms if home.night_of == morning else 0
    before_seven = last < at_local(local(now_ms, home.tz).date(), SLEEP_STARTED_BEFORE, home.tz)
    return before_seven and ongoing >= max(longest, HOUR_MS)


def motion_stopped(home: HomePicture, device: DeviceSpec, moved: int) -> None:
    """A PIR's "no motion": she was moving in its view until ``moved``, a minute or two ago (``Presence.observe``
    has it as her last activity)."""
    if device.room == "bathroom" and home.bath_last_ms is not None and moved > home.bath_last_ms:
        home.bath_last_ms = moved


def note_activity(home: HomePicture, device: DeviceSpec, room: str, ts: int) -> None:
    """Write a change that is hers into the picture: the hour she was active in, where she was, and her recent
    activity outside the bedroom (her last activity and the front door are the presence's, ``Presence.observe``)."""
    moment = local(ts, home.tz)
    home.active_hours[moment.date()] = home.active_hours.get(moment.date(), 0) | (1 << moment.hour)
    if len(home.active_hours) > 70:
        for old in sorted(home.active_hours)[:-62]:
            del home.active_hours[old]
    home.last_activity_room, home.last_activity_device = room, device.id
    if room != "bedroom":
        keep_last(home.recent_up_activity, ts, 30)
