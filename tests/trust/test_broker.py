"""Broker accounts and ACLs generated from the registry, enforced by a real mosquitto; TLS with a local CA."""

from __future__ import annotations

import socket
import ssl
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from devices.registry import Registry
from placesense.broker_accounts import hash_password
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.broker_config import BrokerFiles, BrokerLimits, Listener, make_local_ca, write_broker_config
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.process import free_port
from tests.helpers import eventually, influx_count
from tests.trust.conftest import ALERTS_PUBLISHER, INGEST_USER, MqttUser, service_logins

NOT_AUTHORIZED = 135


def _telemetry(seq: int, **extra: object) -> bytes:
    return orjson.dumps({"ts": int(time.time() * 1000), "metrics": {"motion": 1}, "seq": seq, **extra})


def _topic(prefix: str, domain: str, device: str, kind: str = "telemetry") -> str:
    return f"{prefix}placesense/v1/{domain}/{device}/{kind}"


@pytest.fixture
def secure_service(
    secure_broker: Mosquitto, influx: InfluxDB, influx_db: str, trust_registry: Registry,
    broker_files: BrokerFiles, settings_for: Callable[..., Settings],
) -> Iterator[Service]:
    settings = settings_for(secure_broker, influx, influx_db, **service_logins(broker_files))
    svc = Service.build(settings, registry=trust_registry)
    svc.start()
    assert svc.pipeline.consumer.wait_connected(10), "ingest did not log in to the secured broker"
    yield svc
    svc.stop()


def test_generated_files_cover_every_account_and_keep_secrets_private(broker_files: BrokerFiles, prefix: str) -> None:
    names = {a.username: a.role for a in broker_files.accounts}
    assert names == {
        "h-0001-kitchen-pir": "device", "h-0001-climate": "device", "h-0002-kitchen-pir": "device",
        "bed-01-soil": "device", "bridge-zigbee2mqtt": "bridge", INGEST_USER: "ingest",
        ALERTS_PUBLISHER: "alerts_publisher", "placesense-alerts-reader": "alerts_reader",
    }
    for private in (broker_files.secrets_file, broker_files.password_file):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    acl = broker_files.acl_file.read_text()
    assert f"user bed-01-soil\ntopic write {prefix}placesense/v1/soil/bed-01-soil/telemetry\n" in acl
    assert "h-0002-hall-door" not in acl  # a bridged device has no account of its own
    # Regenerating keeps the passwords devices were given; --rotate changes them.
    again = write_broker_config(
        Registry.from_data({"homes": [{"id": "h-0001"}], "devices": [
            {"id": "h-0001-kitchen-pir", "domain": "home", "subject": "h-0001", "kind": "motion", "room": "kitchen"}
        ]}), broker_files.directory, prefix=prefix, ingest_user=INGEST_USER,
    )
    assert again.password("h-0001-kitchen-pir") == broker_files.password("h-0001-kitchen-pir")
    assert "h-0002-kitchen-pir" not in again.password_file.read_text()  # a removed device loses its login


def test_password_hash_is_mosquittos_pbkdf2_format() -> None:
    # Known answer computed independently (mosquitto_passwd -U on Debian) for this salt and password.
    salt = bytes.fromhex("03195690 02e4a9e6 6b34e8b2".replace(" ", ""))
    assert hash_password("s3cret", salt=salt) == (
        "$7$101$AxlWkALkqeZrNOiy$96KROzDHIj28tEKAd+5KCE6zgGKz8HahS+p9BlR4Jb49hUA2b/ma1qGN396WpEKgkQqTf/EfTLpD2F2SFYYM9A=="
    )


def test_device_publishes_on_its_own_topic_and_the_reading_is_stored(
    secure_service: Service, secure_broker: Mosquitto, broker_files: BrokerFiles, login: Callable[..., MqttUser],
    influx: InfluxDB, influx_db: str, prefix: str,
) -> None:
    device = login(secure_broker.port, "h-0001-kitchen-pir", broker_files.password("h-0001-kitchen-pir"))
    assert device.connected.is_set()
    assert not device.publish(_topic(prefix, "home", "h-0001-kitchen-pir"), _telemetry(1)).is_failure
    eventually(
        lambda: influx_count(influx.url, influx_db, "home", "WHERE device = 'h-0001-kitchen-pir'") == 1,
        what="the device's reading in InfluxDB",
    )


def test_device_cannot_publish_on_another_devices_topic(
    secure_broker: Mosquitto, broker_files: BrokerFiles, login: Callable[..., MqttUser], prefix: str
) -> None:
    ingest = login(secure_broker.port, INGEST_USER, broker_files.password(INGEST_USER))
    assert all(not c.is_failure for c in ingest.subscribe(f"{prefix}placesense/v1/+/+/telemetry"))
    mallory = login(secure_broker.port, "h-0002-kitchen-pir", broker_files.password("h-0002-kitchen-pir"))
    victim_topic = _topic(prefix, "home", "h-0001-kitchen-pir")
    forged = mallory.publish(victim_topic, _telemetry(1))
    own_topic = _topic(prefix, "home", "h-0002-kitchen-pir")
    assert not mallory.publish(own_topic, _telemetry(2)).is_failure
    # The broker handles one client's publishes in order, so once the later one has arrived the forged one
    # would have too.
    eventually(lambda: ingest.received(own_topic), what="the device's own message")
    assert ingest.received(victim_topic) == []
    assert forged.value == NOT_AUTHORIZED
    # Nor may it write other kinds of topics: alerts, bridges' trees.
    for topic in (f"{prefix}placesense/v1/alerts/care/h-0001", f"{prefix}zigbee2mqtt/hall_door_2"):
        assert mallory.publish(topic, b"{}").value == NOT_AUTHORIZED


def test_device_reads_nothing(
    secure_broker: Mosquitto, broker_files: BrokerFiles, login: Callable[..., MqttUser], prefix: str
) -> None:
    eve = login(secure_broker.port, "h-0002-kitchen-pir", broker_files.password("h-0002-kitchen-pir"))
    victim_topic = _topic(prefix, "home", "h-0001-kitchen-pir")
    # mosquitto 2.0 grants the subscriptions themselves; its ACL check is on delivery, message by message.
    for topic_filter in ("#", victim_topic, f"{prefix}placesense/v1/alerts/#"):
        eve.subscribe(topic_filter)
    ingest = login(secure_broker.port, INGEST_USER, broker_files.password(INGEST_USER))
    ingest.subscribe("#")
    victim = login(secure_broker.port, "h-0001-kitchen-pir", broker_files.password("h-0001-kitchen-pir"))
    assert not victim.publish(victim_topic, _telemetry(1)).is_failure
    eventually(lambda: ingest.received(victim_topic), what="delivery to an account allowed to read it")
    alerts = login(secure_broker.port, ALERTS_PUBLISHER, broker_files.password(ALERTS_PUBLISHER))
    assert not alerts.publish(f"{prefix}placesense/v1/alerts/care/h-0001", b"{}").is_failure
    # eve's PUBACK for a later message of hers comes after anything the broker queued to her before it.
    assert not eve.publish(_topic(prefix, "home", "h-0002-kitchen-pir"), _telemetry(2)).is_failure
    assert eve.messages == []


def test_wrong_or_missing_credentials_are_refused(
    secure_broker: Mosquitto, broker_files: BrokerFiles, login: Callable[..., MqttUser]
) -> None:
    for username, password in (
        ("h-0001-kitchen-pir", "not-the-password"),
        ("h-0001-kitchen-pir", broker_files.password("h-0002-kitchen-pir")),  # another device's password
        ("nobody", "anything"),
        (None, None),  # anonymous
    ):
        user = login(secure_broker.port, username, password)
        assert user.connack is not None and user.connack.is_failure, (username, user.connack)
        assert not user.connected.is_set()


def test_bridge_writes_its_own_tree_only_and_alerts_reader_reads_alerts(
    secure_broker: Mosquitto, broker_files: BrokerFiles, login: Callable[..., MqttUser], prefix: str
) -> None:
    ingest = login(secure_broker.port, INGEST_USER, broker_files.password(INGEST_USER))
    ingest.subscribe(f"{prefix}zigbee2mqtt/+")
    ingest.subscribe(f"{prefix}placesense/v1/+/+/telemetry")
    reader = login(secure_broker.port, "placesense-alerts-reader", broker_files.password("placesense-alerts-reader"))
    reader.subscribe(f"{prefix}placesense/v1/alerts/#")
    bridge = login(secure_broker.port, "bridge-zigbee2mqtt", broker_files.password("bridge-zigbee2mqtt"))
    assert not bridge.publish(f"{prefix}zigbee2mqtt/hall_door_2", b'{"contact": true}').is_failure
    assert bridge.publish(_topic(prefix, "home", "h-0001-kitchen-pir"), _telemetry(1)).value == NOT_AUTHORIZED
    eventually(lambda: ingest.received(f"{prefix}zigbee2mqtt/hall_door_2"), what="the bridged message")
    alert_topic = f"{prefix}placesense/v1/alerts/care/h-0001"
    alerts = login(secure_broker.port, ALERTS_PUBLISHER, broker_files.password(ALERTS_PUBLISHER))
    assert not alerts.publish(alert_topic, b'{"rule": "test"}').is_failure
    eventually(lambda: reader.received(alert_topic), what="the alert at the alerts reader")
    assert reader.publish(alert_topic, b"{}").value == NOT_AUTHORIZED  # reading alerts is not writing them
    assert ingest.publish(alert_topic, b"{}").value == NOT_AUTHORIZED  # ingest only reads


def test_misconfigured_anonymous_broker_still_dead_letters_a_payload_claiming_another_device(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, trust_registry: Registry,
    settings_for: Callable[..., Settings], login: Callable[..., MqttUser], prefix: str,
) -> None:
    svc = Service.build(settings_for(mosquitto, influx, influx_db), registry=trust_registry)
    svc.start()
    try:
        assert svc.pipeline.consumer.wait_connected(10)
        anonymous = login(mosquitto.port, None, None)
        forged = _telemetry(1, device_id="h-0002-kitchen-pir")
        assert not anonymous.publish(_topic(prefix, "home", "h-0001-kitchen-pir"), forged).is_failure
        eventually(lambda: svc.dead_letters.count("wrong_device") == 1, what="a wrong_device dead letter")
        letter = svc.dead_letters.recent(kind="wrong_device")[0]
        assert letter["payload"] == forged and "h-0002-kitchen-pir" in letter["reason"]
        assert influx_count(influx.url, influx_db, "home") == 0
    finally:
        svc.stop()


def test_ingest_over_tls_with_a_local_ca(
    tmp_path: Path, trust_registry: Registry, influx: InfluxDB, influx_db: str,
    settings_for: Callable[..., Settings], login: Callable[..., MqttUser], prefix: str,
) -> None:
    tls = make_local_ca(tmp_path / "tls")
    assert stat.S_IMODE(tls.server_key.stat().st_mode) == 0o600
    plain_port, tls_port = free_port(), free_port()
    broker_files = write_broker_config(trust_registry, tmp_path / "tls-config", prefix=prefix, tls=tls,
                                       tls_port=tls_port, listen=Listener("127.0.0.1", plain_port))
    broker = Mosquitto(tmp_path / "tls-mosquitto", port=plain_port, tls_port=tls_port,
                       config_dir=broker_files.directory)
    broker.start()
    try:
        settings = settings_for(broker, influx, influx_db, mqtt_url=broker.tls_url, mqtt_ca_file=tls.ca_cert,
                                **service_logins(broker_files))
        svc = Service.build(settings, registry=trust_registry)
        svc.start()
        try:
            assert svc.pipeline.consumer.wait_connected(10), "ingest did not connect over TLS"
            device = login(broker.tls_port, "bed-01-soil", broker_files.password("bed-01-soil"), ca_file=tls.ca_cert)
            body = orjson.dumps({"ts": int(time.time() * 1000), "metrics": {"soil_moisture_pct": 31.5}, "seq": 1})
            assert not device.publish(_topic(prefix, "soil", "bed-01-soil"), body).is_failure
            eventually(lambda: influx_count(influx.url, influx_db, "soil") == 1, what="the reading sent over TLS")
        finally:
            svc.stop()
        # A client that does not trust the local CA cannot even start the handshake.
        with (
            socket.create_connection(("127.0.0.1", broker.tls_port), timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1").close()
    finally:
        broker.stop()


def _listener_blocks(conf: str) -> tuple[list[str], list[list[str]]]:
    """The option names before the first ``listener`` line, and each listener's option names."""
    head: list[str] = []
    blocks: list[list[str]] = []
    for line in conf.splitlines():
        word = line.split(" ", 1)[0]
        if not word or word.startswith("#"):
            continue
        if word == "listener":
            blocks.append([])
        (blocks[-1] if blocks else head).append(word)
    return head, blocks


def test_generated_conf_binds_client_ids_on_every_listener_and_opens_no_other(
    tmp_path: Path, trust_registry: Registry, prefix: str
) -> None:
    # mosquitto 2: a per-listener option written before any listener line opens a default listener on
    # 0.0.0.0:1883 for itself and does not reach the listeners after it.
    tls = make_local_ca(tmp_path / "tls")
    plain_port, tls_port = free_port(), free_port()
    files = write_broker_config(trust_registry, tmp_path / "conf", prefix=prefix, tls=tls, tls_port=tls_port,
                                listen=Listener("127.0.0.1", plain_port))
    head, blocks = _listener_blocks(files.conf.read_text())
    assert "use_username_as_clientid" not in head and "listener" not in head
    assert len(blocks) == 2 and all("use_username_as_clientid" in block for block in blocks)
    assert {"max_packet_size", "max_queued_messages", "max_queued_bytes", "allow_anonymous"} <= set(head)
    broker = Mosquitto(tmp_path / "mosquitto", port=plain_port, tls_port=tls_port, config_dir=files.directory)
    broker.start()
    try:
        assert broker.proc.process is not None
        eventually(lambda: _listening(broker.proc.process.pid) >= {("127.0.0.1", plain_port)}, what="listeners")
        # The plain listener on loopback only, TLS on every interface, and nothing else (no 0.0.0.0:1883).
        assert {port for _ip, port in _listening(broker.proc.process.pid)} == {plain_port, tls_port}
        assert ("127.0.0.1", plain_port) in _listening(broker.proc.process.pid)
        assert not {("0.0.0.0", plain_port), ("::", plain_port)} & _listening(broker.proc.process.pid)
    finally:
        broker.stop()


def _listening(pid: int) -> set[tuple[str, int]]:
    return {(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN}


def test_a_device_using_ingests_client_id_cannot_take_its_session_or_readings(
    secure_broker: Mosquitto, broker_files: BrokerFiles, influx: InfluxDB, influx_db: str, trust_registry: Registry,
    settings_for: Callable[..., Settings], login: Callable[..., MqttUser], prefix: str,
) -> None:
    settings = settings_for(secure_broker, influx, influx_db, **service_logins(broker_files))
    assert settings.mqtt_client_id == INGEST_USER  # the fixed id every installation's ingest has
    device_topic = _topic(prefix, "home", "h-0001-kitchen-pir")
    device = login(secure_broker.port, "h-0001-kitchen-pir", broker_files.password("h-0001-kitchen-pir"))
    stored = "WHERE device = 'h-0001-kitchen-pir'"

    svc = Service.build(settings, registry=trust_registry)
    svc.start()
    try:
        assert svc.pipeline.consumer.wait_connected(10)
        connections = svc.pipeline.consumer.generation
        assert not device.publish(device_topic, _telemetry(1)).is_failure
        eventually(lambda: influx_count(influx.url, influx_db, "home", stored) == 1, what="the first reading")
        # Another device's login asks for ingest's client id, with a clean start: before the binding the broker
        # dropped ingest, gave this login ingest's session, and wiped what it held.
        mallory = login(secure_broker.port, "h-0002-kitchen-pir", broker_files.password("h-0002-kitchen-pir"),
                        client_id=INGEST_USER, clean_start=True)
        assert mallory.connected.is_set()  # it gets in, under its own username as its client id
        assert not device.publish(device_topic, _telemetry(2)).is_failure
        eventually(lambda: influx_count(influx.url, influx_db, "home", stored) == 2, what="the second reading")
        assert svc.pipeline.consumer.connected.is_set()
        assert svc.pipeline.consumer.generation == connections  # ingest was never disconnected
        assert mallory.messages == []
        mallory.close()
    finally:
        svc.stop()
    # While serve is down (a restart), the broker queues readings in ingest's persistent session, including a
    # press the broker has already acknowledged to the device. A login with ingest's id must not wipe them.
    assert not device.publish(device_topic, _telemetry(3)).is_failure
    wiper = login(secure_broker.port, "h-0002-kitchen-pir", broker_files.password("h-0002-kitchen-pir"),
                  client_id=INGEST_USER, clean_start=True)
    assert wiper.connected.is_set()
    wiper.close()
    again = Service.build(settings, registry=trust_registry)
    again.start()
    try:
        eventually(lambda: influx_count(influx.url, influx_db, "home", stored) == 3, what="the queued reading")
    finally:
        again.stop()


def test_the_broker_limits_one_clients_packets_and_what_queues_for_ingest(
    tmp_path: Path, trust_registry: Registry, influx: InfluxDB, influx_db: str, prefix: str,
    settings_for: Callable[..., Settings], login: Callable[..., MqttUser],
) -> None:
    # Without limits one device drove mosquitto to 1.4 GiB. Small limits here, to see them hold.
    port = free_port()
    files = write_broker_config(trust_registry, tmp_path / "conf", prefix=prefix, listen=Listener("127.0.0.1", port),
                                limits=BrokerLimits(max_packet_bytes=8192, max_queued_bytes=40_000))
    broker = Mosquitto(tmp_path / "mosquitto", port=port, config_dir=files.directory)
    broker.start()
    try:
        settings = settings_for(broker, influx, influx_db, **service_logins(files))
        svc = Service.build(settings, registry=trust_registry)
        svc.start()  # creates ingest's persistent session
        assert svc.pipeline.consumer.wait_connected(10)
        svc.stop()
        device = login(port, "h-0001-kitchen-pir", files.password("h-0001-kitchen-pir"))
        topic = _topic(prefix, "home", "h-0001-kitchen-pir")
        sent = 100
        for seq in range(sent):  # ~1 KB each while ingest is away: 100 KB for a 40 KB queue
            assert not device.publish(topic, _telemetry(seq, pad="p" * 900)).is_failure
        svc = Service.build(settings, registry=trust_registry)
        svc.start()
        try:
            assert svc.pipeline.consumer.wait_connected(10)
            # The broker sends a session's queue before anything newer: once this reading is stored, so is the queue.
            other = login(port, "h-0001-climate", files.password("h-0001-climate"))
            climate = orjson.dumps({"ts": int(time.time() * 1000), "metrics": {"temperature_c": 19}, "seq": 1})
            assert not other.publish(_topic(prefix, "home", "h-0001-climate"), climate).is_failure
            eventually(lambda: influx_count(influx.url, influx_db, "home", "WHERE device = 'h-0001-climate'") == 1,
                       what="a reading sent after the queue")
            queued = influx_count(influx.url, influx_db, "home", "WHERE device = 'h-0001-kitchen-pir'")
            assert 0 < queued < sent  # what fitted in the queue, not all of it
            # A packet over the limit ends its sender's connection; everyone else carries on.
            assert device.client.publish(topic, b"x" * 10_000, qos=1).rc == 0
            assert device.dropped.wait(10), "the oversized sender was not disconnected"
            assert not other.publish(_topic(prefix, "home", "h-0001-climate"), climate.replace(b'"seq":1', b'"seq":2')
                                     ).is_failure
        finally:
            svc.stop()
    finally:
        broker.stop()
