"""Retention: how long each kind of data is kept, and deleting (or counting) what is older.

``Retention`` holds the periods (the defaults are the documented ones, docs/security.md), ``load_retention``
reads them from a YAML or TOML file, and ``apply_retention`` deletes InfluxDB points, dead letters and resolved
alerts older than their period, or only counts them. It works by age and kind alone: it must not single out a
home (``erasure`` does) and never touches an open or acknowledged alert.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import and_, delete, func, select

from placesense.basics.errors import ConfigError
from placesense.basics.timeunits import DAY_MS
from placesense.storage import erasure
from placesense.tools.privacy.stores import PrivacyStores


class Retention(BaseModel):
    """How long each kind of data is kept, in days. The defaults are the documented ones (docs/security.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home_days: int = Field(default=90, ge=1, description="raw home events (motion, doors, power, climate)")
    soil_days: int = Field(default=400, ge=1, description="flowerbed soil readings (a year and a season to compare)")
    air_days: int = Field(default=400, ge=1, description="street air-quality readings")
    dead_letter_days: int = Field(default=30, ge=1, description="refused messages, with their raw payloads")
    resolved_alert_days: int = Field(default=730, ge=1, description="resolved alerts and their history")

    def measurement_days(self) -> dict[str, int]:
        return {"home": self.home_days, "soil": self.soil_days, "air": self.air_days}


def load_retention(path: Path | None) -> Retention:
    """The ``retention`` section of a YAML or TOML file (``.toml`` by suffix), or the defaults without a file."""
    if path is None:
        return Retention()
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the retention file {path}: {exc}") from exc
    section = data.get("retention", {}) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: expected a 'retention' mapping")
    try:
        return Retention.model_validate(section)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: invalid retention: {problems}") from exc


def apply_retention(
    stores: PrivacyStores, retention: Retention, *, now_ms: int | None = None, apply: bool = True
) -> dict[str, int]:
    """Delete what is older than its retention period; with ``apply=False`` only count it. Returns counts."""
    from ingest.deadletters import dead_letters
    from placesense.alerts.store import delete_dependents
    from placesense.alerts.tables import alerts_table

    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    report: dict[str, int] = {}
    for measurement, days in retention.measurement_days().items():
        cutoff_ms = now_ms - days * DAY_MS
        report[f"influx.{measurement}"] = erasure.count_points_before(stores.influx, measurement, cutoff_ms)
        if apply and report[f"influx.{measurement}"]:
            erasure.delete_points_before(stores.influx, measurement, cutoff_ms)
    old_letters = dead_letters.c.received_ms < now_ms - retention.dead_letter_days * DAY_MS
    old_alerts = and_(
        alerts_table.c.state == "resolved",
        alerts_table.c.updated_at < now_ms - retention.resolved_alert_days * DAY_MS,
    )
    with stores.mapped(), stores.engine.begin() as conn:
        report["dead_letters"] = int(
            conn.execute(select(func.count()).select_from(dead_letters).where(old_letters)).scalar_one()
        )
        report["resolved_alerts"] = int(
            conn.execute(select(func.count()).select_from(alerts_table).where(old_alerts)).scalar_one()
        )
        if apply:
            conn.execute(delete(dead_letters).where(old_letters))
            ids = select(alerts_table.c.id).where(old_alerts)
            delete_dependents(conn, ids)
            conn.execute(delete(alerts_table).where(old_alerts))
    return report
