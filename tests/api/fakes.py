"""Stand-ins for the parts other rooms are still building (alert store, rules' lists, routine), shaped like the
interfaces ``api.alerts``, ``api.flowerbeds``, ``api.air`` and ``api.homes`` document. Replace with the real
parts once ``rules`` and ``anomaly`` put them on the Service.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    rule: str
    audience: str
    subject: str
    severity: str
    state: str
    opened_ms: int
    updated_ms: int
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    history: tuple[dict[str, Any], ...] = ()


class FakeAlerts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alerts: dict[int, Alert] = {}
        self._ids = itertools.count(1)
        self._subscribers: list[Callable[[Any], None]] = []

    def raise_alert(self, rule: str, audience: str, subject: str, message: str, severity: str = "warning") -> Alert:
        with self._lock:
            alert = Alert(next(self._ids), rule, audience, subject, severity, "open", 1_700_000_000_000,
                          1_700_000_000_000, message, {"minutes": 42})
            self._alerts[alert.id] = alert
        self._publish(alert)
        return alert

    def _publish(self, alert: Alert) -> None:
        for callback in list(self._subscribers):
            callback(alert)

    def list(self, *, audience: str | None = None, state: str | None = None, subject: str | None = None) -> list[Alert]:
        with self._lock:
            alerts = sorted(self._alerts.values(), key=lambda a: -a.id)
        return [
            a for a in alerts
            if (audience is None or a.audience == audience)
            and (state is None or a.state == state)
            and (subject is None or a.subject == subject)
        ]

    def get(self, alert_id: int | str) -> Alert | None:
        return self._alerts.get(int(alert_id)) if str(alert_id).isdigit() else None

    def _change(self, alert_id: int | str, state: str, by: str, note: str | None) -> Alert:
        with self._lock:
            alert = self._alerts.get(int(alert_id))
            if alert is None:
                raise LookupError(alert_id)
            if alert.state == "resolved":
                raise ValueError("it is already resolved")
            entry = {"at_ms": 1_700_000_100_000, "by": by, "action": state, "note": note}
            alert = replace(alert, state=state, history=(*alert.history, entry))
            self._alerts[alert.id] = alert
        self._publish(alert)
        return alert

    def acknowledge(self, alert_id: int | str, *, by: str, note: str | None = None) -> Alert:
        return self._change(alert_id, "acknowledged", by, note)

    def resolve(self, alert_id: int | str, *, by: str, note: str | None = None) -> Alert:
        return self._change(alert_id, "resolved", by, note)

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)


@dataclass(frozen=True, slots=True)
class Need:
    bed_id: str
    name: str
    status: str
    moisture_pct: float
    dry_below_pct: float
    hours_to_threshold: float
    predicted_dry_ms: int | None
    drying_pct_per_hour: float | None
    last_reading_ms: int
    lat: float
    lon: float


class FakeRules:
    def watering_list(self, now_ms: int) -> list[Need]:
        return [
            Need("bed-01", "Rose bed", "now", 18.0, 25.0, 0.0, None, -0.4, now_ms - 60_000, 53.0400, -2.9900),
            Need("bed-03", "Far bed", "now", 22.0, 25.0, 0.0, None, -0.3, now_ms - 60_000, 53.0500, -2.9900),
            Need("bed-02", "Near bed", "soon", 27.0, 25.0, 5.0, now_ms + 5 * 3_600_000, -0.4, now_ms, 53.0401, -2.9901),
        ]

    def air_quality(self) -> list[dict[str, Any]]:
        return [
            {
                "site_id": "air-01", "name": "High Street", "index": 4, "band": "Moderate",
                "updated_ms": 1_700_000_000_000,
                "pollutants": [
                    {"metric": "no2_ugm3", "label": "NO2", "averaging_hours": 1, "mean_ugm3": 210.0, "index": 4,
                     "band": "Moderate", "complete": True},
                ],
            }
        ]


class FakeRoutine:
    def routine_today(self, home_id: str) -> dict[str, Any]:
        return {"home_id": home_id, "wake_time": "07:55", "usual_wake": ["07:40", "08:30"], "warmed_up": True}
