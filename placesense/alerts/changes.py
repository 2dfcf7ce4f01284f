"""What happened to an alert, as every publisher, the router and the outbox receive it: the ``AlertChange``
and the alert's JSON (for MQTT, webhooks and the event stream).

Below the lifecycle and everything that tells people, so they share these without importing each other. This
module only describes a change: it must not store, decide or send anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from placesense.alerts.store import Alert
from placesense.basics import texts

ChangeAction = Literal[
    "opened", "updated", "severity_raised", "escalated", "acknowledged", "resolved", "reminder", "repeated",
    "reopened",
]


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What happened to an alert, as publishers receive it."""

    action: ChangeAction
    alert: Alert


def _rfc3339(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_to_json(alert: Alert, action: str | None = None) -> dict[str, Any]:
    """The alert as JSON for MQTT, webhooks and the event stream (times in RFC 3339, UTC)."""
    body: dict[str, Any] = {
        "id": alert.id,
        "rule": alert.rule,
        "audience": alert.audience,
        "subject": alert.subject,
        "severity": alert.severity,
        "state": alert.state,
        "opened_at": _rfc3339(alert.opened_at_ms),
        "updated_at": _rfc3339(alert.updated_at_ms),
        "message": alert.message,
        "texts": texts.renderings(alert.text, alert.message),  # the message per language: en always, cy if built
        "evidence": dict(alert.evidence),
        "history": [
            {"at": _rfc3339(h.at_ms), "who": h.who, "action": h.action, "note": h.note, "severity": h.severity}
            for h in alert.history
        ],
    }
    if alert.device_id is not None:
        body["device_id"] = alert.device_id
    if action is not None:
        body["action"] = action
    return body
