"""Personal data in InfluxDB: one home's points found, exported, counted and erased, and old points expired.

The queries behind ``placesense privacy`` (UK GDPR subject access and erasure, retention). A home is the
``subject`` tag of its points; its id goes into the query as an escaped string literal. This module must not
decide what to erase or when (the privacy controls do), and must not touch any other store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from placesense.storage.influx import InfluxClient
from placesense.storage.influxql import quote_ident, quote_string

_EVERY_MEASUREMENT = "/.*/"


def _of_home(home_id: str) -> str:
    return f"WHERE {quote_ident('subject')} = {quote_string(home_id)}"


def _before(cutoff_ms: int) -> str:
    stamp = datetime.fromtimestamp(cutoff_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"WHERE time < {quote_string(stamp)}"


def _points(series: list[dict[str, Any]]) -> int:
    """The number of points behind a ``count(*)``: one count per field, and the largest is the number of points
    (every point has at least one field)."""
    total = 0
    for one in series:
        row = one["values"][0]
        total += max((int(v or 0) for c, v in zip(one["columns"], row, strict=True) if c != "time"), default=0)
    return total


def home_device_ids(client: InfluxClient, home_id: str) -> set[str]:
    """The device ids InfluxDB holds points of for ``home_id`` (removed devices too)."""
    query = f"SHOW TAG VALUES WITH KEY = {quote_ident('device')} {_of_home(home_id)}"
    return {str(value) for series in client.series(query) for _key, value in series.get("values", [])}


def home_points(client: InfluxClient, home_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every point stored for ``home_id``, per measurement: a dict of its columns (``time`` in epoch ms, tags and
    fields) without the empty ones (a point carries only its own metrics; nulls are other points' columns)."""
    points: dict[str, list[dict[str, Any]]] = {}
    for series in client.series(f"SELECT * FROM {_EVERY_MEASUREMENT} {_of_home(home_id)}"):
        columns = series["columns"]
        rows = [
            {c: v for c, v in zip(columns, values, strict=True) if v is not None}
            for values in series.get("values", [])
        ]
        points.setdefault(series["name"], []).extend(rows)
    return points


def count_home_points(client: InfluxClient, home_id: str) -> int:
    """How many points are stored for ``home_id``, over every measurement."""
    return _points(client.series(f"SELECT count(*) FROM {_EVERY_MEASUREMENT} {_of_home(home_id)}"))


def erase_home(client: InfluxClient, home_id: str) -> None:
    """Erase every point of ``home_id``: ``DROP SERIES`` removes the series' index entries as well as the points,
    in every retention policy."""
    client.query(f"DROP SERIES FROM {_EVERY_MEASUREMENT} {_of_home(home_id)}")


def count_points_before(client: InfluxClient, measurement: str, cutoff_ms: int) -> int:
    """How many points of ``measurement`` are older than ``cutoff_ms``."""
    return _points(client.series(f"SELECT count(*) FROM {quote_ident(measurement)} {_before(cutoff_ms)}"))


def delete_points_before(client: InfluxClient, measurement: str, cutoff_ms: int) -> None:
    """Delete the points of ``measurement`` older than ``cutoff_ms``."""
    client.query(f"DELETE FROM {quote_ident(measurement)} {_before(cutoff_ms)}")
