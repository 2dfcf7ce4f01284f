"""The one alert lifecycle: open → acknowledged → resolved, for rules' and detectors' findings alike.

``AlertService.apply(finding)`` is the single entry point for findings (the rule engine's and the anomaly
detectors'). One alert is open per (rule, subject): a repeat updates its message, evidence and time, and raises
its severity if the repeat is more severe (never lowers it). A finding with ``active=False`` resolves the open
alert automatically — rules emit those only where the condition can clear by itself (a warm home again, a
device back online), never for events a person must look at (a help button, a night-time door).

``tick`` sends reminders: an alert still unacknowledged after its rule's escalation time is raised one severity
step and notified again, up to ``max_reminders`` times. ``ack`` and ``resolve`` are what people do, with a
note. Every change lands in the alert's history (who, when, what, note) in the same transaction, and is then
handed to the publishers (MQTT, webhooks, the in-process feed). Publishing happens after the commit; a failing
publisher is logged and never undoes or blocks the lifecycle.

This module decides; it must not evaluate readings or build network clients.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from placesense.alerts.changes import AlertChange, ChangeAction
from placesense.alerts.store import Alert, AlertStore
from placesense.basics.clock import Clock
from placesense.basics.errors import PlacesenseError
from placesense.basics.findings import Finding, Severity
from rules.config import RulesConfig

log = logging.getLogger(__name__)

SYSTEM = "placesense"
SEVERITY_ORDER: tuple[Severity, ...] = ("info", "warning", "critical")
REPEAT_FOLD_MS = 60_000  # new events on an open, unacknowledged alert within this of its last change are folded

__all__ = ["AlertNotFoundError", "AlertPublisher", "AlertService", "AlertStateError"]


class AlertNotFoundError(PlacesenseError):
    """No alert has this id."""


class AlertStateError(PlacesenseError):
    """The action does not apply to the alert's state (acknowledging a resolved alert)."""


class AlertPublisher(Protocol):
    """Something that tells people about alert changes. ``publish`` must return quickly (queue, don't wait)."""

    def publish(self, change: AlertChange) -> None: ...


class OutboxWriter(Protocol):
    """Where the messages a change owes are written, in the change's own transaction
    (``placesense.alerts.outbox``)."""

    def enqueue(self, conn: Any, change: AlertChange, at_ms: int, held: bool) -> int: ...

    def wake(self) -> None: ...


def _raised(a: Severity, b: Severity) -> Severity:
    return a if SEVERITY_ORDER.index(a) >= SEVERITY_ORDER.index(b) else b


EscalationPolicy = Callable[[Alert], int | None]


class AlertService:
    """Applies findings, people's actions and reminders to the alerts in ``store``."""

    def __init__(
        self,
        store: AlertStore,
        clock: Clock,
        config: RulesConfig | None = None,
        publishers: Sequence[AlertPublisher] = (),
        escalation: EscalationPolicy | None = None,
        outbox: OutboxWriter | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.clock = clock
        self.config = config or RulesConfig()
        self._publishers: list[AlertPublisher] = list(publishers)
        self._escalation = escalation or self._configured_escalation
        # One writer at a time in this process keeps "read the open alert, then change it" consistent; the
        # database's unique open_key still guards against a second process.
        self._lock = threading.RLock()
        self._quiet_since: dict[str, int] = {}
        self._ticked = False
        # With active/standby instances: called first in every transaction that applies the rules' findings or
        # sends reminders, and raises ``placesense.basics.term.Fenced`` once this instance no longer leads (its
        # successor
        # does that work). People's acknowledgements and the instance's own health alerts are not fenced.
        self.fence: Callable[[Any], None] | None = None

    def add_publisher(self, publisher: AlertPublisher) -> None:
        with self._lock:
            self._publishers.append(publisher)

    def _fenced(self, conn: Any, fenced: bool) -> None:
        if fenced and self.fence is not None:
            self.fence(conn)

    # -- findings ------------------------------------------------------------------------------------

    def apply(self, finding: Finding, *, fenced: bool = True) -> Alert | None:
        """Open, update or resolve the alert of (finding.rule, finding.subject). Returns it, or ``None`` when
        a cleared condition had no open alert."""
        with self._lock:
            with self.store.transaction() as conn:
                self._fenced(conn, fenced)
                existing = self.store.find_open(conn, finding.rule, finding.subject)
                change = self._apply(conn, existing, finding)
                if change is not None:
                    self._enqueue(conn, change)
            if change is None:
                return existing if finding.active else None
            self._notify(change)
            return change.alert

    def apply_all(self, findings: Iterable[Finding], *, fenced: bool = True) -> list[Alert]:
        """Apply findings in order, in one transaction: one commit (and one fsync) per batch of readings
        rather than per finding, so a burst of findings does not slow ingest down."""
        findings = list(findings)
        if len(findings) <= 1:
            return [alert for alert in (self.apply(f, fenced=fenced) for f in findings) if alert is not None]
        results: list[Alert] = []
        changes: list[AlertChange] = []
        with self._lock:
            with self.store.transaction() as conn:
                self._fenced(conn, fenced)
                for finding in findings:
                    existing = self.store.find_open(conn, finding.rule, finding.subject)
                    change = self._apply(conn, existing, finding)
                    if change is not None:
                        self._enqueue(conn, change)
                        changes.append(change)
                        results.append(change.alert)
                    elif finding.active and existing is not None:
                        results.append(existing)
            for change in changes:
                self._notify(change)
        return results

    def _apply(self, conn: Any, existing: Alert | None, finding: Finding) -> AlertChange | None:
        if not finding.active:
            if existing is None:
                return None
            alert = self.store.change(
                conn,
                existing,
                at_ms=finding.at_ms,
                who=SYSTEM,
                action="resolved",
                note=finding.message,
                state="resolved",
            )
            return AlertChange("resolved", alert)
        if existing is None:
            alert = self.store.insert(
                conn,
                rule=finding.rule,
                audience=finding.audience,
                subject=finding.subject,
                severity=finding.severity,
                at_ms=finding.at_ms,
                message=finding.message,
                evidence=finding.evidence,
                device_id=finding.device_id,
                who=SYSTEM,
                note=finding.message,
                text=finding.text,
            )
            return AlertChange("opened", alert)
        severity = _raised(existing.severity, finding.severity)
        values: dict[str, Any] = {"message": finding.message, "evidence": finding.evidence, "text": finding.text}
        if finding.device_id is not None:
            values["device_id"] = finding.device_id
        if finding.new_event:
            # Every new event after an acknowledgement counts, even within the same minute and with the same words:
            # acknowledged means someone is on the way, and she pressed again. While nobody has acknowledged, the
            # alert is already open and being escalated: presses within a minute of its last change are folded into
            # it (a stuck button must not write a history row a second). Reminders start over from a new event.
            if existing.state == "open" and finding.at_ms - existing.updated_at_ms < REPEAT_FOLD_MS:
                return None
            action: ChangeAction = "reopened" if existing.state == "acknowledged" else "repeated"
            alert = self.store.change(
                conn, existing, at_ms=max(finding.at_ms, existing.updated_at_ms), who=SYSTEM, action=action,
                note=finding.message, state="open", severity=severity, reminders=0, last_notified_at=finding.at_ms,
                **values,
            )
            return AlertChange(action, alert)
        if severity != existing.severity:
            alert = self.store.change(
                conn,
                existing,
                at_ms=finding.at_ms,
                who=SYSTEM,
                action="severity_raised",
                note=finding.message,
                severity=severity,
                **values,
            )
            return AlertChange("severity_raised", alert)
        if finding.message == existing.message and dict(finding.evidence) == dict(existing.evidence):
            return None  # the same condition said again: nothing changed worth recording
        alert = self.store.change(
            conn, existing, at_ms=finding.at_ms, who=SYSTEM, action="updated", note=finding.message, **values
        )
        return AlertChange("updated", alert)

    # -- people --------------------------------------------------------------------------------------

    def ack(self, alert_id: int, who: str, note: str | None = None) -> Alert:
        """Someone is dealing with it: stops reminders. Acknowledging twice is harmless."""
        return self._act(alert_id, who, note, "acknowledged")

    def resolve(self, alert_id: int, who: str, note: str | None = None) -> Alert:
        """Closed by a person. A later finding for the same (rule, subject) opens a new alert."""
        return self._act(alert_id, who, note, "resolved")

    def _act(self, alert_id: int, who: str, note: str | None, target: Literal["acknowledged", "resolved"]) -> Alert:
        if not who.strip():
            raise ValueError("who must name the person or token acting")
        with self._lock:
            with self.store.transaction() as conn:
                alert = self.store.get(alert_id, conn)
                if alert is None:
                    raise AlertNotFoundError(f"no alert with id {alert_id}")
                if alert.state == "resolved":
                    raise AlertStateError(f"alert {alert_id} is already resolved")
                if alert.state == target:
                    return alert
                now = max(self.clock.now_ms(), alert.updated_at_ms)
                alert = self.store.change(conn, alert, at_ms=now, who=who, action=target, note=note, state=target)
                change = AlertChange(target, alert)
                self._enqueue(conn, change)
            self._notify(change)
            return alert

    # -- reminders -----------------------------------------------------------------------------------

    def _configured_escalation(self, alert: Alert) -> int | None:
        return self.config.escalation_after_ms(alert.rule, alert.audience, alert.subject)

    def tick(self, now_ms: int | None = None) -> list[Alert]:
        """Escalate and re-notify unacknowledged alerts past their escalation time. Call it every few seconds."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        changes: list[AlertChange] = []
        reminders = self._quiet_hours_over(now)
        with self._lock:
            with self.store.transaction() as conn:
                self._fenced(conn, True)
                for alert in self.store.unacknowledged(conn):
                    if alert.audience in reminders and alert.opened_at_ms >= reminders[alert.audience]:
                        reminder = AlertChange("reminder", alert)
                        self._enqueue(conn, reminder, now)
                        changes.append(reminder)
                        continue
                    if alert.severity != "critical" and self._quiet(alert.audience, now):
                        continue  # nobody on shift to remind; the reminder goes out when the quiet hours end
                    after = self._escalation(alert)
                    if after is None or alert.reminders >= self.config.escalation.max_reminders:
                        continue
                    if now - alert.last_notified_at_ms < after:
                        continue
                    severity = SEVERITY_ORDER[min(SEVERITY_ORDER.index(alert.severity) + 1, 2)]
                    waited = (now - alert.opened_at_ms) // 60_000
                    note = (
                        f"Not acknowledged after {waited} min: raised to {severity}"
                        if severity != alert.severity
                        else f"Not acknowledged after {waited} min: reminder"
                    )
                    updated = self.store.change(
                        conn,
                        alert,
                        at_ms=now,
                        who=SYSTEM,
                        action="escalated",
                        note=note,
                        severity=severity,
                        last_notified_at=now,
                        reminders=alert.reminders + 1,
                    )
                    escalated = AlertChange("escalated", updated)
                    self._enqueue(conn, escalated, now)
                    changes.append(escalated)
            for change in changes:
                self._notify(change)
        return [c.alert for c in changes]

    def _quiet_hours_over(self, now: int) -> dict[str, int]:
        """Audiences whose quiet hours ended since the last tick, with when those hours began."""
        ended: dict[str, int] = {}
        for audience in self.config.quiet_hours.windows:
            quiet = self._quiet(audience, now)
            since = self._quiet_since.get(audience)
            if quiet and since is None:
                # A start inside quiet hours counts them from a day back: nothing raised in them is missed.
                self._quiet_since[audience] = now if self._ticked else now - 86_400_000
            elif not quiet and since is not None:
                ended[audience] = since
                del self._quiet_since[audience]
        self._ticked = True
        return ended

    # -- reads ---------------------------------------------------------------------------------------

    def get(self, alert_id: int) -> Alert:
        alert = self.store.get(alert_id)
        if alert is None:
            raise AlertNotFoundError(f"no alert with id {alert_id}")
        return alert

    def list_alerts(
        self,
        audience: str | None = None,
        state: str | None = None,
        subject: str | None = None,
        subjects: frozenset[str] | None = None,
        limit: int = 500,
    ) -> list[Alert]:
        """Newest first; ``state='active'`` means open or acknowledged; ``subjects`` limits to a token's homes."""
        return self.store.query(audience=audience, state=state, subject=subject, subjects=subjects, limit=limit)

    def _quiet(self, audience: str, at_ms: int) -> bool:
        """Whether ``audience`` is in its quiet hours at ``at_ms`` (local time of the configured zone)."""
        window = self.config.quiet_hours.windows.get(audience)  # type: ignore[call-overload]
        if window is None:
            return False
        local = datetime.fromtimestamp(at_ms / 1000, tz=ZoneInfo(self.config.quiet_hours.timezone))
        return bool(window.contains(local.time()))

    def _held(self, change: AlertChange, at_ms: int | None = None) -> bool:
        at = self.clock.now_ms() if at_ms is None else at_ms
        return change.alert.severity != "critical" and self._quiet(change.alert.audience, at)

    def _enqueue(self, conn: Any, change: AlertChange, at_ms: int | None = None) -> None:
        """Write the messages ``change`` owes in its own transaction: stored together, so none is lost to a crash
        between the two. ``at_ms``: when it happens (who is on call then); the change's own time by default."""
        if self.outbox is None:
            return
        at = max(change.alert.updated_at_ms, self.clock.now_ms()) if at_ms is None else at_ms
        # Held by quiet hours: stored and on screen, sent when they end (see tick). Judged at the same moment the
        # in-process publishers are (the clock's now), so the two never disagree.
        self.outbox.enqueue(conn, change, at, self._held(change))

    def _notify(self, change: AlertChange) -> None:
        if self.outbox is not None:
            self.outbox.wake()
        held = self._held(change)
        for publisher in list(self._publishers):
            if held and not getattr(publisher, "live", False):
                continue  # quiet hours: stored and on screen, sent when they end (see tick)
            try:
                publisher.publish(change)
            except Exception:  # a broken notifier must never break the lifecycle
                log.exception("alert publisher %s failed for alert %s", type(publisher).__name__, change.alert.id)
