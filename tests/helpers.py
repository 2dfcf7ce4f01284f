"""Small helpers the tests share: polling with a deadline instead of sleeping, and InfluxQL reads."""

from __future__ import annotations

import contextlib
import http.server
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx

from devices.readings import Reading
from devices.registry import Registry
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto

T = TypeVar("T")


@contextlib.contextmanager
def http_server(
    handler: type[http.server.BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port in a thread (over TLS with ``tls``); yields
    ``http://127.0.0.1:<port>`` (``https://`` with ``tls``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls is not None else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class WebhookReceiver(http.server.BaseHTTPRequestHandler):
    """A webhook endpoint for tests: answers 500 to the first ``fail_first`` posts, then 204 (404 on a path ending
    ``-missing``), and keeps each post as (status, body bytes, lower-cased headers) in ``calls``. Make a subclass
    per test with ``webhook_receiver``, so each has its own ``calls``."""

    fail_first = 1
    calls: ClassVar[list[tuple[int, bytes, dict[str, str]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 500 if len(self.calls) < self.fail_first else 204
        if self.path.endswith("-missing"):
            status = 404
        self.calls.append((status, body, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextlib.contextmanager
def webhook_receiver(fail_first: int = 1) -> Iterator[tuple[str, type[WebhookReceiver]]]:
    """A ``WebhookReceiver`` of its own served on loopback; yields its base URL and the handler class."""
    handler = type("Receiver", (WebhookReceiver,), {"calls": [], "fail_first": fail_first})
    with http_server(handler) as url:
        yield url, handler


def eventually(probe: Callable[[], T], timeout_s: float = 20.0, what: str = "condition") -> T:
    """Call ``probe`` until it returns a truthy value, and return that value; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last value: {last!r}")


def influx_query(url: str, db: str, q: str) -> list[dict[str, Any]]:
    """Run InfluxQL and return the first statement's series (empty list if none)."""
    resp = httpx.post(f"{url}/query", params={"db": db, "epoch": "ms"}, data={"q": q}, timeout=30)
    resp.raise_for_status()
    result = resp.json()["results"][0]
    if "database not found" in result.get("error", ""):
        return []
    if "error" in result:
        raise AssertionError(f"InfluxQL error for {q!r}: {result['error']}")
    return list(result.get("series", []))


def influx_count(url: str, db: str, measurement: str, where: str = "") -> int:
    """Number of points in ``measurement`` (counting a field every point has: seq or any)."""
    series = influx_query(url, db, f'SELECT count(*) FROM "{measurement}" {where}')
    if not series:
        return 0
    columns = series[0]["columns"]
    row = series[0]["values"][0]
    return max(int(v or 0) for c, v in zip(columns, row, strict=True) if c != "time")


def stack_settings(broker: Mosquitto, influx: InfluxDB, db: str, tmp: Path, unique: str, **overrides: Any) -> Settings:
    """Settings for a Service on the test servers, with everything it writes under ``tmp`` and names unique to
    the caller (client id, topic prefix, database)."""
    values: dict[str, Any] = {
        "mqtt_url": broker.url,
        "mqtt_client_id": f"ingest-{unique}",
        "topic_prefix": f"t{unique}/",
        "influx_url": influx.url,
        "influx_db": db,
        "database_url": f"sqlite:///{tmp / 'placesense.db'}",
        "spool_dir": tmp / "spool",
        "state_dir": tmp / "state",
        "batch_max_ms": 50,
        "influx_timeout_s": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


def sim_readings(
    registry: Registry, start_ms: int, end_ms: int, seed: int, anomalies: Iterable[str] = ()
) -> Iterator[Reading]:
    """The simulator's measurements as the readings ingest would hand on (canonical fleets: no decoding)."""
    from firmware_sim import generate

    for device, m in generate(registry, start_ms, end_ms, seed=seed, anomalies=list(anomalies)):
        yield Reading(
            domain=device.domain,
            device_id=device.id,
            subject=device.subject,
            room=device.room,
            ts_ms=m.ts_ms,
            metrics={name: float(value) for name, value in m.metrics.items()},
            battery_pct=m.battery_pct,
            seq=m.seq,
        )


def serve_settings(
    broker: Mosquitto, influx: InfluxDB, db: str, registry_file: Path, tmp_path: Path, name: str
) -> dict[str, str]:
    """``placesense serve``'s settings for a run on the test servers, everything it writes under ``tmp_path``."""
    from placesense.tools.localstack.process import free_port

    return {
        "mqtt_url": broker.url, "mqtt_client_id": f"ingest-{name}", "topic_prefix": f"{name}/",
        "influx_url": influx.url, "influx_db": db, "database_url": f"sqlite:///{tmp_path}/ps.db",
        "spool_dir": str(tmp_path / "spool"), "registry_path": str(registry_file),
        "api_bind": f"127.0.0.1:{free_port()}", "state_dir": str(tmp_path / "state"),
    }


def serve_env(settings: dict[str, str]) -> dict[str, str]:
    """The environment of a ``placesense serve`` process: ours without PLACESENSE_*, then ``settings``."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACESENSE_")}
    env.update({f"PLACESENSE_{k.upper()}": v for k, v in settings.items()})
    return env
