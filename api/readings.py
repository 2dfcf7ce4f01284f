"""``GET /api/v1/readings``: one device's time series from InfluxDB, bounded and paginated.

The device must be in the registry (its domain names the measurement) and visible to the caller, and only the points
stored under the device's current subject are returned: a device moved to another home (or bed) keeps its id, but
what it recorded for the previous resident stays with that home (the ``subject`` tag each point was stored under),
so neither today's care team nor the audit log ever confuses the two. A request covers at most ``MAX_RANGE_DAYS``,
within the times InfluxDB can store (1677–2262), and returns at most ``limit`` rows (each row one timestamp, with
one point per metric); ``next_cursor`` continues after the last row. Every identifier and string in the InfluxQL is
quoted and escaped here, and metric names are checked against ``devices.readings.METRIC_UNITS`` first, so no request
text reaches InfluxDB unescaped. This module must not write anything except the audit row for home data.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.deps import Caller, Ctx, refuse_out_of_scope
from api.problems import AUTH_ERRORS, Problem
from api.timefmt import now_ms, rfc3339, to_ms
from devices.readings import METRIC_UNITS
from devices.topics import DEVICE_ID_RE
from placesense.basics.errors import PermanentStorageError

router = APIRouter(tags=["readings"])

MAX_RANGE_DAYS = 31
DEFAULT_RANGE = timedelta(hours=24)
MAX_ROWS = 10_000
DEFAULT_ROWS = 1_000
# battery_pct is a field of every point too; seq is bookkeeping, not a measurement.
READABLE_METRICS = frozenset(METRIC_UNITS) | {"battery_pct"}


class Point(BaseModel):
    ts: str = Field(description="RFC 3339, UTC")
    metric: str
    value: float


class ReadingsPage(BaseModel):
    points: list[Point]
    next_cursor: str | None = Field(default=None, description="pass as ?cursor= to get the rows after these")


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(text: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _encode_cursor(after_ms: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": after_ms})).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = data["after"]
        if isinstance(after, bool) or not isinstance(after, int) or not EARLIEST_MS <= after < LATEST_MS:
            raise ValueError
        return after
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise Problem(422, "cursor is not one this API returned; start again without it",
                      kind="invalid-parameters") from exc


def _time_bound(value: datetime | None, name: str) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise Problem(422, f"{name} needs a time zone: end it with Z or an offset like +01:00",
                      kind="invalid-parameters")
    stamp = to_ms(value)
    if not EARLIEST_MS <= stamp <= LATEST_MS:
        raise Problem(400, f"{name} is outside the times readings can have (1677-09-21 to 2262-04-11)",
                      kind="time-out-of-range")
    return stamp


# InfluxDB stores nanoseconds since 1970 in a signed 64-bit integer: 1677-09-21 to 2262-04-11.
EARLIEST_MS = -(2**63) // 1_000_000 + 1
LATEST_MS = (2**63 - 1) // 1_000_000


def build_query(
    measurement: str, device_id: str, subject: str, metric: str | None, start_ms: int, end_ms: int, rows: int
) -> str:
    fields = quote_ident(metric) if metric else "*"
    return (
        f"SELECT {fields} FROM {quote_ident(measurement)} "
        f"WHERE {quote_ident('device')} = {quote_string(device_id)} "
        f"AND {quote_ident('subject')} = {quote_string(subject)} "
        f"AND time >= {start_ms}ms AND time < {end_ms}ms ORDER BY time ASC LIMIT {rows}"
    )


# The query parameters ``/api/v1/readings`` and its CSV twin (``api.exports``) share.
DeviceParam = Annotated[str, Query(pattern=DEVICE_ID_RE.pattern, description="device id from the registry")]
MetricParam = Annotated[str | None, Query(max_length=64, description="one metric; all if omitted")]
StartParam = Annotated[datetime | None, Query(description="RFC 3339; default end − 24 h; range at most 31 days")]
EndParam = Annotated[datetime | None, Query(description="RFC 3339, exclusive; default now")]


@router.get("/api/v1/readings", response_model=ReadingsPage, responses=AUTH_ERRORS)
def readings(
    request: Request,
    ctx: Ctx,
    caller: Caller,
    device: DeviceParam,
    metric: MetricParam = None,
    start: StartParam = None,
    end: EndParam = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS, description="at most this many timestamps per page")] = DEFAULT_ROWS,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
) -> ReadingsPage:
    """A device's readings, oldest first."""
    spec = ctx.service.registry.devices.get(device)
    # Same answer for "no such device" and "not yours", so a token cannot probe which devices exist.
    if spec is None or not caller.may_read_readings(spec):
        if spec is not None and spec.domain == "home":
            refuse_out_of_scope(ctx, caller, request, spec.subject)
        raise Problem(404, f"no device {device!r} that this token may read", kind="unknown-device")
    metric = metric or None  # "?metric=" from a form means "all metrics", as omitting it does
    if metric is not None and metric not in READABLE_METRICS:
        raise Problem(422, f"unknown metric {metric!r}; known metrics: {', '.join(sorted(READABLE_METRICS))}",
                      kind="invalid-parameters")
    end_bound = _time_bound(end, "end")
    end_ms = now_ms() if end_bound is None else end_bound
    start_ms = _time_bound(start, "start")
    if start_ms is None:
        start_ms = end_ms - int(DEFAULT_RANGE.total_seconds() * 1000)
    if start_ms >= end_ms:
        raise Problem(422, "start must be before end", kind="invalid-parameters")
    if end_ms - start_ms > MAX_RANGE_DAYS * 86_400_000:
        raise Problem(422, f"the time range is longer than {MAX_RANGE_DAYS} days; ask for less and page through",
                      kind="range-too-long")
    if cursor is not None:
        start_ms = max(start_ms, _decode_cursor(cursor) + 1)

    if spec.domain == "home":
        ctx.audit.record(caller, "readings", [spec.subject], detail=device)
    query = build_query(spec.domain, spec.id, spec.subject, metric, start_ms, end_ms, limit + 1)
    try:
        series = ctx.service.influx.series(query)
    except PermanentStorageError as exc:
        if "database not found" in str(exc):
            return ReadingsPage(points=[])  # nothing has been written yet
        raise
    return _page(series, metric, limit)


def _page(series: list[dict[str, Any]], metric: str | None, limit: int) -> ReadingsPage:
    rows: list[tuple[int, dict[str, Any]]] = []
    for one in series:
        columns = one["columns"]
        for values in one.get("values", []):
            row = dict(zip(columns, values, strict=True))
            rows.append((int(row.pop("time")), row))
    rows.sort(key=lambda r: r[0])
    more = len(rows) > limit
    rows = rows[:limit]
    points = []
    for ts_ms, row in rows:
        ts = rfc3339(ts_ms) or ""
        for name in sorted(row):
            value = row[name]
            if (metric is None and name not in READABLE_METRICS) or value is None or isinstance(value, bool | str):
                continue  # tags (device, subject, room, source) and seq come back with SELECT *
            points.append(Point(ts=ts, metric=name, value=float(value)))
    return ReadingsPage(points=points, next_cursor=_encode_cursor(rows[-1][0]) if more and rows else None)
