"""Simulated time: epoch milliseconds, local calendar days in the council's time zone, RFC 3339 text.

Residents live by the wall clock (wake at 07:30 local, summer time or not), while every timestamp on the wire
is UTC epoch milliseconds. This module converts between the two and nothing else; it must not know about
devices or behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from placesense.basics.timeunits import HOUR_MS

TOWN_TZ = ZoneInfo("Europe/London")


@dataclass(frozen=True, slots=True)
class Day:
    """One local calendar day. ``index`` 0 is the day that contains the simulation's start."""

    index: int
    date: date
    base_ms: int  # local midnight, using the day's midday UTC offset (see ``local_days``)
    next_base_ms: int

    def at(self, hours: float) -> int:
        """Epoch ms of ``hours`` after local midnight (may exceed 24 for the small hours of the next day)."""
        return self.base_ms + round(hours * HOUR_MS)

    def hour_of(self, ts_ms: int) -> float:
        return (ts_ms - self.base_ms) / HOUR_MS

    @property
    def is_weekend(self) -> bool:
        return self.date.weekday() >= 5


def local_days(start_ms: int, end_ms: int, before: int = 1, after: int = 1) -> list[Day]:
    """The local days covering ``[start_ms, end_ms)``, plus ``before``/``after`` days of margin.

    Each day's clock uses the UTC offset at its local midday: on the two nights a year the clocks change,
    events between midnight and 02:00 land an hour off, which no routine or rule can tell apart.
    """
    first = datetime.fromtimestamp(start_ms / 1000, tz=TOWN_TZ).date() - timedelta(days=before)
    last = datetime.fromtimestamp((end_ms - 1) / 1000, tz=TOWN_TZ).date() + timedelta(days=after)
    bases: list[tuple[date, int]] = []
    current = first
    while current <= last + timedelta(days=1):
        noon = datetime.combine(current, time(12), tzinfo=TOWN_TZ)
        offset = noon.utcoffset() or timedelta(0)
        midnight_utc = datetime.combine(current, time(0), tzinfo=UTC) - offset
        bases.append((current, int(midnight_utc.timestamp() * 1000)))
        current += timedelta(days=1)
    return [
        Day(index=i - before, date=bases[i][0], base_ms=bases[i][1], next_base_ms=bases[i + 1][1])
        for i in range(len(bases) - 1)
    ]


def rfc3339(ts_ms: int) -> str:
    """``2024-05-01T07:30:00.000Z``."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> int:
    """Epoch ms of an RFC 3339 / ISO 8601 time; a time without an offset is read as UTC."""
    stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def local_clock(ts_ms: int) -> str:
    """``HH:MM`` on the town's wall clock, for ground-truth details a person reads."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=TOWN_TZ).strftime("%H:%M")


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)
