"""Time on the wire: RFC 3339 in UTC with milliseconds, the one format every API response uses."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(ts_ms: int | None) -> str | None:
    if ts_ms is None:
        return None
    stamp = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_ms(stamp: datetime) -> int:
    return int(stamp.timestamp() * 1000)


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)
