"""Blind spots as alerts: what stops placesense from seeing, told to operations and shown on every page.

A care team must never take silence for "all is well" while placesense cannot see. ``HealthWatch`` checks, every
``CHECK_EVERY_S``, the conditions under which alerts can no longer be trusted to come:

- ``evaluation_stalled``: the rules process is stalled or being restarted (``placesense.evaluation``);
- ``influxdb_unreachable``: InfluxDB refuses or does not answer (readings wait in the spool);
- ``broker_lost``: ingest has lost the MQTT broker, so no reading arrives;
- ``notifications_failing``: alert changes cannot be delivered (the alerts' MQTT connection, webhooks);
- and, from the rules, ``home_unmonitored``: every sensor of a home has gone silent.

Each raises one ``ops`` alert while it holds and resolves it, with the time it held, when it clears. ``status()``
is what ``/healthz`` (503 with the reasons whenever one holds) and ``/api/v1/status`` (the pages' banner) say.
This module reads the other parts' state and hands findings to the alert lifecycle; it must not change either.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from placesense.basics.findings import Finding, Severity
from rules.devices_health import HOME_UNMONITORED

if TYPE_CHECKING:
    from ingest.pipeline import Pipeline
    from placesense.alerts.lifecycle import AlertService
    from placesense.basics.leadership import Lease
    from placesense.evaluation import Evaluator

log = logging.getLogger("placesense.health")

CHECK_EVERY_S = 2.0
SUBJECT = "placesense"  # the subject of the service's own ops alerts


class DeliveryHealth(Protocol):
    """A notification channel that can say since when it has been failing (None: it is fine)."""

    @property
    def name(self) -> str:
        """What is failing, in plain words (read after ``failing_since_ms``)."""

    def failing_since_ms(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Blind:
    """One condition under which placesense cannot see: its rule, since when (wall ms), and plain words."""

    rule: str
    since_ms: int
    reason: str
    severity: Severity = "critical"


@dataclass(frozen=True, slots=True)
class Status:
    ok: bool
    since_ms: int | None
    blind: tuple[Blind, ...]
    homes: dict[str, Blind] = field(default_factory=dict)  # home -> why it is unmonitored


def hhmm(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%H:%M")


class HealthWatch:
    """Checks the service's blind spots on a thread of its own, and turns each into an ops alert."""

    def __init__(
        self,
        pipeline: Pipeline,
        evaluator: Evaluator,
        alerts: AlertService,
        deliveries: list[DeliveryHealth],
        wall_ms: Callable[[], int] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.evaluator = evaluator
        self.alerts = alerts
        self.deliveries = deliveries
        self._wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self._since: dict[str, int] = {}  # rule -> when this watch first saw it hold
        self._raised: dict[str, Blind] = {}  # the ops alerts this watch has open
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_ms = self._wall_ms()
        # Active/standby: what this instance is now, and the lease to see whether some instance leads.
        self.role: Callable[[], str] = lambda: "single"
        self.subject = SUBJECT  # with several instances, each its own name: their blind spots are their own
        self.lease: Lease | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="placesense-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(CHECK_EVERY_S + 5)

    def _run(self) -> None:
        while not self._stop.wait(CHECK_EVERY_S):
            try:
                self.check()
            except Exception:  # the watch must outlive anything it looks at
                log.exception("checking placesense's own health failed; will check again")

    # -- the conditions -------------------------------------------------------------------------------------------

    def conditions(self) -> list[Blind]:
        """The blind spots that hold now (service-wide ones; homes' silence comes from the rules)."""
        now = self._wall_ms()
        found: list[Blind] = []
        if self.role() == "standby":
            return self._standby_conditions(now)
        evaluation = self.evaluator.health()
        if evaluation.state in ("stalled", "restarting"):
            what = "has stopped answering" if evaluation.state == "stalled" else "is restarting"
            found.append(self._held("evaluation_stalled", evaluation.since_ms, lambda since: (
                f"Alerts are not being checked: placesense's rules process {what} since {hhmm(since)} "
                f"({evaluation.pending_readings:,} readings waiting). Alerts that fall due meanwhile are raised "
                "when it is back, marked late."
            )))
        writer = self.pipeline.writer
        if not writer.influx_up:
            spool_mb = writer.spool.size_bytes / 1e6
            found.append(self._held("influxdb_unreachable", now, lambda since: (
                f"InfluxDB cannot be reached since {hhmm(since)}: readings are kept on disk ({spool_mb:.1f} MB "
                "waiting) and written when it is back; graphs and reading history stop at that time."
            ), "warning"))
        if not self.pipeline.consumer.connected.is_set():
            found.append(self._held("broker_lost", now, lambda since: (
                f"placesense has lost its MQTT broker since {hhmm(since)}: no readings arrive, so no alert can be "
                "raised until it is back."
            )))
        failing = [(d.name, d.failing_since_ms()) for d in self.deliveries]
        failing_names = [name for name, since in failing if since is not None]
        if failing_names:
            first = min(since for _, since in failing if since is not None)
            found.append(self._held("notifications_failing", first, lambda since: (
                f"Alert notifications are failing since {hhmm(since)} ({', '.join(failing_names)}): alerts are "
                "stored and shown on the pages, but not sent."
            ), "warning"))
        for rule in [rule for rule in self._since if rule not in {b.rule for b in found}]:
            del self._since[rule]
        return found

    def _standby_conditions(self, now: int) -> list[Blind]:
        """A standby ingests and evaluates nothing: what matters is that some instance does."""
        found: list[Blind] = []
        holder = self.lease.holder_now() if self.lease is not None else None
        if holder is None or holder.expires_ms < now - (self.lease.lease_ms if self.lease else 0):
            since = holder.expires_ms if holder is not None else now
            found.append(self._held("no_leader", since, lambda since: (
                f"No placesense instance has led evaluation since {hhmm(since)}: readings are not taken in and no "
                "alert is raised until one does."
            )))
        for rule in [rule for rule in self._since if rule not in {b.rule for b in found}]:
            del self._since[rule]
        return found

    def _held(self, rule: str, since_ms: int, words: Callable[[int], str], severity: Severity = "critical") -> Blind:
        since = self._since.setdefault(rule, since_ms)
        return Blind(rule, since, words(since), severity)

    def unmonitored_homes(self) -> dict[str, Blind]:
        """Homes whose every sensor is silent, from the rules' open ops alerts."""
        homes: dict[str, Blind] = {}
        for alert in self.alerts.list_alerts(audience="ops", state="active", limit=10_000):
            if alert.rule == HOME_UNMONITORED:
                homes[alert.subject] = Blind(HOME_UNMONITORED, alert.opened_at_ms, alert.message, alert.severity)
        return homes

    def status(self) -> Status:
        blind = self.conditions()
        homes = self.unmonitored_homes()
        since = min((b.since_ms for b in [*blind, *homes.values()]), default=None)
        return Status(ok=not blind and not homes, since_ms=since, blind=tuple(blind), homes=homes)

    # -- the alerts -----------------------------------------------------------------------------------------------

    def check(self) -> Status:
        """Raise an ops alert for each new blind spot and resolve those that cleared; returns the status."""
        status = self.status()
        now = self._wall_ms()
        findings: list[Finding] = []
        holding = {b.rule: b for b in status.blind}
        for rule, blind in holding.items():
            if rule not in self._raised:
                log.error("%s", blind.reason)
                findings.append(Finding(rule, "ops", self.subject, blind.severity, blind.reason, now, True,
                                        {"since_ms": blind.since_ms}))
            self._raised[rule] = blind
        for rule in [rule for rule in self._raised if rule not in holding]:
            began = self._raised.pop(rule)
            words = f"Resolved at {hhmm(now)}, after {max(1, (now - began.since_ms) // 60_000)} min: {began.reason}"
            log.info("%s", words)
            findings.append(Finding(rule, "ops", self.subject, began.severity, words, now, False,
                                    {"since_ms": began.since_ms}))
        if findings:
            self.alerts.apply_all(findings, fenced=False)  # this instance's own health, leader or not
        return status
