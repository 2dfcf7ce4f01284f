"""A password inside a URL setting never shows: not in API answers (a wall display's included), not in logs, not
in ``placesense doctor``'s output, against a real mosquitto, InfluxDB and PostgreSQL."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from devices.registry import Registry
from placesense.basics.redact import RedactingFormatter, redact
from placesense.cli import main
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.postgres import PostgreSQL
from placesense.tools.localstack.process import free_port
from tests.api.conftest import REGISTRY, make_tokens, serve

SECRET = "s3cret-Pa55w0rd"


def test_a_503_answer_and_the_log_never_carry_the_influx_password(
    mosquitto: Mosquitto, settings_for: Callable[..., Settings], influx: InfluxDB, influx_db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # InfluxDB that cannot be reached, its URL carrying a login: what the readings route answers quotes the URL.
    settings = settings_for(mosquitto, influx, influx_db, influx_url=f"http://reader:{SECRET}@127.0.0.1:{free_port()}",
                            influx_timeout_s=0.5)
    service = Service.build(settings, registry=Registry.from_data(REGISTRY))
    secrets, tokens = make_tokens()
    app = create_app(service, manage_lifecycle=False, tokens=tokens)
    server, base_url = serve(app)
    try:
        with caplog.at_level(logging.INFO):
            for who in ("display", "street", "admin"):
                resp = httpx.get(f"{base_url}/api/v1/readings", params={"device": "air-01-aq"},
                                 headers={"Authorization": f"Bearer {secrets[who]}"}, timeout=20)
                assert resp.status_code == 503, resp.text
                assert "InfluxDB" in resp.json()["detail"]  # still says which store
                assert SECRET not in resp.text
        assert "storage error answering a request" in caplog.text
        assert SECRET not in caplog.text
    finally:
        server.should_exit = True
        service.stop()


def test_log_lines_and_tracebacks_mask_any_url_password() -> None:
    formatter = RedactingFormatter("%(levelname)s %(message)s")
    try:
        raise ConnectionError(f"cannot reach postgresql+psycopg://placesense:{SECRET}@db.example:5432/placesense")
    except ConnectionError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "connecting to %s failed", (
            f"http://reader:{SECRET}@influx:8086",), sys.exc_info())
    line = formatter.format(record)
    assert SECRET not in line
    assert "http://reader:***@influx:8086" in line and "postgresql+psycopg://placesense:***@db.example" in line
    assert redact("mqtt://host:1883 and http://h/x?y=1") == "mqtt://host:1883 and http://h/x?y=1"


def test_doctor_never_prints_a_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, influx: InfluxDB, postgres: PostgreSQL,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A database URL with a wrong password (the connection fails) and an InfluxDB URL with a login: doctor once
    # printed the database URL as configured when the connection failed.
    for name in ("PLACESENSE_CONFIG", "PLACESENSE_MQTT_USERNAME", "PLACESENSE_MQTT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLACESENSE_DATABASE_URL",
                       f"postgresql://placesense:{SECRET}@127.0.0.1:{postgres.port}/postgres")
    monkeypatch.setenv("PLACESENSE_INFLUX_URL", influx.url.replace("http://", f"http://reader:{SECRET}@"))
    monkeypatch.setenv("PLACESENSE_REGISTRY_PATH", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("PLACESENSE_SPOOL_DIR", str(tmp_path / "spool"))
    assert main(["doctor", "--timeout", "1"]) == 1
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert "[FAIL] database" in out.out and "password authentication failed" in out.out
    assert "reader:***@127.0.0.1" in out.out  # the InfluxDB line: it answers, and its URL is shown masked
