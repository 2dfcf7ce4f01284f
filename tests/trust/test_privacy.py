"""Subject access, erasure and retention against a real InfluxDB and a real SQLite file; the audit log stays
append-only."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.exc import DatabaseError

from anomaly.routine import RoutineDetector
from api.audit import AuditLog, api_audit
from devices.readings import Reading
from devices.registry import Registry
from ingest.deadletters import DeadLetter, DeadLetterStore, dead_letters
from ingest.devicestate import DeviceStates
from ingest.mqtt import MqttConfig
from ingest.pipeline import spool_refusals
from placesense import evaluation_state
from placesense.alerts.store import AlertStore
from placesense.basics.clock import EventClock
from placesense.basics.db import make_engine
from placesense.basics.errors import ConfigError
from placesense.basics.timeunits import DAY_MS
from placesense.service import Service
from placesense.settings import Settings
from placesense.statelock import StateFolderInUse
from placesense.storage.influx import InfluxClient, InfluxConfig
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.privacy.controls import PrivacyControls
from placesense.tools.privacy.retention import Retention, load_retention
from tests.helpers import eventually, influx_count
from tests.trust.conftest import MqttUser

pytestmark = pytest.mark.both_databases

NOW_MS = int(time.time() * 1000)
HOMES = ("h-0001", "h-0002")


@pytest.fixture
def controls(
    influx: InfluxDB, influx_db: str, database_url: str, trust_registry: Registry, tmp_path: Path
) -> Iterator[PrivacyControls]:
    client = InfluxClient(InfluxConfig(influx.url, influx_db))
    client.ensure_database()
    engine = make_engine(database_url)
    _seed(client, engine, trust_registry, tmp_path / "state")
    yield PrivacyControls(client, engine, trust_registry, tmp_path / "state", tmp_path / "spool")
    client.close()
    engine.dispose()


def _seed(client: InfluxClient, engine: sqlalchemy.Engine, registry: Registry, state_dir: Path) -> None:
    """Two homes alike: readings 100 days old and 1 day old, an open and an old resolved alert, dead letters,
    device status and a learned routine each; and a flowerbed's soil readings, 500 and 10 days old."""
    lines = []
    for home in HOMES:
        for age_days in (100, 1):
            ts = NOW_MS - age_days * DAY_MS
            tags = f"device={home}-kitchen-pir,room=kitchen,source=canonical,subject={home}"
            lines += [f"home,{tags} motion=1 {ts}", f"home,{tags} motion=0 {ts + 1}"]
    for age_days in (500, 10):
        ts = NOW_MS - age_days * DAY_MS
        lines.append(f"soil,device=bed-01-soil,source=canonical,subject=bed-01 soil_moisture_pct=30 {ts}")
    client.write("\n".join(lines).encode())

    alerts = AlertStore(engine)
    letters = DeadLetterStore(engine)
    states = DeviceStates(engine)
    detector = RoutineDetector(registry, EventClock(NOW_MS))
    for home in HOMES:
        with alerts.transaction() as conn:
            for age_days, rule in ((800, "cold_home"), (0, "late_wake")):
                alert = alerts.insert(
                    conn, rule=rule, audience="care", subject=home, severity="warning",
                    at_ms=NOW_MS - age_days * DAY_MS, message=f"{rule} at {home}", evidence={"value": 1},
                    device_id=None, who="rules", note=None,
                )
                if rule == "cold_home":
                    alerts.change(conn, alert, at_ms=alert.opened_at_ms, who="carer-1", action="resolved",
                                  note="heating fixed", state="resolved")
        device = f"{home}-kitchen-pir"
        letters.add_many([
            DeadLetter(f"x/placesense/v1/home/{device}/telemetry", b"{bad", "malformed JSON", "malformed_json",
                       NOW_MS - age_days * DAY_MS, device_id=device, subject=home)
            for age_days in (40, 1)
        ])
        states.saw_status(device, True, NOW_MS)
        detector.process(Reading("home", device, home, "kitchen", NOW_MS - 3600_000, {"motion": 1.0}))
    states.flush()
    evaluation_state.save(state_dir, {"routine": detector.state()}, applied_seq=0, clock_ms=NOW_MS)


def test_export_contains_the_home_and_nothing_of_another(controls: PrivacyControls, tmp_path: Path) -> None:
    document = controls.export_home("h-0001", operator="dpo")
    text = json.dumps(document)
    assert "h-0002" not in text and "Resident Two" not in text and "bed-01" not in text
    assert document["registry"]["home"]["name"] == "Resident One"
    assert {d["id"] for d in document["registry"]["devices"]} == {"h-0001-kitchen-pir", "h-0001-climate"}
    assert len(document["readings"]["home"]) == 4
    assert {a["rule"] for a in document["alerts"]} == {"cold_home", "late_wake"}
    resolved = next(a for a in document["alerts"] if a["rule"] == "cold_home")
    assert [h["action"] for h in resolved["history"]] == ["opened", "resolved"]
    assert len(document["dead_letters"]) == 2 and document["dead_letters"][0]["payload"] == "{bad"
    assert [s["device_id"] for s in document["device_status"]] == ["h-0001-kitchen-pir"]
    assert document["learned_routine"]["routine_today"]["home"] == "h-0001"
    # The disclosure itself is accounted for.
    assert [(e.action, e.home_id, e.token_name) for e in controls.audit.list()] == [("privacy.export", "h-0001", "dpo")]


def test_delete_home_erases_it_everywhere_and_leaves_other_homes(
    controls: PrivacyControls, influx: InfluxDB, influx_db: str, tmp_path: Path
) -> None:
    report = controls.delete_home("h-0001", operator="dpo")
    assert report["influx_points"] == 4 and report["alerts"] == 2 and report["dead_letters"] == 2
    assert report["device_status"] == 1 and report["learned_routine"] is True and report["saved_state"] is True
    assert "homes: h-0001" in report["registry_entries_to_remove"]

    assert influx_count(influx.url, influx_db, "home", "WHERE subject = 'h-0001'") == 0
    assert influx_count(influx.url, influx_db, "home", "WHERE subject = 'h-0002'") == 4
    assert influx_count(influx.url, influx_db, "soil") == 2
    assert controls.alerts.query(subject="h-0001") == []
    assert len(controls.alerts.query(subject="h-0002")) == 2
    after = controls.export_home("h-0001")
    assert after["readings"] == {} and after["alerts"] == [] and after["dead_letters"] == []
    assert after["device_status"] == [] and after["learned_routine"] is None
    other = controls.export_home("h-0002")
    assert len(other["dead_letters"]) == 2 and len(other["device_status"]) == 1
    assert other["learned_routine"]["routine_today"]["home"] == "h-0002"
    assert "h-0001" not in (tmp_path / "state" / evaluation_state.STATE_FILE).read_text()  # gone from the file
    assert controls.delete_home("h-0001")["learned_routine"] is False  # already gone


def test_delete_home_refuses_while_readings_wait_in_the_spool(controls: PrivacyControls, tmp_path: Path) -> None:
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "000001.lp").write_bytes(b"home,subject=h-0001 motion=1 1\n")
    with pytest.raises(Exception, match="spool"):
        controls.delete_home("h-0001")
    assert len(controls.alerts.query(subject="h-0001")) == 2


def test_delete_home_refuses_while_serve_runs_on_the_state_folder(
    controls: PrivacyControls, trust_registry: Registry, mosquitto: Mosquitto, influx: InfluxDB, influx_db: str,
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for(mosquitto, influx, influx_db)
    assert settings.state_dir == controls.state_dir
    service = Service.build(settings, registry=trust_registry)
    service.start()
    try:
        with pytest.raises(StateFolderInUse, match=r"in use by placesense serve \(pid \d+\).* before erasing a home"):
            controls.delete_home("h-0001")
        assert len(controls.alerts.query(subject="h-0001")) == 2  # nothing was erased
        with pytest.raises(StateFolderInUse, match=r"in use by placesense serve .* before starting another service"):
            Service.build(settings, registry=trust_registry)  # nor does a second service start on the folder
        # As if serve were killed: its evaluation process, which saves last, still holds the folder.
        service.state_lock.release()
        with pytest.raises(StateFolderInUse):
            controls.delete_home("h-0001")
    finally:
        service.stop()
    assert controls.delete_home("h-0001")["alerts"] == 2


def test_retention_deletes_old_data_and_keeps_recent(
    controls: PrivacyControls, influx: InfluxDB, influx_db: str
) -> None:
    dry = controls.apply_retention(Retention(), now_ms=NOW_MS, apply=False)
    assert dry == {"influx.home": 4, "influx.soil": 1, "influx.air": 0, "dead_letters": 2, "resolved_alerts": 2}
    assert influx_count(influx.url, influx_db, "home") == 8  # counting deletes nothing

    assert controls.apply_retention(Retention(), now_ms=NOW_MS) == dry
    assert influx_count(influx.url, influx_db, "home") == 4  # the 1-day-old points of both homes
    assert influx_count(influx.url, influx_db, "home", f"WHERE time < {(NOW_MS - 90 * DAY_MS) * 1_000_000}") == 0
    assert influx_count(influx.url, influx_db, "soil") == 1
    for home in HOMES:
        assert [a.rule for a in controls.alerts.query(subject=home)] == ["late_wake"]
        assert len(controls.export_home(home)["dead_letters"]) == 1
    assert controls.apply_retention(Retention(), now_ms=NOW_MS)["dead_letters"] == 0


def test_retention_file_overrides_defaults(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("retention:\n  home_days: 30\n")
    (tmp_path / "r.toml").write_text("[retention]\ndead_letter_days = 7\n")
    assert load_retention(tmp_path / "r.yaml").home_days == 30
    assert load_retention(tmp_path / "r.toml") == Retention(dead_letter_days=7)
    assert load_retention(None) == Retention(home_days=90, soil_days=400, air_days=400, dead_letter_days=30,
                                             resolved_alert_days=730)
    (tmp_path / "bad.yaml").write_text("retention:\n  home_days: 0\n")
    with pytest.raises(Exception, match="home_days"):
        load_retention(tmp_path / "bad.yaml")


def test_audit_log_records_the_erasure_is_append_only_and_exports(
    controls: PrivacyControls, database_url: str, tmp_path: Path
) -> None:
    controls.delete_home("h-0002", operator="dpo")
    entries = controls.audit.list()
    assert [(e.action, e.home_id, e.token_name) for e in entries] == [("privacy.delete_home", "h-0002", "dpo")]
    assert "alerts=2" in entries[0].detail
    engine = make_engine(database_url)
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(sqlalchemy.update(api_audit).values(home_id="h-9999"))
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(sqlalchemy.delete(api_audit))
    engine.dispose()
    assert AuditLog(controls.engine).count() == 1

    out = tmp_path / "audit.jsonl"
    assert controls.export_audit(out) == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["action"] == "privacy.delete_home" and rows[0]["home_id"] == "h-0002"
    assert rows[0]["at"].endswith("Z")


EXACT_REGISTRY = {
    "homes": [{"id": "h-0001", "name": "Resident One"}, {"id": "h-0002"}, {"id": "h-0003"}],
    "devices": [
        # An id that is also a topic level of every canonical device: it once matched them all.
        {"id": "telemetry", "domain": "home", "subject": "h-0001", "kind": "motion", "room": "kitchen"},
        {"id": "h-0001-door", "domain": "home", "subject": "h-0001", "kind": "front_door", "room": "hallway",
         "format": "zigbee2mqtt", "source_id": "hall_door_1"},
        {"id": "h-0002-kitchen-pir", "domain": "home", "subject": "h-0002", "kind": "motion", "room": "kitchen"},
        {"id": "h-0003-kitchen-pir", "domain": "home", "subject": "h-0003", "kind": "motion", "room": "kitchen"},
    ],
}


def test_export_and_erasure_are_exact_and_reach_every_store(
    influx: InfluxDB, influx_db: str, database_url: str, tmp_path: Path, mosquitto: Mosquitto, unique: str,
    login: Callable[..., MqttUser],
) -> None:
    prefix = f"t{unique}/"
    registry = Registry.from_data(EXACT_REGISTRY)
    client = InfluxClient(InfluxConfig(influx.url, influx_db))
    client.ensure_database()
    engine = make_engine(database_url)
    letters = DeadLetterStore(engine)
    status = f"{prefix}placesense/v1/home/{{}}/status"

    # Letters from before they recorded their home: other homes' devices' telemetry, malformed, by topic only.
    with engine.begin() as conn:
        conn.execute(sqlalchemy.insert(dead_letters), [
            {"received_ms": NOW_MS, "topic": f"{prefix}placesense/v1/home/{device}/telemetry", "payload": b"{bad",
             "payload_size": 4, "kind": "malformed_json", "reason": "malformed JSON", "device_id": None}
            for device in ("h-0002-kitchen-pir", "h-0003-kitchen-pir", "telemetry")
        ])
    letters.add_many([
        # A bridged device of the home, decommissioned since: no longer in the registry.
        DeadLetter("zigbee2mqtt/old_door", b"{}", "bad contact", "wrong_type", NOW_MS, device_id="h-0001-old-door",
                   source_format="zigbee2mqtt", source_id="old_door", subject="h-0001"),
        # Heard before it was registered (also a discovered device), and another home's never registered.
        DeadLetter(f"{prefix}zigbee2mqtt/hall_door_1", b"{}", "unknown device", "unknown_device", NOW_MS,
                   source_format="zigbee2mqtt", source_id="hall_door_1"),
        DeadLetter(f"{prefix}zigbee2mqtt/other_door", b"{}", "unknown device", "unknown_device", NOW_MS,
                   source_format="zigbee2mqtt", source_id="other_door"),
        # A spooled reading InfluxDB refused on replay, as ingest records it.
        *spool_refusals([("home,device=telemetry,room=kitchen,source=canonical,subject=h-0001 motion=1 5",
                          "field type conflict")], NOW_MS),
    ])
    # The devices' retained status messages on the broker.
    device = login(mosquitto.port, None, None)
    for device_id in ("telemetry", "h-0002-kitchen-pir"):
        device.client.publish(status.format(device_id), b"online", qos=1, retain=True).wait_for_publish(10)

    broker = MqttConfig("127.0.0.1", mosquitto.port, f"privacy-{unique}", ())
    controls = PrivacyControls(client, engine, registry, tmp_path / "state", tmp_path / "spool",
                               topic_prefix=prefix, broker=broker)
    try:
        document = controls.export_home("h-0001")
        assert sorted(d["topic"] for d in document["dead_letters"]) == sorted([
            f"{prefix}placesense/v1/home/telemetry/telemetry", "zigbee2mqtt/old_door",
            f"{prefix}zigbee2mqtt/hall_door_1", "(spool replay)"])
        assert [(d["format"], d["source_id"]) for d in document["discovered_devices"]] == [
            ("zigbee2mqtt", "hall_door_1")]
        assert "h-0002" not in json.dumps(document) and "h-0003" not in json.dumps(document)

        with pytest.raises(ConfigError):
            controls.delete_home("h-0001\n")  # the whole id must be one: a trailing newline is refused
        report = controls.delete_home("h-0001", operator="dpo")
        assert report["dead_letters"] == 4 and report["discovered_devices"] == 1
        assert report["retained_status"] == 2  # the registered devices' status topics, emptied
        assert controls.export_home("h-0001")["dead_letters"] == []
        assert {d["source_id"] for d in letters.discovered()} == {"other_door"}
        others = {row["topic"] for row in letters.recent(limit=100)}
        assert others == {f"{prefix}placesense/v1/home/h-0002-kitchen-pir/telemetry",
                          f"{prefix}placesense/v1/home/h-0003-kitchen-pir/telemetry",
                          f"{prefix}zigbee2mqtt/other_door"}
        erasure = next(e for e in controls.audit.list() if e.action == "privacy.delete_home")
        assert erasure.home_id == "h-0001" and "dead_letters=4" in erasure.detail

        watcher = login(mosquitto.port, None, None)
        for device_id in ("telemetry", "h-0002-kitchen-pir", "marker"):
            watcher.subscribe(status.format(device_id))
        # Messages to one client arrive in order: once the marker is in, any retained message would be too.
        device.client.publish(status.format("marker"), b"x", qos=1).wait_for_publish(10)
        eventually(lambda: watcher.received(status.format("marker")), what="the marker")
        assert watcher.received(status.format("telemetry")) == []
        assert watcher.received(status.format("h-0002-kitchen-pir")) == [b"online"]
    finally:
        client.close()
        engine.dispose()
