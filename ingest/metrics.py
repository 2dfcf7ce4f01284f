"""Ingest counters and gauges, rendered in the Prometheus text format for ``/metrics``.

Counting is a lock and an integer add; nothing here does I/O.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

_HELP = {
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
}


class IngestMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._gauges: dict[str, Callable[[], float]] = {}

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] += amount

    def value(self, name: str, **labels: str) -> float:
        """A counter's value; without labels, the sum over all label sets."""
        with self._lock:
            if labels:
                return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)
            return sum(v for (n, _), v in self._counters.items() if n == name)

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """Register a gauge read at render time (e.g. spool depth)."""
        self._gauges[name] = read

    def render(self) -> str:
        with self._lock:
            counters = dict(self._counters)
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), value in sorted(counters.items()):
            if name not in seen:
                seen.add(name)
                lines.append(f"# HELP {name} {_HELP.get(name, name)}")
                lines.append(f"# TYPE {name} counter")
            label_text = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
        for name, read in sorted(self._gauges.items()):
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {read():g}")
        return "\n".join(lines) + "\n"
