"""Counters and gauges of the service, exposed for Prometheus through ``prometheus-client``.

``IngestMetrics`` keeps the small interface the rooms use (``inc(name, amount, **labels)``, ``value``, and
``gauge(name, read)`` for values read at scrape time) and hands the rest to the Prometheus client library: the
text exposition format, the process collector (CPU, memory, open files of this process) and the platform
collector. Counters are made on first use with the label names of that use; a name is always counted with the
same labels.

The evaluation child process records its own metrics (how long batches take, findings by rule) in Prometheus'
multiprocess mode: it is started with ``PROMETHEUS_MULTIPROC_DIR`` pointing at ``child_dir``, and a scrape here
reads those files too, so one ``/metrics`` shows both processes (and a child's counts survive its restart). The
child's own CPU and memory appear as ``placesense_evaluation_process_*``.

Counting is a lock and an add; nothing here does I/O except reading the child's files at scrape time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

HELP = {
    "placesense_messages_received_total": "MQTT messages received by ingest",
    "placesense_readings_stored_total": "readings durably stored (InfluxDB or spool)",
    "placesense_readings_written_total": "readings accepted by InfluxDB (directly or from the spool)",
    "placesense_dead_letters_total": "messages refused, by kind",
    "placesense_readings_spooled_total": "readings written to the on-disk spool while InfluxDB was unavailable",
    "placesense_influx_write_errors_total": "failed InfluxDB writes, by retryable or permanent",
    "placesense_batches_total": "batches flushed",
    "placesense_status_messages_total": "device status (online/offline) messages",
    "placesense_housekeeping_messages_total": "a bridge's own messages read past (Zigbee2MQTT bridge, /set, /get)",
    "placesense_mqtt_connects_total": "MQTT (re)connections",
    "placesense_readings_evaluated_total": "stored readings the rules and detectors have evaluated",
    "placesense_readings_reevaluated_total": "stored readings evaluated again after the evaluation process restarted",
    "placesense_evaluation_stalls_total": "times the evaluation process was ended for answering nothing",
    "placesense_evaluation_restarts_total": "times the evaluation process was started again after it died",
    "placesense_api_refused_total": "API requests refused, by why (unauthenticated, role, scope)",
}

# The _created series double the exposition for no use here (counters reset only with the process).
disable_created_metrics()  # type: ignore[no-untyped-call]


class IngestMetrics:
    """The service's metrics on a registry of its own (tests build many services in one process)."""

    def __init__(self, child_dir: Path | None = None, child_pid: Callable[[], int | None] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        if child_dir is not None:
            child_dir.mkdir(parents=True, exist_ok=True)
            MultiProcessCollector(self.registry, path=str(child_dir))  # type: ignore[no-untyped-call]
        if child_pid is not None:
            ProcessCollector(namespace="placesense_evaluation", pid=lambda: child_pid() or "missing",
                             registry=self.registry)
        self._lock = threading.Lock()
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}

    def _counter(self, name: str, labels: tuple[str, ...]) -> Counter:
        found = self._counters.get(name)
        if found is None:
            with self._lock:
                found = self._counters.get(name)
                if found is None:
                    found = Counter(name, HELP.get(name, name.replace("_", " ")), labels, registry=self.registry)
                    self._counters[name] = found
        return found

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        counter = self._counter(name, tuple(sorted(labels)))
        (counter.labels(**labels) if labels else counter).inc(amount)

    def value(self, name: str, **labels: str) -> float:
        """A counter's value; without labels, the sum over all label sets."""
        counter = self._counters.get(name)
        if counter is None:
            return 0.0
        if labels:
            return sum(s.value for m in counter.collect() for s in m.samples
                       if s.name == name and s.labels == labels)
        return sum(s.value for m in counter.collect() for s in m.samples if s.name == name)

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """Register a gauge read at scrape time (e.g. spool depth)."""
        with self._lock:
            if name in self._gauges:
                self.registry.unregister(self._gauges[name])
            gauge = Gauge(name, HELP.get(name, name.replace("_", " ")), registry=self.registry)
            gauge.set_function(read)
            self._gauges[name] = gauge

    def render(self) -> str:
        """The Prometheus text exposition of everything registered."""
        return generate_latest(self.registry).decode()
