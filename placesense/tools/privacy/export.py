"""Subject access: everything held about one home as one JSON document, and the audit log as JSON lines.

``export_home`` gathers a home's registry entry, readings, alerts with their history, what was sent to staff about
them, dead letters, device status, discovered devices and its saved evaluation state (``home_state``, the one
place that reads a home's entries in the state folder), and records the disclosure in the audit log.
``export_audit`` writes the whole audit log to a private file. This module must not delete or change anything it
exports; staff's numbers and addresses (third parties' data) stay out of an export.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from devices.registry import Registry
from placesense.basics.errors import StorageError
from placesense.basics.files import write_private
from placesense.storage import erasure
from placesense.tools.privacy.stores import PrivacyStores, check_home_id


def export_home(stores: PrivacyStores, home_id: str, *, operator: str = "") -> dict[str, Any]:
    """Everything held about one home, as one JSON-ready document (a subject-access request)."""
    from api.auth import Principal
    from ingest.deadletters import dead_letters, discovered_devices
    from ingest.devicestate import device_status

    home_id = check_home_id(home_id)
    devices = stores.home_devices(home_id)
    home = stores.registry.homes.get(home_id)
    readings = erasure.home_points(stores.influx, home_id)
    for row in (row for rows in readings.values() for row in rows):
        row["time"] = _rfc3339(int(row["time"]))
    with stores.mapped(), stores.engine.connect() as conn:
        letters = [dict(r._mapping) for r in conn.execute(
            select(dead_letters).where(stores.letters_of(home_id, devices)).order_by(dead_letters.c.id)
        )]
        statuses = [dict(r._mapping) for r in conn.execute(
            select(device_status).where(device_status.c.device_id.in_(devices))
        )]
        discovered = [dict(r._mapping) for r in conn.execute(
            select(discovered_devices).where(stores.discovered_of(home_id))
        )]
    alerts = stores.alerts.query(subject=home_id, limit=1_000_000)
    notifications = _notifications_about(stores, [a.id for a in alerts])
    document = {
        "exported_at": _rfc3339(time.time_ns() // 1_000_000),
        "home_id": home_id,
        "registry": {
            "home": home.model_dump(mode="json") if home else None,
            "devices": [
                d.model_dump(mode="json", exclude_none=True)
                for d in stores.registry.devices.values() if d.subject == home_id
            ],
        },
        "readings": readings,
        "alerts": [dataclasses.asdict(a) for a in alerts],
        "notifications": notifications,
        "dead_letters": letters,
        "device_status": statuses,
        "discovered_devices": discovered,
        "learned_routine": home_state(stores.state_dir, stores.registry, home_id),
        "notes": (
            "Times are UTC. Readings are kept for a limited period (see docs/security.md); learned_routine is "
            "the statistical model of the home's usual day that routine-change alerts are based on."
        ),
    }
    stores.audit.record(Principal(operator or "privacy-cli", "admin"), "privacy.export", [home_id])
    return dict(_jsonable(document))


def _notifications_about(stores: PrivacyStores, alert_ids: list[int]) -> list[dict[str, Any]]:
    """What was sent to staff about these alerts: channel, when, the words, whether it arrived. Staff numbers
    and addresses are left out: they are third parties' data, not the resident's."""
    from placesense.alerts.tables import outbox_table

    if not alert_ids:
        return []
    with stores.mapped(), stores.engine.begin() as conn:
        rows = conn.execute(
            select(outbox_table.c.alert_id, outbox_table.c.action, outbox_table.c.channel,
                   outbox_table.c.payload, outbox_table.c.state, outbox_table.c.created_at)
            .where(outbox_table.c.alert_id.in_(alert_ids)).order_by(outbox_table.c.id)
        ).all()
    return [
        {"alert_id": alert_id, "action": action, "channel": channel, "state": state,
         "created_at": _rfc3339(created_at),
         "words": (payload or {}).get("text") or (payload or {}).get("message")}
        for alert_id, action, channel, payload, state, created_at in rows
    ]


def home_state(state_dir: Path, registry: Registry, home_id: str) -> dict[str, Any] | None:
    """What the state folder holds about one home, for an export: its routine today against what was learned, and
    the rules' and detectors' own records of it. The one place that reads a home's saved state."""
    from placesense.evaluation_core import export_saved_subject

    try:
        return export_saved_subject(state_dir, registry, home_id)
    except (OSError, StorageError) as exc:
        return {"error": f"cannot read the saved evaluation state: {exc}"}


def export_audit(stores: PrivacyStores, out: Path) -> int:
    """Write the whole audit log, oldest first, as JSON lines; return the number of entries."""
    entries = []
    before: int | None = None
    while batch := stores.audit.list(limit=5000, before_id=before):
        entries.extend(batch)
        before = batch[-1].id
    lines = [
        json.dumps(dataclasses.asdict(entry) | {"at": _rfc3339(entry.at_ms)}, ensure_ascii=False) + "\n"
        for entry in reversed(entries)
    ]
    write_private(out, "".join(lines).encode("utf-8"))  # who read which home's data: private too
    return len(entries)


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
