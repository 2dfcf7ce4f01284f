"""Erasure: remove one home everywhere placesense keeps it, record that it did, and name what the admin must remove.

``delete_home`` erases the home's InfluxDB series, alerts and their history, dead letters, device status,
discovered devices, saved evaluation state and journal readings (``erase_home_state``, the one place that erases a
home's entries in the state folder) and its devices' retained status messages on the broker (``clear_retained``).
The registry entries it only names: the resident's name lives there and an admin edits that file by hand. Every
match is exact (``PrivacyStores``), so erasing one home never touches another's data.

It refuses while ``placesense serve`` holds the state folder (the service keeps the learned routines in memory and
would save the home's model back; ``placesense.statelock``) and while readings wait in the spool. The erasure is
recorded in the append-only audit log under the pseudonymous id only. This module must not decide what is kept for
how long (``retention``) nor export what it erases (``export``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from devices.registry import Registry
from devices.topics import canonical_topic
from ingest.mqtt import MqttConfig
from placesense.basics.errors import PlacesenseError
from placesense.statelock import StateLock
from placesense.storage import erasure
from placesense.tools.privacy.stores import PrivacyStores, check_home_id


def delete_home(stores: PrivacyStores, home_id: str, *, operator: str = "") -> dict[str, Any]:
    """Erase one home everywhere placesense keeps it, record the erasure, and say what is left to the admin."""
    home_id = check_home_id(home_id)
    # A running service keeps learned routines in memory and would save this home's back: the erasure holds
    # the state folder, which a service holds from its start until its evaluation process has saved and ended.
    with StateLock(stores.state_dir, "placesense privacy delete-home",
                   "erasing a home: it would save the home's learned routine back"):
        return _delete_home(stores, home_id, operator)


def _delete_home(stores: PrivacyStores, home_id: str, operator: str) -> dict[str, Any]:
    from api.auth import Principal
    from ingest.deadletters import dead_letters, discovered_devices
    from ingest.devicestate import device_status

    if stores.spool_dir is not None and any(stores.spool_dir.glob("*.lp")):
        raise PlacesenseError(
            f"readings wait in the spool {stores.spool_dir}; they may include this home's and would be written "
            "back after the erasure. Let InfluxDB drain the spool first (placesense doctor shows it)."
        )
    devices = stores.home_devices(home_id)
    report: dict[str, Any] = {"home_id": home_id, "devices": devices}
    before = erasure.count_home_points(stores.influx, home_id)
    erasure.erase_home(stores.influx, home_id)
    report["influx_points"] = before
    report["alerts"] = stores.alerts.delete_subject(home_id)
    with stores.mapped(), stores.engine.begin() as conn:
        report["dead_letters"] = int(
            conn.execute(delete(dead_letters).where(stores.letters_of(home_id, devices))).rowcount
        )
        report["device_status"] = int(
            conn.execute(delete(device_status).where(device_status.c.device_id.in_(devices))).rowcount
        )
        report["discovered_devices"] = int(
            conn.execute(delete(discovered_devices).where(stores.discovered_of(home_id))).rowcount
        )
    report.update(erase_home_state(stores.state_dir, stores.registry, home_id))
    report["retained_status"] = _clear_retained_status(stores, devices)
    detail = ", ".join(f"{k}={v}" for k, v in report.items() if k not in ("home_id", "devices"))
    stores.audit.record(Principal(operator or "privacy-cli", "admin"), "privacy.delete_home", [home_id], detail)
    report["registry_entries_to_remove"] = [f"homes: {home_id}"] + [
        f"devices: {d.id}" for d in stores.registry.devices.values() if d.subject == home_id
    ]
    return report


def _clear_retained_status(stores: PrivacyStores, devices: Iterable[str]) -> int | str:
    """Empty the retained status message of each of the home's devices on the broker; how many topics, or
    why it could not (the erasure report says so, and running it again finishes the job)."""
    if stores.broker is None:
        return "not configured (PLACESENSE_MQTT_ALERTS_USERNAME); clear the devices' status topics by hand"
    topics = sorted(
        canonical_topic(spec.domain if (spec := stores.registry.devices.get(d)) else "home", d, "status",
                        stores.topic_prefix)
        for d in devices
    )
    try:
        return clear_retained(stores.broker, topics)
    except PlacesenseError as exc:
        return f"not cleared: {exc}"


def erase_home_state(state_dir: Path, registry: Registry, home_id: str) -> dict[str, int | bool]:
    """Remove one home from the state folder: the evaluation's saved state (its learned routine, its rules' and
    detectors' records) and its readings still waiting in the journal. The one place that erases a home's saved
    state; ``saved_state`` and ``learned_routine`` say whether there was any, ``journal_readings`` how many."""
    from placesense.evaluation_core import erase_saved_subject

    return erase_saved_subject(state_dir, registry, home_id)


def clear_retained(config: MqttConfig, topics: list[str], timeout_s: float = 10.0) -> int:
    """Publish an empty retained message on each topic (MQTT's way to delete a retained one), with ``config``'s
    login; return how many. Raises ``PlacesenseError`` if the broker cannot be reached or refuses one."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    answers: dict[int, Any] = {}
    connected: dict[str, Any] = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.client_id, protocol=mqtt.MQTTv5)
    config.secure(client)
    client.on_connect = lambda _c, _u, _f, reason, _p: connected.setdefault("reason", reason)
    client.on_publish = lambda _c, _u, mid, reason, _p: answers.__setitem__(mid, reason)
    try:
        client.connect(config.host, config.port, keepalive=30)
    except OSError as exc:
        client._reset_sockets()
        raise PlacesenseError(f"cannot reach the MQTT broker {config.host}:{config.port}: {exc}") from exc
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout_s
        while "reason" not in connected and time.monotonic() < deadline:
            time.sleep(0.02)
        if "reason" not in connected or connected["reason"].is_failure:
            raise PlacesenseError(f"the MQTT broker did not let us in: {connected.get('reason', 'no answer')}")
        mids = [client.publish(topic, b"", qos=1, retain=True).mid for topic in topics]
        while len(answers) < len(mids) and time.monotonic() < deadline:
            time.sleep(0.02)
        refused = [topic for topic, mid in zip(topics, mids, strict=True)
                   if mid not in answers or answers[mid].is_failure]
        if refused:
            raise PlacesenseError(f"the broker did not clear {len(refused)} status topic(s), e.g. {refused[0]}")
        return len(topics)
    finally:
        client.disconnect()
        client.loop_stop()
        client._reset_sockets()
