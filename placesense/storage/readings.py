"""Stored readings read back from InfluxDB, for rebuilding what a restart lost (``placesense.evaluation_core``).

The evaluation's saved state normally carries every window the rules keep. When a part of it could not be
restored (a damaged or missing file), the windows that only span recent hours — the DAQI running means — can be
filled again from what InfluxDB holds. This module builds the query and turns its rows back into ``Reading``s; it
must not interpret metrics or decide anything about them.
"""

from __future__ import annotations

from collections.abc import Sequence

from devices.readings import Domain, Reading
from devices.registry import Registry
from ingest.influx import InfluxClient


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def recent_readings(
    client: InfluxClient, registry: Registry, domain: Domain, metrics: Sequence[str], start_ms: int, end_ms: int
) -> list[Reading]:
    """The readings of ``domain``'s registered devices with any of ``metrics`` between the two times, oldest
    first (a device's reading carries only the metrics it had)."""
    fields = ", ".join(_ident(m) for m in metrics)
    query = (
        f"SELECT {fields} FROM {_ident(domain)} WHERE time >= {int(start_ms)}ms AND time <= {int(end_ms)}ms "
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
            values = {c: float(v) for c, v in zip(columns[1:], row[1:], strict=True)
                      if isinstance(v, int | float) and not isinstance(v, bool)}
            if values and isinstance(row[0], int):
                readings.append(Reading(domain, device.id, device.subject, device.room, row[0], values))
    readings.sort(key=lambda r: r.ts_ms)
    return readings
