"""Evaluation wiring: stored readings → rules and detectors → findings → the alert lifecycle.

Built by the composition root. Readings arrive on ingest's hand-on thread; time-based checks run from a ticker
thread (live clock) or right after each batch (event clock, so a replay is deterministic). One lock keeps the
rules and detectors single-threaded. Learned routines are saved to ``state_dir`` periodically and at stop, so a
restart does not forget them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from anomaly.routine import RoutineDetector
from anomaly.sensors import SensorDetectors
from devices.readings import Reading
from placesense.clock import Clock, EventClock
from rules.alerts import AlertService
from rules.engine import RuleEngine
from rules.findings import Finding

log = logging.getLogger("placesense.evaluation")

SAVE_EVERY_S = 600.0


class Evaluator:
    """Feeds readings and time to the rule engine and the routine detector, and their findings to alerts."""

    def __init__(
        self,
        rules: RuleEngine,
        routine: RoutineDetector,
        alerts: AlertService,
        clock: Clock,
        state_dir: Path,
        tick_interval_s: float = 5.0,
        sensors: SensorDetectors | None = None,
    ) -> None:
        self.rules = rules
        self.routine = routine
        self.sensors = sensors
        self.alerts = alerts
        self.clock = clock
        self.state_dir = state_dir
        self.tick_interval_s = tick_interval_s
        self.event_clock = isinstance(clock, EventClock)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._last_save = time.monotonic()
        self.evaluated = 0
        if routine.load_state(state_dir):
            log.info("restored learned routines of %d homes from %s", len(routine.homes()), state_dir)

    def __call__(self, readings: Sequence[Reading]) -> None:
        """The ingest sink: evaluate a batch of stored readings."""
        findings: list[Finding] = []
        with self._lock:
            for reading in readings:
                self.clock.observe(reading.ts_ms)
                findings.extend(self.rules.process(reading))
                findings.extend(self.routine.process(reading))
                if self.sensors is not None:
                    findings.extend(self.sensors.process(reading))
            if self.event_clock:
                findings.extend(self._time_findings())
            self.evaluated += len(readings)
        self._apply(findings)
        if self.event_clock:
            self.alerts.tick(self.clock.now_ms())

    def _time_findings(self) -> list[Finding]:
        now = self.clock.now_ms()
        return [*self.rules.tick(now), *self.routine.tick(now)]

    def _apply(self, findings: list[Finding]) -> None:
        if findings:
            self.alerts.apply_all(findings)

    def tick(self) -> None:
        """Time-based checks and escalation, at the clock's current time."""
        with self._lock:
            findings = self._time_findings()
        self._apply(findings)
        self.alerts.tick(self.clock.now_ms())
        if time.monotonic() - self._last_save > SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        with self._lock:
            try:
                path = self.routine.save_state(self.state_dir)
            except OSError as exc:
                log.error("cannot save learned routines to %s: %s", self.state_dir, exc)
                return
        self._last_save = time.monotonic()
        log.debug("saved learned routines to %s", path)

    def start(self) -> None:
        if self.event_clock:
            return  # time moves with the readings; the sink ticks after each batch
        self._ticker = threading.Thread(target=self._run, name="placesense-ticker", daemon=True)
        self._ticker.start()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_interval_s):
            try:
                self.tick()
            except Exception:  # a failing check must not stop the others next time
                log.exception("time-based checks failed; will try again")

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(self.tick_interval_s + 5)
        self.save()
