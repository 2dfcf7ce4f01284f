"""placesense says when it cannot see: each blind spot is an ops alert while it lasts, /healthz answers 503 with
the reason, the pages' status says "degraded", and all clears (with nothing lost) when the cause goes away."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson

from api.app import create_app
from api.auth import TokenEntry, TokenStore, hash_token
from devices.registry import Registry
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.process import free_port
from tests.api.conftest import serve
from tests.helpers import eventually, influx_count

SECRETS = {role: f"{role}-{os.urandom(12).hex()}" for role in ("admin", "care", "other", "display")}
TOKENS = TokenStore([
    TokenEntry(name="ops", role="admin", sha256=hash_token(SECRETS["admin"])),
    TokenEntry(name="north-care", role="care", homes=["h-0001"], sha256=hash_token(SECRETS["care"])),
    TokenEntry(name="south-care", role="care", homes=["h-0002"], sha256=hash_token(SECRETS["other"])),
    TokenEntry(name="wall", role="display", sha256=hash_token(SECRETS["display"])),
])
REGISTRY: dict[str, Any] = {
    "homes": [{"id": "h-0001"}, {"id": "h-0002"}],
    "devices": [
        {"id": "h-0001-kitchen-pir", "domain": "home", "subject": "h-0001", "kind": "motion", "room": "kitchen"},
        {"id": "h-0001-climate", "domain": "home", "subject": "h-0001", "kind": "climate", "room": "living_room"},
        {"id": "h-0002-climate", "domain": "home", "subject": "h-0002", "kind": "climate", "room": "living_room"},
    ],
}


@contextmanager
def running(settings: Settings) -> Iterator[tuple[Service, str]]:
    service = Service.build(settings, registry=Registry.from_data(REGISTRY))
    service.start()
    server, url = serve(create_app(service, manage_lifecycle=False, tokens=TOKENS))
    try:
        yield service, url
    finally:
        server.should_exit = True
        service.stop()


def _health(url: str) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(f"{url}/healthz", timeout=10)
    return answer.status_code, answer.json()


def _status(url: str, who: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/api/v1/status", headers={"Authorization": f"Bearer {SECRETS[who]}"}, timeout=10)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def _ops(service: Service, rule: str) -> list[Any]:
    return [a for a in service.alerts.list_alerts(audience="ops") if a.rule == rule]


def _climate(prefix: str, device: str, ts_ms: int, seq: int) -> tuple[str, bytes]:
    body = {"ts": ts_ms, "metrics": {"temperature_c": 20.0}, "seq": seq}
    return f"{prefix}placesense/v1/home/{device}/telemetry", orjson.dumps(body)


def test_influxdb_down_is_an_ops_alert_and_a_503_then_all_clear_with_nothing_lost(
    mosquitto: Mosquitto, own_influx: InfluxDB, settings_for: Callable[..., Settings],
    publisher: Callable[..., None],
) -> None:
    with running(settings_for(mosquitto, own_influx, "blind")) as (service, url):
        assert service.pipeline.consumer.wait_connected(10)
        assert _health(url) == (200, _health(url)[1]) and _health(url)[1]["status"] == "ok"
        now = int(time.time() * 1000)
        publisher(*_climate(service.settings.topic_prefix, "h-0001-climate", now - 5000, 1))
        eventually(lambda: influx_count(own_influx.url, "blind", "home") == 1, what="first reading stored")
        own_influx.stop()
        publisher(*_climate(service.settings.topic_prefix, "h-0001-climate", now - 4000, 2))
        eventually(lambda: _ops(service, "influxdb_unreachable"), 30, "the ops alert")
        code, body = _health(url)
        assert code == 503 and body["status"] == "degraded" and not body["influx_up"]
        assert any(r.startswith("InfluxDB cannot be reached since") for r in body["reasons"])
        care = _status(url, "care")
        assert care["ok"] is False and care["since"] is not None
        assert any("readings are kept on disk" in r for r in care["reasons"])
        own_influx.start()
        eventually(lambda: _health(url)[0] == 200, 60, "healthy again")
        eventually(lambda: _ops(service, "influxdb_unreachable")[0].state == "resolved", 10, "the alert resolved")
        assert _ops(service, "influxdb_unreachable")[0].history[-1].note.startswith("Resolved at")
        assert _status(url, "care")["ok"] is True
        eventually(lambda: influx_count(own_influx.url, "blind", "home") == 2, what="the spooled reading written")


def test_the_broker_lost_is_an_ops_alert_until_it_is_back(
    own_mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, settings_for: Callable[..., Settings],
) -> None:
    with running(settings_for(own_mosquitto, influx, influx_db)) as (service, url):
        assert service.pipeline.consumer.wait_connected(10)
        own_mosquitto.stop()
        eventually(lambda: _ops(service, "broker_lost"), 30, "the ops alert")
        code, body = _health(url)
        assert code == 503 and any("lost its MQTT broker" in r for r in body["reasons"])
        own_mosquitto.start()
        eventually(lambda: _health(url)[0] == 200, 60, "healthy again")
        eventually(lambda: _ops(service, "broker_lost")[0].state == "resolved", 10, "the alert resolved")


def test_a_home_whose_every_sensor_is_silent_is_degraded_for_its_carers_only(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, settings_for: Callable[..., Settings],
    publisher: Callable[..., None],
) -> None:
    settings = settings_for(mosquitto, influx, influx_db, clock="event")
    with running(settings) as (service, url):
        assert service.pipeline.consumer.wait_connected(10)
        prefix = settings.topic_prefix
        start = int(time.time() * 1000) - 10 * 3_600_000
        # h-0002's only sensor reports every 10 minutes for 8 hours; h-0001's two go quiet after the first hour.
        seq = 0
        for step in range(48):
            ts = start + step * 600_000
            seq += 1
            publisher(*_climate(prefix, "h-0002-climate", ts, seq))
            if step < 6:
                publisher(*_climate(prefix, "h-0001-climate", ts + 1, seq))
                body = {"ts": ts + 2, "metrics": {"motion": 0.0}, "seq": seq}
                publisher(f"{prefix}placesense/v1/home/h-0001-kitchen-pir/telemetry", orjson.dumps(body))
        eventually(lambda: _ops(service, "home_unmonitored"), 30, "the home's ops alert")
        alert = _ops(service, "home_unmonitored")[0]
        assert alert.subject == "h-0001" and alert.state == "open" and alert.severity == "critical"
        assert "No sensor in home h-0001 has reported since" in alert.message
        code, body = _health(url)
        assert code == 503 and body["homes_unmonitored"] == 1
        assert "h-0001" not in orjson.dumps(body).decode()  # /healthz needs no token: no home ids
        mine = _status(url, "care")
        assert mine["ok"] is False and [h["home"] for h in mine["homes"]] == ["h-0001"]
        other = _status(url, "other")
        assert other["ok"] is True and other["homes"] == [] and other["homes_unmonitored"] == 1
        wall = _status(url, "display")
        assert wall["homes"] == [] and wall["homes_unmonitored"] == 1
        # one of its sensors reports again: the home is seen again, the alert resolves itself
        seq += 1
        publisher(*_climate(prefix, "h-0001-climate", start + 48 * 600_000, seq))
        eventually(lambda: _ops(service, "home_unmonitored")[0].state == "resolved", 30, "seen again")
        assert _status(url, "care")["ok"] is True


def test_failing_notifications_are_an_ops_alert(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, settings_for: Callable[..., Settings],
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    settings = settings_for(mosquitto, influx, influx_db, webhook_urls=[closed], webhook_secret="s" * 32,
                            notify_failing_after_s=1.0)
    with running(settings) as (service, url):
        from placesense.basics.findings import Finding

        service.alerts.apply(Finding("help_button", "care", "h-0001", "critical", "Help button pressed.",
                                     int(time.time() * 1000), True))
        eventually(lambda: _ops(service, "notifications_failing"), 60, "the ops alert")
        assert "webhooks" in _ops(service, "notifications_failing")[0].message
        code, body = _health(url)
        assert code == 503 and any("Alert notifications are failing" in r for r in body["reasons"])


def test_a_stalled_rules_process_is_an_ops_alert_and_clears_after_its_replacement(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, settings_for: Callable[..., Settings],
    publisher: Callable[..., None],
) -> None:
    settings = settings_for(mosquitto, influx, influx_db, evaluation_stall_alert_s=1.0,
                            evaluation_stall_kill_s=6.0)
    with running(settings) as (service, url):
        assert service.pipeline.consumer.wait_connected(10)
        child = service.evaluator.pid
        assert child is not None
        os.kill(child, signal.SIGSTOP)
        publisher(*_climate(settings.topic_prefix, "h-0001-climate", int(time.time() * 1000) - 1000, 1))
        eventually(lambda: _ops(service, "evaluation_stalled"), 30, "the ops alert")
        code, body = _health(url)
        assert code == 503 and body["evaluation"] == "stalled" and body["evaluation_backlog"] == 1
        # the watchdog ends it; its replacement evaluates the reading, and the alert clears
        eventually(lambda: _health(url)[0] == 200, 60, "healthy again")
        assert service.evaluator.pid != child
        eventually(lambda: _ops(service, "evaluation_stalled")[0].state == "resolved", 10, "the alert resolved")
        assert service.metrics.value("placesense_readings_evaluated_total") == 1
