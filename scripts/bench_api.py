"""Measures ``GET /metrics`` and the alert event stream of a real ``placesense serve`` stack.

Starts its own mosquitto and InfluxDB on loopback ports (as the tests do), builds the real ``Service`` and API,
serves it with uvicorn, and then:

- ``/metrics``: sequential scrapes with an admin token (latency p50/p99, body size, series count), after giving
  the counters the label sets a working estate has (dead letters of a dozen kinds, refused API calls);
- the stream: ``--clients`` SSE clients connected, ``--events`` alert changes handed to the alert feed as fast
  as it takes them; each client's receipt time per event gives publish→client latency (p50/p99) and the rate at
  which every client had every event.

It prints one JSON object. Figures depend on the machine and its load: compare runs made side by side.
Usage: ``.venv/bin/python scripts/bench_api.py [--scrapes N] [--clients C] [--events E]``.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from api.auth import TokenEntry, TokenStore, hash_token
from devices.registry import Registry
from placesense.alerts.changes import AlertChange
from placesense.alerts.store import Alert
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto

REGISTRY: dict[str, Any] = {
    "homes": [{"id": "h-0001", "name": "Bench Resident"}],
    "flowerbeds": [{"id": "bed-01", "name": "Bench bed", "lat": 53.04, "lon": -2.99}],
    "devices": [
        {"id": "h-0001-pir", "domain": "home", "subject": "h-0001", "kind": "motion", "room": "kitchen"},
        {"id": "bed-01-soil", "domain": "soil", "subject": "bed-01", "kind": "soil"},
    ],
}
DEAD_LETTER_KINDS = (
    "malformed_json", "schema", "unknown_device", "wrong_topic", "out_of_range", "future_timestamp", "past_timestamp",
    "oversized", "nan", "sentinel", "unknown_metric", "codec",
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _serve(app: Any) -> tuple[uvicorn.Server, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, name="bench-api", daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("uvicorn did not start")
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


def bench_metrics(base_url: str, token: str, scrapes: int) -> dict[str, Any]:
    latencies: list[float] = []
    body = ""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for _ in range(20):  # warm up
            client.get("/metrics").raise_for_status()
        for _ in range(scrapes):
            started = time.perf_counter()
            response = client.get("/metrics")
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            body = response.text
    series = [line for line in body.splitlines() if line and not line.startswith("#")]
    return {
        "scrapes": scrapes,
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(_percentile(latencies, 0.99), 3),
        "bytes": len(body.encode()),
        "series": len(series),
        "content_type": response.headers["content-type"],
    }


class _Client(threading.Thread):
    def __init__(self, base_url: str, token: str, expected: int) -> None:
        super().__init__(daemon=True)
        self.base_url, self.token, self.expected = base_url, token, expected
        self.received: dict[int, float] = {}
        self.connected = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60) as client, client.stream(
            "GET", "/api/v1/alerts/stream", params={"access_token": self.token}
        ) as response:
            for line in response.iter_lines():
                if line.startswith(":") and "connected" in line:
                    self.connected.set()
                elif line.startswith("data: ") and line != "data: {}":
                    self.received[json.loads(line[6:])["id"]] = time.perf_counter()
                    if len(self.received) >= self.expected:
                        self.done.set()
                        return


def bench_stream(service: Service, base_url: str, token: str, clients: int, events: int) -> dict[str, Any]:
    listeners = [_Client(base_url, token, events) for _ in range(clients)]
    for listener in listeners:
        listener.start()
    for listener in listeners:
        if not listener.connected.wait(20):
            raise SystemExit("a stream client did not connect")
    sent: dict[int, float] = {}
    now = time.time_ns() // 1_000_000
    started = time.perf_counter()
    for i in range(1, events + 1):
        alert = Alert(id=i, rule="bench", audience="street", subject="bed-01", severity="info", state="open",
                      opened_at_ms=now, updated_at_ms=now, message=f"bench event {i}", evidence={"n": i})
        sent[i] = time.perf_counter()
        service.alert_feed.publish(AlertChange("updated", alert))
        if i % 50 == 0:
            time.sleep(0.005)  # a burst of 50, then a breath: the feed is bounded and drops under a flood
    for listener in listeners:
        listener.done.wait(120)
    finished = max((max(c.received.values()) for c in listeners if c.received), default=time.perf_counter())
    latencies = [(c.received[i] - sent[i]) * 1000 for c in listeners for i in c.received if i in sent]
    delivered = sum(len(c.received) for c in listeners)
    return {
        "clients": clients,
        "events": events,
        "delivered": delivered,
        "lost": clients * events - delivered,
        "events_per_s_all_clients": round(delivered / (finished - started), 1),
        "latency_p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "latency_p99_ms": round(_percentile(latencies, 0.99), 2) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=500, help="sequential /metrics requests")
    parser.add_argument("--clients", type=int, default=10, help="stream clients connected at once")
    parser.add_argument("--events", type=int, default=1000, help="alert changes sent through the stream")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp_name:
        tmp = Path(tmp_name)
        broker, influx = Mosquitto(tmp / "mosquitto"), InfluxDB(tmp / "influxdb")
        broker.start()
        influx.start()
        unique = uuid.uuid4().hex[:8]
        settings = Settings(
            mqtt_url=broker.url, mqtt_client_id=f"bench-{unique}", topic_prefix=f"b{unique}/", influx_url=influx.url,
            influx_db=f"bench_{unique}", database_url=f"sqlite:///{tmp / 'placesense.db'}", spool_dir=tmp / "spool",
            state_dir=tmp / "state",
        )
        service = Service.build(settings, registry=Registry.from_data(REGISTRY))
        service.start()
        try:
            for i, kind in enumerate(DEAD_LETTER_KINDS):
                service.metrics.inc("placesense_dead_letters_total", i + 1, kind=kind)
            for reason in ("unauthenticated", "role", "scope"):
                service.metrics.inc("placesense_api_refused_total", reason=reason)
            token = f"bench-{uuid.uuid4().hex}"
            tokens = TokenStore([TokenEntry(name="bench-admin", role="admin", sha256=hash_token(token))])
            server, base_url = _serve(create_app(service, manage_lifecycle=False, tokens=tokens))
            result = {
                "metrics": bench_metrics(base_url, token, args.scrapes),
                "stream": bench_stream(service, base_url, token, args.clients, args.events),
            }
            server.should_exit = True
        finally:
            service.stop()
            influx.stop()
            broker.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
