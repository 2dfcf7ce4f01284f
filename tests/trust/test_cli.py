"""``placesense broker-config`` and ``placesense privacy`` end to end, with settings from the environment."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from placesense.cli import main
from placesense.storage.influx import InfluxClient, InfluxConfig
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import influx_count
from tests.trust.conftest import TRUST_REGISTRY


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, influx: InfluxDB, influx_db: str, database_url: str,
    mosquitto: Mosquitto,
) -> Path:
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump(TRUST_REGISTRY))
    for name, value in {
        "REGISTRY_PATH": str(registry), "INFLUX_URL": influx.url, "INFLUX_DB": influx_db,
        "DATABASE_URL": database_url, "STATE_DIR": str(tmp_path / "state"), "SPOOL_DIR": str(tmp_path / "spool"),
        "MQTT_CLIENT_ID": "ingest-cli", "TOPIC_PREFIX": "council-a/", "MQTT_URL": mosquitto.url,
    }.items():
        monkeypatch.setenv(f"PLACESENSE_{name}", value)
    monkeypatch.delenv("PLACESENSE_CONFIG", raising=False)
    monkeypatch.delenv("PLACESENSE_MQTT_PASSWORD", raising=False)
    return tmp_path


def test_broker_config_writes_conf_passwords_acl_secrets_and_tls(env: Path) -> None:
    out = env / "broker"
    assert main(["broker-config", "--out", str(out), "--make-ca"]) == 0
    assert {p.name for p in out.iterdir()} == {"mosquitto.conf", "passwd", "acl", "broker-secrets.json", "tls"}
    assert stat.S_IMODE((out / "broker-secrets.json").stat().st_mode) == 0o600
    secrets = json.loads((out / "broker-secrets.json").read_text())["accounts"]
    assert secrets["ingest-cli"]["role"] == "ingest"  # the client id names ingest when no username is set
    assert "topic write council-a/placesense/v1/home/h-0001-climate/status" in (out / "acl").read_text()
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "listener 8883" in conf and str(out / "tls" / "ca.crt") in conf
    assert "listener 1883 127.0.0.1\nuse_username_as_clientid true" in conf
    assert secrets["placesense-alerts"]["role"] == "alerts_publisher"


@pytest.mark.parametrize("prefix", ["+/", "council/#", "a/+/b/", "/abs/", "two words/"])
def test_broker_config_refuses_a_prefix_that_would_widen_the_acl(
    env: Path, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A wildcard in the prefix becomes a wildcard in every ACL line: '+/' let each device write any prefix's topics.
    out = env / "broker"
    assert main(["broker-config", "--out", str(out), "--prefix", prefix]) == 1
    assert "topic prefix" in capsys.readouterr().err
    assert not (out / "acl").exists()


def test_an_ingest_login_without_an_alerts_account_is_refused(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # On a broker binding client ids to usernames, two clients on one account take each other's session.
    monkeypatch.setenv("PLACESENSE_MQTT_USERNAME", "placesense-ingest")
    assert main(["doctor", "--timeout", "0.5"]) == 1
    assert "PLACESENSE_MQTT_ALERTS_USERNAME" in capsys.readouterr().out


def test_privacy_commands(env: Path, influx: InfluxDB, influx_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    client = InfluxClient(InfluxConfig(influx.url, influx_db))
    client.ensure_database()
    client.write(b"home,device=h-0001-climate,room=living_room,source=canonical,subject=h-0001 temperature_c=19 1\n"
                 b"home,device=h-0002-kitchen-pir,room=kitchen,source=canonical,subject=h-0002 motion=1 1\n",
                 precision="s")
    client.close()
    export = env / "h-0001.json"
    export.write_text("{}")
    export.chmod(0o644)  # an export into an existing file once kept its mode while the command said 0600
    assert main(["privacy", "export", "--home", "h-0001", "--out", str(export)]) == 0
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    assert json.loads(export.read_text())["readings"]["home"][0]["temperature_c"] == 19

    assert main(["privacy", "delete-home", "--home", "h-0001"]) == 2  # without --yes nothing happens
    assert influx_count(influx.url, influx_db, "home", "WHERE subject = 'h-0001'") == 1
    assert main(["privacy", "delete-home", "--home", "h-0001", "--yes", "--operator", "dpo"]) == 0
    assert influx_count(influx.url, influx_db, "home") == 1
    assert "devices: h-0001-climate" in capsys.readouterr().out

    assert main(["privacy", "retention"]) == 0
    assert "would delete (run with --apply): influx.home: 1" in capsys.readouterr().out
    assert influx_count(influx.url, influx_db, "home") == 1
    assert main(["privacy", "retention", "--apply"]) == 0
    assert influx_count(influx.url, influx_db, "home") == 0

    audit = env / "audit.jsonl"
    audit.write_text("an older file, readable by all\n")
    audit.chmod(0o644)
    assert main(["privacy", "audit-export", "--out", str(audit)]) == 0
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600  # who read which home's data: private, even over an old file
    actions = [json.loads(line)["action"] for line in audit.read_text().splitlines()]
    assert actions == ["privacy.export", "privacy.delete_home"]
    assert main(["privacy", "delete-home", "--home", "H'; DROP", "--yes"]) == 1  # not a home id: refused
