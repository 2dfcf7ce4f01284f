"""The publisher: puts a simulated stream on a real MQTT broker, paced in accelerated time.

paho-mqtt v2 API, QoS 1. By default the whole fleet shares one connection; ``per_device_connections`` gives
each device its own client with a retained ``offline`` status as its Last Will, as real firmware has.
``credentials`` (username -> password, as in the broker-secrets file ``placesense broker-config`` writes) logs
in as a secured broker's ACLs expect: each canonical device as itself, and the devices of each bridged format
(Zigbee2MQTT, TTN, ChirpStack) over one shared connection of that bridge's account; these links speak MQTT 5, so
a publish the ACL refuses comes back as a failed PUBACK instead of being dropped silently. Canonical
devices publish a retained ``online`` status before their first reading and ``offline`` after their last.
``speed="max"`` publishes as fast as the broker acknowledges, with at most ``max_inflight`` unacknowledged
messages; a number publishes that many simulated seconds per wall-clock second; ``speed="live"`` sends what is
already past at full speed, then each message when the wall clock reaches its time (a live fleet). ``publish``
returns only when the broker has acknowledged every message (PUBACK), so the counts it returns are what the
broker holds.
This module knows MQTT and pacing; it must not decide what devices measure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from firmware_sim.encoders import ENCODERS, encode
from firmware_sim.firmware import SimEvent
from firmware_sim.timebase import rfc3339
from paho.mqtt.enums import CallbackAPIVersion

from devices.registry import DeviceSpec
from devices.topics import canonical_topic
from placesense.basics.errors import PlacesenseError
from placesense.broker_accounts import BRIDGE_TREES

log = logging.getLogger("firmware_sim.publisher")

Speed = float | Literal["max", "live"]


class PublishError(PlacesenseError):
    """The broker refused us, went away for good, or did not acknowledge every message in time."""


@dataclass(frozen=True, slots=True)
class SimResult:
    """What a publishing run put on the broker (every count is acknowledged by it)."""

    total: int
    per_device: dict[str, int]
    status_messages: int
    elapsed_s: float
    first_send_ms: int | None
    last_send_ms: int | None
    per_domain: dict[str, int] = field(default_factory=dict)

    @property
    def rate_per_s(self) -> float:
        return self.total / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Link:
    """One paho client with a bound on unacknowledged QoS 1 publishes."""

    def __init__(self, client_id: str, url: str, username: str | None, password: str | None,
                 max_inflight: int, ca_file: str | None, will: tuple[str, bytes] | None,
                 mqtt5: bool = False) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise PublishError(f"MQTT URL {url!r} must look like mqtt://host:1883 or mqtts://host:8883")
        self._host = parts.hostname
        self._port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self._mqtt5 = mqtt5
        if mqtt5:
            # MQTT 5 brokers answer a publish the ACL refuses with a PUBACK reason code; 3.1.1 ones drop it.
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        else:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        if username:
            self.client.username_pw_set(username, password)
        if parts.scheme == "mqtts":
            self.client.tls_set(ca_certs=ca_file)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self._slots = threading.BoundedSemaphore(max_inflight)
        self._lock = threading.Lock()
        self._waiting: dict[int, str] = {}  # mid -> device id, until its PUBACK arrives
        self._early: set[int] = set()  # PUBACKs that beat publish() returning the mid
        self.acked: Counter[str] = Counter()
        self.failed: list[str] = []
        self._connected = threading.Event()
        self._refused: str | None = None
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            self._refused = str(reason)
        self._connected.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            device_id = self._waiting.pop(mid, None)
            if device_id is None:
                self._early.add(mid)
            else:
                self._settle(device_id, reason)
        self._slots.release()

    def _settle(self, device_id: str, reason: Any) -> None:
        if getattr(reason, "is_failure", False):
            self.failed.append(f"{device_id}: {reason}")
        else:
            self.acked[device_id] += 1

    def connect(self, timeout_s: float = 15.0) -> None:
        try:
            if self._mqtt5:
                self.client.connect(self._host, self._port, keepalive=30, clean_start=True)
            else:
                self.client.connect(self._host, self._port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise PublishError(f"cannot reach the MQTT broker at {self._host}:{self._port}: {exc}") from exc
        self.client.loop_start()
        if not self._connected.wait(timeout_s):
            self.close()
            raise PublishError(f"the MQTT broker at {self._host}:{self._port} did not answer CONNECT")
        if self._refused:
            self.close()
            raise PublishError(f"the MQTT broker refused the connection: {self._refused}")

    def publish(self, topic: str, payload: bytes, device_id: str, retain: bool = False) -> None:
        self._slots.acquire()
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # NO_CONN is fine: paho keeps QoS 1 messages and sends them after reconnecting.
            self._slots.release()
            raise PublishError(f"publishing to {topic} failed: {mqtt.error_string(info.rc)}")
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acked[device_id] += 1
            else:
                self._waiting[info.mid] = device_id

    @property
    def outstanding(self) -> int:
        with self._lock:
            return len(self._waiting)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(
    events: Iterable[SimEvent],
    devices: Sequence[DeviceSpec],
    mqtt_url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    topic_prefix: str = "",
    speed: Speed = "max",
    client_id: str = "placesense-sim",
    per_device_connections: bool = False,
    credentials: Mapping[str, str] | None = None,
    statuses: bool = True,
    max_inflight: int = 1000,
    ca_file: str | None = None,
    progress_every_s: float = 5.0,
    ack_timeout_s: float = 120.0,
) -> SimResult:
    """Publish ``events`` (from ``Simulation.events()``) for ``devices`` and wait for every PUBACK.

    With ``credentials`` (username -> password) every canonical device connects as its own account and each
    bridged format through its bridge's account (``placesense.broker_accounts.BRIDGE_TREES``); ``username`` and
    ``password`` are then not used, and connections are per device whatever ``per_device_connections`` says.
    """
    if speed not in ("max", "live") and (not isinstance(speed, int | float) or speed <= 0):
        raise ValueError("speed must be 'max', 'live' or a positive number of simulated seconds per second")
    unsendable = {d.id for d in devices if d.format not in ENCODERS}
    if unsendable:
        log.warning("skipping %d device(s) whose source format has no encoder yet: %s",
                    len(unsendable), ", ".join(sorted(unsendable)[:10]))
        devices = [d for d in devices if d.id not in unsendable]
    links: dict[str, _Link] = {}
    shared: _Link | None = None
    status_devices = [d for d in devices if d.format == "canonical"] if statuses else []

    def status_topic(device: DeviceSpec) -> str:
        return canonical_topic(device.domain, device.id, "status", topic_prefix)

    try:
        if credentials is not None:
            links = _account_links(devices, credentials, mqtt_url, client_id, max_inflight, ca_file, status_topic)
        elif per_device_connections:
            for device in devices:
                will = (status_topic(device), b"offline") if device.format == "canonical" else None
                links[device.id] = _Link(f"{client_id}-{device.id}", mqtt_url, username, password,
                                         max(10, max_inflight // max(1, len(devices))), ca_file, will)
                links[device.id].connect()
        else:
            shared = _Link(client_id, mqtt_url, username, password, max_inflight, ca_file, None)
            shared.connect()

        def link_for(device_id: str) -> _Link:
            return shared if shared is not None else links[device_id]

        status_count = 0
        for device in status_devices:
            link_for(device.id).publish(status_topic(device), b"online", f"status:{device.id}", retain=True)
            status_count += 1

        started = time.monotonic()
        next_report = started + progress_every_s
        first_send: int | None = None
        last_send: int | None = None
        caught_up: int | None = None
        sendable = (event for event in events if event.device.id not in unsendable)
        for sent, event in enumerate(sendable, start=1):
            if first_send is None:
                first_send = event.send_ms
            last_send = event.send_ms
            if speed == "live":
                if caught_up is None and event.send_ms > time.time() * 1000:
                    caught_up = sent - 1
                    log.info("caught up with the present after %d messages; from now on each is sent when it is "
                             "due", caught_up)
                while (wait_s := event.send_ms / 1000 - time.time()) > 0:
                    time.sleep(min(wait_s, 0.5))
                    next_report = _report(next_report, progress_every_s, event.send_ms, sent - 1, started)
            elif speed != "max":
                due = started + (event.send_ms - first_send) / 1000 / float(speed)
                while (wait_s := due - time.monotonic()) > 0:
                    # Pacing, not waiting for a result: sleep in short steps so progress lines keep coming.
                    time.sleep(min(wait_s, 0.5))
                    next_report = _report(next_report, progress_every_s, event.send_ms, sent - 1, started)
            topic, payload = encode(event.device, event.measurement, topic_prefix)
            link_for(event.device.id).publish(topic, payload, event.device.id)
            next_report = _report(next_report, progress_every_s, event.send_ms, sent, started)

        every_link = [shared] if shared is not None else _distinct(links.values())
        deadline = time.monotonic() + ack_timeout_s
        while any(link.outstanding for link in every_link):
            if time.monotonic() > deadline:
                missing = sum(link.outstanding for link in every_link)
                raise PublishError(f"the broker did not acknowledge {missing} message(s) within {ack_timeout_s:.0f} s")
            time.sleep(0.02)

        for device in status_devices:
            link_for(device.id).publish(status_topic(device), b"offline", f"status:{device.id}", retain=True)
            status_count += 1
        while any(link.outstanding for link in every_link):
            if time.monotonic() > deadline:
                raise PublishError("the broker did not acknowledge the final status messages")
            time.sleep(0.02)
        elapsed = time.monotonic() - started

        acked: Counter[str] = Counter()
        failures: list[str] = []
        for link in every_link:
            acked.update(link.acked)
            failures.extend(link.failed)
        if failures:
            raise PublishError(f"the broker rejected {len(failures)} message(s), e.g. {failures[0]}")
        per_device = {device_id: n for device_id, n in acked.items() if not device_id.startswith("status:")}
        domain_of = {device.id: device.domain for device in devices}
        per_domain: Counter[str] = Counter()
        for device_id, n in per_device.items():
            per_domain[domain_of.get(device_id, "?")] += n
        total = sum(per_device.values())
        log.info("published %d messages from %d devices in %.1f s (%.0f msg/s)",
                 total, len(per_device), elapsed, total / elapsed if elapsed else 0.0)
        return SimResult(total, dict(sorted(per_device.items())), status_count, elapsed, first_send, last_send,
                         dict(per_domain))
    finally:
        for link in ([shared] if shared is not None else []) + _distinct(links.values()):
            link.close()


def account_of(device: DeviceSpec) -> str:
    """The broker account ``device``'s messages arrive with: its own id, or its bridge's account."""
    if device.format == "canonical":
        return device.id
    bridge = BRIDGE_TREES.get(device.format)
    if bridge is None:
        raise PublishError(f"device {device.id}: no broker account for source format {device.format!r}")
    return bridge[0]


def _account_links(
    devices: Sequence[DeviceSpec],
    credentials: Mapping[str, str],
    mqtt_url: str,
    client_id: str,
    max_inflight: int,
    ca_file: str | None,
    status_topic: Callable[[DeviceSpec], str],
) -> dict[str, _Link]:
    """Device id -> its link, one connection per account; links of bridged devices are shared."""
    accounts = {device.id: account_of(device) for device in devices}
    missing = sorted({account for account in accounts.values() if account not in credentials})
    if missing:
        raise PublishError(
            f"no password for {len(missing)} broker account(s) in the credentials, e.g. {', '.join(missing[:5])}; "
            "regenerate them with 'placesense broker-config' for this registry"
        )
    inflight = max(10, max_inflight // max(1, len(set(accounts.values()))))
    by_account: dict[str, _Link] = {}
    links: dict[str, _Link] = {}
    try:
        for device in devices:
            account = accounts[device.id]
            link = by_account.get(account)
            if link is None:
                will = (status_topic(device), b"offline") if device.format == "canonical" else None
                link = _Link(f"{client_id}-{account}", mqtt_url, account, credentials[account], inflight, ca_file,
                             will, mqtt5=True)
                by_account[account] = link
                link.connect()
            links[device.id] = link
    except BaseException:
        for link in by_account.values():
            link.close()
        raise
    return links


def _distinct(links: Iterable[_Link]) -> list[_Link]:
    """Each link once, in first-seen order (bridged devices share one)."""
    return list({id(link): link for link in links}.values())


def _report(next_report: float, every_s: float, sim_ms: int, sent: int, started: float) -> float:
    now = time.monotonic()
    if now < next_report:
        return next_report
    log.info("simulated time %s: %d messages sent (%.0f msg/s)", rfc3339(sim_ms), sent, sent / (now - started))
    return now + every_s
