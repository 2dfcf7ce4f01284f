"""The demo's secured broker end to end: accounts generated from a simulated fleet's registry, a real mosquitto
enforcing them, ingest and its alert publisher on the ingest account, and the simulator logging in per device
(bridged devices through their bridge's account), as ``placesense demo`` runs them."""

from __future__ import annotations

import json
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from firmware_sim import PublishError, Simulation, build_fleet, publish
from firmware_sim.encoders import ENCODERS, SimMeasurement
from firmware_sim.firmware import SimEvent

from devices.registry import DeviceSpec, Registry
from placesense.basics.timeunits import HOUR_MS
from placesense.broker_accounts import ALERTS_PUBLISHER, ALERTS_READER, load_secrets
from placesense.cli import main
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.broker_config import BrokerFiles, Listener, write_broker_config
from placesense.tools.demo import write_device_credentials
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually, influx_query
from tests.trust.conftest import INGEST_USER, MqttUser, service_logins


@pytest.fixture
def fleet() -> Registry:
    # Home 1 canonical, home 2 behind Zigbee2MQTT, soil on canonical, TTN and ChirpStack, air canonical; every
    # home has a help button.
    return build_fleet(homes=2, beds=3, air_sites=1, seed=11, formats="mix", help_buttons=1.0,
                       encoders=tuple(ENCODERS))


@pytest.fixture
def fleet_files(fleet: Registry, tmp_path: Path, prefix: str, broker_port: int) -> BrokerFiles:
    return write_broker_config(fleet, tmp_path / "broker", prefix=prefix, ingest_user=INGEST_USER,
                               listen=Listener("127.0.0.1", broker_port))


@pytest.fixture
def fleet_broker(fleet_files: BrokerFiles, tmp_path: Path, broker_port: int) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "fleet-mosquitto", port=broker_port, config_dir=fleet_files.directory)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def fleet_service(
    fleet_broker: Mosquitto, fleet_files: BrokerFiles, influx: InfluxDB, influx_db: str, fleet: Registry,
    settings_for: Callable[..., Settings],
) -> Iterator[Service]:
    settings = settings_for(fleet_broker, influx, influx_db, **service_logins(fleet_files))
    service = Service.build(settings, registry=fleet)
    service.start()
    assert service.pipeline.consumer.wait_connected(10), "ingest did not log in with its account"
    yield service
    service.stop()


def _stored_per_device(url: str, db: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for measurement in ("home", "soil", "air"):
        for series in influx_query(url, db, f'SELECT count(*) FROM "{measurement}" GROUP BY device'):
            row = series["values"][0]
            counts[series["tags"]["device"]] = max(
                int(v or 0) for c, v in zip(series["columns"], row, strict=True) if c != "time"
            )
    return counts


def _help_press(events: list[SimEvent], device: DeviceSpec, ts_ms: int) -> SimEvent:
    """The help button pressed once more after the simulated hour (the simulator never presses it itself)."""
    seqs = [e.measurement.seq or 0 for e in events if e.device.id == device.id]
    return SimEvent(ts_ms, device, SimMeasurement(ts_ms, {"help_pressed": True}, seq=max(seqs, default=0) + 1))


@pytest.mark.timeout(120)
def test_a_simulated_hour_with_per_device_credentials_is_stored_and_alerts_reach_the_reader(
    fleet: Registry, fleet_files: BrokerFiles, fleet_broker: Mosquitto, fleet_service: Service,
    login: Callable[..., MqttUser], influx: InfluxDB, influx_db: str, prefix: str, unique: str, tmp_path: Path,
) -> None:
    formats = Counter(d.format for d in fleet.devices.values())
    assert {"canonical", "zigbee2mqtt", "ttn", "chirpstack"} <= set(formats), formats
    # What the demo hands the simulator: device and bridge passwords only, never ingest's or the reader's.
    credentials_file = write_device_credentials(fleet_files, tmp_path / "sim-credentials.json")
    assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
    credentials = load_secrets(credentials_file)
    assert not {INGEST_USER, ALERTS_PUBLISHER, ALERTS_READER} & set(credentials)
    assert {"bridge-zigbee2mqtt", "bridge-ttn", "bridge-chirpstack"} <= set(credentials)

    reader = login(fleet_broker.port, ALERTS_READER, fleet_files.password(ALERTS_READER))
    assert all(not code.is_failure for code in reader.subscribe(f"{prefix}placesense/v1/alerts/#"))

    end = int(time.time() * 1000) - 60_000
    events = list(Simulation(fleet, end - HOUR_MS, end, seed=11).events())
    button = next(d for d in fleet.devices.values() if d.kind == "help_button" and d.format == "canonical")
    events.append(_help_press(events, button, end + 30_000))
    result = publish(events, list(fleet.devices.values()), fleet_broker.url, topic_prefix=prefix,
                     client_id=f"sim-{unique}", credentials=credentials, progress_every_s=60)

    expected = dict(Counter(e.device.id for e in events))
    assert result.per_device == expected
    assert result.status_messages == 2 * formats["canonical"]
    eventually(lambda: _stored_per_device(influx.url, influx_db) == expected, 60,
               "every published reading stored, per device")
    alert_topic = f"{prefix}placesense/v1/alerts/care/{button.subject}"
    body = json.loads(eventually(lambda: reader.received(alert_topic), 30, "the help alert at the reader")[0])
    assert body["rule"] == "help_button" and body["action"] == "opened"
    assert fleet_service.dead_letters.count() == 0


def test_publishing_outside_the_accounts_acl_is_reported_not_lost_silently(
    fleet: Registry, fleet_files: BrokerFiles, fleet_broker: Mosquitto, prefix: str, unique: str
) -> None:
    credentials = load_secrets(fleet_files.secrets_file)
    device = next(d for d in fleet.devices.values() if d.format == "canonical" and d.domain == "air")
    end = int(time.time() * 1000)
    events = [e for e in Simulation(fleet, end - HOUR_MS, end, seed=11).events() if e.device.id == device.id][:3]
    assert events
    # The ACL grants this device its own topics under the fleet's prefix; anywhere else it is refused.
    with pytest.raises(PublishError, match="rejected"):
        publish(events, [device], fleet_broker.url, topic_prefix=f"other-{prefix}", client_id=f"sim-{unique}",
                credentials=credentials)
    with pytest.raises(PublishError, match="refused the connection"):
        publish(events, [device], fleet_broker.url, topic_prefix=prefix, client_id=f"sim-{unique}",
                credentials={device.id: "not-the-password"})
    with pytest.raises(PublishError, match="no password"):
        publish(events, [device], fleet_broker.url, topic_prefix=prefix, client_id=f"sim-{unique}",
                credentials={})


def test_simulate_cli_logs_in_with_the_credentials_file(
    fleet: Registry, fleet_files: BrokerFiles, fleet_broker: Mosquitto, tmp_path: Path, prefix: str, unique: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PLACESENSE_CONFIG", "PLACESENSE_MQTT_USERNAME", "PLACESENSE_MQTT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    from firmware_sim.fleet import write_registry

    registry_path = tmp_path / "registry.yaml"
    write_registry(fleet, registry_path)
    credentials = write_device_credentials(fleet_files, tmp_path / "sim-credentials.json")
    argv = ["simulate", "--registry", str(registry_path), "--days", "0.05", "--speed", "max",
            "--mqtt-url", fleet_broker.url, "--topic-prefix", prefix, "--client-id", f"sim-{unique}",
            "--credentials", str(credentials)]
    assert main(argv) != 0  # --credentials without --per-device-connections is a configuration error
    assert main([*argv, "--per-device-connections"]) == 0
    assert "published" in capsys.readouterr().out
    # Without credentials the secured broker refuses the simulator outright.
    assert main([*argv[:-2], "--per-device-connections"]) != 0
