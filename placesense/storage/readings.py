"""Stored readings read back from InfluxDB: every query the service runs over the readings ingest wrote.

Measurements are the domains (``home``, ``soil``, ``air``), tags the identity (``device``, ``subject``, ``room``,
``source``), fields the metrics (DESIGN.md). Each function here builds its InfluxQL (through
``placesense.storage.influxql``, so nothing reaches InfluxDB unescaped), runs it and returns typed rows:

- ``device_rows``: one device's points under one subject, for the readings API;
- ``activity_by_hour``: a home's events per room and hour, for the care team's timeline;
- ``newest_values``: each device's newest value of some metrics, for the device list;
- ``recent_readings``: a domain's readings as ``Reading``s, to rebuild windows a restart lost
  (``placesense.evaluation_core``).

Errors are the types of ``placesense.storage.errors``; a database not created yet raises ``DatabaseNotFound`` and
the caller decides whether that means "nothing yet". This module must not interpret metrics or decide anything
about them, and must not write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from devices.readings import DOMAINS, Domain, Reading
from devices.registry import Registry
from placesense.storage.influx import InfluxClient
from placesense.storage.influxql import quote_ident, quote_string


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One timestamp of a device's stored points: its numeric fields (metrics, ``battery_pct``, ``seq``); tags,
    text and empty columns are left out."""

    ts_ms: int
    values: dict[str, float]


@dataclass(frozen=True, slots=True)
class HourActivity:
    """What happened in one room of a home in one hour: the sum of each event field, the maximum power."""

    hour_ms: int
    room: str
    events: dict[str, float]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def device_rows_query(
    domain: str, device_id: str, subject: str, metric: str | None, start_ms: int, end_ms: int, rows: int
) -> str:
    """The InfluxQL of ``device_rows``."""
    fields = quote_ident(metric) if metric else "*"
    return (
        f"SELECT {fields} FROM {quote_ident(domain)} "
        f"WHERE {quote_ident('device')} = {quote_string(device_id)} "
        f"AND {quote_ident('subject')} = {quote_string(subject)} "
        f"AND time >= {start_ms}ms AND time < {end_ms}ms ORDER BY time ASC LIMIT {rows}"
    )


def device_rows(
    client: InfluxClient,
    domain: str,
    device_id: str,
    subject: str,
    metric: str | None,
    start_ms: int,
    end_ms: int,
    rows: int,
) -> list[StoredRow]:
    """At most ``rows`` timestamps of ``device_id``'s points stored under ``subject`` in [start, end), oldest
    first: ``metric`` alone, or every field when it is None."""
    found: list[StoredRow] = []
    for series in client.series(device_rows_query(domain, device_id, subject, metric, start_ms, end_ms, rows)):
        columns = series["columns"]
        for values in series.get("values", []):
            row = dict(zip(columns, values, strict=True))
            ts_ms = int(row.pop("time"))
            found.append(StoredRow(ts_ms, {name: float(v) for name, v in row.items() if _number(v)}))
    found.sort(key=lambda r: r.ts_ms)
    return found


def activity_by_hour(
    client: InfluxClient, home_id: str, counted: Sequence[str], peak: str, start_ms: int, end_ms: int
) -> list[HourActivity]:
    """Per room and hour of [start, end) in ``home_id``: the sum of each ``counted`` field (booleans are stored as
    1.0/0.0, so a sum counts the moments something happened) and the maximum of ``peak``. Hours with nothing stored
    are left out; a point without a room counts under ``other``."""
    sums = ", ".join(f"sum({quote_ident(f)}) AS {quote_ident(f)}" for f in counted)
    query = (
        f"SELECT {sums}, max({quote_ident(peak)}) AS {quote_ident(peak)} FROM {quote_ident('home')} "
        f"WHERE {quote_ident('subject')} = {quote_string(home_id)} AND time >= {start_ms}ms AND time < {end_ms}ms "
        f"GROUP BY time(1h), {quote_ident('room')}"
    )
    out: list[HourActivity] = []
    for series in client.series(query):
        room = str((series.get("tags") or {}).get("room") or "other")
        columns = series["columns"]
        for values in series.get("values", []):
            row = dict(zip(columns, values, strict=True))
            events = {k: float(v) for k, v in row.items() if k != "time" and v is not None}
            if events:
                out.append(HourActivity(int(row["time"]), room, events))
    return out


def newest_values(client: InfluxClient, metrics: Sequence[str], since_ms: int) -> dict[str, dict[str, float]]:
    """Per device id, the newest value of each of ``metrics`` it stored since ``since_ms`` (in any domain)."""
    fields = ", ".join(f"last({quote_ident(m)}) AS {quote_ident(m)}" for m in metrics)
    measurements = ", ".join(quote_ident(m) for m in DOMAINS)
    query = f"SELECT {fields} FROM {measurements} WHERE time >= {since_ms}ms GROUP BY {quote_ident('device')}"
    out: dict[str, dict[str, float]] = {}
    for series in client.series(query):
        device = str((series.get("tags") or {}).get("device") or "")
        for values in series.get("values", []):
            row = dict(zip(series["columns"], values, strict=True))
            found = {m: float(row[m]) for m in metrics if isinstance(row.get(m), int | float)}
            out.setdefault(device, {}).update(found)
    return out


def recent_readings(
    client: InfluxClient, registry: Registry, domain: Domain, metrics: Sequence[str], start_ms: int, end_ms: int
) -> list[Reading]:
    """The readings of ``domain``'s registered devices with any of ``metrics`` between the two times, oldest
    first (a device's reading carries only the metrics it had)."""
    fields = ", ".join(quote_ident(m) for m in metrics)
    query = (
        f"SELECT {fields} FROM {quote_ident(domain)} WHERE time >= {int(start_ms)}ms AND time <= {int(end_ms)}ms "
        "GROUP BY \"device\", \"subject\""
    )
    readings: list[Reading] = []
    for series in client.series(query):
        tags = series.get("tags", {})
        device = registry.devices.get(tags.get("device", ""))
        if device is None or device.domain != domain or device.subject != tags.get("subject"):
            continue  # a device removed or moved since: its old readings belong to no current subject
        columns = series["columns"]
        for row in series.get("values", []):
            values = {c: float(v) for c, v in zip(columns[1:], row[1:], strict=True) if _number(v)}
            if values and isinstance(row[0], int):
                readings.append(Reading(domain, device.id, device.subject, device.room, row[0], values))
    readings.sort(key=lambda r: r.ts_ms)
    return readings
