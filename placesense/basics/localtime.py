"""Local time for rules and messages: a home's own time zone (Europe/London by default, DST-aware).

Rules think in epoch milliseconds; people read "09:30". These helpers convert between the two and write
durations the way a carer says them ("3 h 10 min"). They must not hold state (beyond memoised pure conversions).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from placesense.basics.timeunits import MINUTE_MS

DEFAULT_TZ = "Europe/London"


@lru_cache(maxsize=64)
def zone(name: str = DEFAULT_TZ) -> ZoneInfo:
    return ZoneInfo(name)


def local(ts_ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=tz)


# Home rules ask for the same few local times of a day (window edges, deadlines; shared by homes in one zone) on
# every activity: remember them rather than build and convert a zoned datetime each time.
@lru_cache(maxsize=256)
def at_local(day: date, t: time, tz: ZoneInfo) -> int:
    """Epoch ms of local ``t`` on ``day`` (in a DST gap, the instant the clocks jump to)."""
    naive = datetime.combine(day, t)
    aware = naive.replace(tzinfo=tz)
    # Round-trip through UTC normalises a non-existent local time (spring forward) to a real instant.
    return int(aware.timestamp() * 1000)


def next_local(after_ms: int, t: time, tz: ZoneInfo) -> int:
    """The first instant strictly after ``after_ms`` whose local time of day is ``t``."""
    day = local(after_ms, tz).date()
    for offset in range(3):
        candidate = at_local(day + timedelta(days=offset), t, tz)
        if candidate > after_ms:
            return candidate
    raise AssertionError("unreachable: a local time occurs every day")


def day_of(ts_ms: int, day_starts: time, tz: ZoneInfo) -> date:
    """The local date a moment belongs to when days begin at ``day_starts`` (02:00 belongs to yesterday)."""
    moment = local(ts_ms, tz)
    return moment.date() if moment.time() >= day_starts else moment.date() - timedelta(days=1)


def hm(ts_ms: int, tz: ZoneInfo) -> str:
    return local(ts_ms, tz).strftime("%H:%M")


def minutes_of_day(ts_ms: int, tz: ZoneInfo) -> int:
    moment = local(ts_ms, tz)
    return moment.hour * 60 + moment.minute


def hm_of_minutes(minutes: float) -> str:
    whole = round(minutes)
    return f"{(whole // 60) % 24:02d}:{whole % 60:02d}"


def duration(ms: int) -> str:
    """'3 h 10 min', '45 min', '2 days 3 h'."""
    minutes = max(0, round(ms / MINUTE_MS))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h" if hours else f"{days} day{'s' if days != 1 else ''}"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"
