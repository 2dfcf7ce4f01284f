"""The benchmark's helper processes: the publisher and the two raw-limit probes.

``placesense bench`` runs each of these as ``python -m placesense.bench_workers <role> …`` so that publishing
and the raw measurements never share a core's GIL, or their memory, with the pipeline being measured. Each
role rebuilds the workload from the same arguments (see ``placesense.bench_workload``), talks to its parent
with one JSON object per stdout line (``{"event": "ready"}`` and ``{"event": "done", …}``), and waits for a
``go`` line on stdin before the timed part, so that set-up work (encoding, connecting) is never timed.

Roles:
- ``publish``: publishes every message with QoS 1 as fast as the broker acknowledges, keeping at most
  ``--inflight`` unacknowledged, optionally paced to ``--rate``; writes each message's publish wall time.
- ``subscribe``: a bare paho subscriber (QoS 1, paho's automatic acknowledgement) counting what it receives.
- ``ingest-receive``: ingest's own MQTT consumer (``ingest.mqtt.MqttConsumer``: persistent session, manual
  PUBACKs sent per 200 messages) counting what it receives, and nothing else of the pipeline.
- ``influx-write``: the line protocol of the same messages, written to a scratch database in large batches.

Nothing here is imported by the service; it exists only for measuring it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from array import array
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.decode import DecodeLimits, decode_message
from devices.topics import classify_topic
from ingest.lineprotocol import encode_reading
from ingest.mqtt import Message, MqttConfig, MqttConsumer
from placesense.bench_workload import Workload, build_registry, parse_formats


def _say(event: str, **fields: Any) -> None:
    sys.stdout.write(orjson.dumps({"event": event, **fields}).decode() + "\n")
    sys.stdout.flush()


def _wait_for_go() -> None:
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit("parent went away before 'go'")


def _workload(args: argparse.Namespace) -> Workload:
    registry = build_registry(args.devices, parse_formats(args.formats))
    return Workload(registry, args.messages, args.base_ms)


def _now_ms() -> float:
    return time.time() * 1000.0


# ---------------------------------------------------------------------------------------------- publish


def publish(args: argparse.Namespace) -> int:
    messages = list(_workload(args).encoded(args.prefix))
    total = len(messages)
    window = args.inflight
    acked = 0

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        nonlocal acked
        acked += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=mqtt.MQTTv311)
    # We bound the window ourselves: paho's own in-flight limit rescans every unacknowledged message on each
    # PUBACK, which made it the publisher's bottleneck (about 5k messages/s with a window of 1,000).
    client.max_inflight_messages_set(0)
    client.on_publish = on_publish
    client.connect(args.host, args.port, keepalive=60)
    # One thread drives the socket: publish() writes straight away when no network thread runs, and loop()
    # reads the PUBACKs. A separate network thread would cost a wake-up and a GIL hand-over per message.
    deadline = time.monotonic() + 10
    while not client.is_connected():
        client.loop(timeout=0.05)
        if time.monotonic() > deadline:
            raise SystemExit(f"publisher could not connect to {args.host}:{args.port}")
    _say("ready", messages=total)
    _wait_for_go()

    published_ms = array("d", bytes(8 * total))
    interval_s = 1.0 / args.rate if args.rate else 0.0
    started = time.monotonic()
    sent = 0
    while sent < total:
        # Keep the window full; the broker's PUBACKs free slots.
        while sent < total and sent - acked < window:
            if interval_s and time.monotonic() < started + sent * interval_s:
                break
            topic, payload = messages[sent]
            published_ms[sent] = _now_ms()
            info = client.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise SystemExit(f"publish failed: {mqtt.error_string(info.rc)}")
            sent += 1
        client.loop(timeout=0.001 if interval_s else 0.01)
    while acked < total:
        client.loop(timeout=0.05)
        if time.monotonic() - started > args.timeout:
            raise SystemExit(f"broker acknowledged only {acked} of {total} messages")
    elapsed = time.monotonic() - started
    client.disconnect()
    Path(args.times_out).write_bytes(published_ms.tobytes())
    _say("done", published=total, seconds=elapsed, rate=total / elapsed if elapsed else 0.0)
    return 0


# ---------------------------------------------------------------------------------------------- subscribe


class _Tally:
    """How many messages a receiver has had, and when the first and the last arrived."""

    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.received = 0
        self.first_ms = 0.0
        self.last_ms = 0.0
        self.done = threading.Event()

    def count(self) -> None:
        now = _now_ms()
        if self.received == 0:
            self.first_ms = now
        self.last_ms = now
        self.received += 1
        if self.received >= self.expect:
            self.done.set()

    def report(self) -> None:
        elapsed_s = (self.last_ms - self.first_ms) / 1000.0
        rate = (self.received - 1) / elapsed_s if elapsed_s > 0 else 0.0
        _say("done", received=self.received, seconds=elapsed_s, rate=rate)


def subscribe(args: argparse.Namespace) -> int:
    tally = _Tally(args.expect)
    subscribed = threading.Event()

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        tally.count()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe(f"{args.prefix}#", qos=1)

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        subscribed.set()

    # The same protocol, session and in-flight bound as ingest, so the two runs differ only in what happens to
    # each message after it arrives.
    v5 = args.protocol == "5"
    if v5:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=mqtt.MQTTv311, clean_session=False
        )
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = args.receive_maximum
    props.SessionExpiryInterval = 3600
    if v5:
        client.connect(args.host, args.port, keepalive=60, clean_start=True, properties=props)
    else:
        client.connect(args.host, args.port, keepalive=60)
    client.loop_start()
    if not subscribed.wait(10):
        raise SystemExit("subscriber was not subscribed within 10 s")
    # Leave: the broker keeps the session and queues everything published meanwhile, so that after 'go' we
    # measure how fast a subscriber drains a backlog, not how fast the publisher can publish.
    client.disconnect()
    client.loop_stop()
    _say("ready")
    _wait_for_go()
    if v5:
        client.connect(args.host, args.port, keepalive=60, clean_start=False, properties=props)
    else:
        client.connect(args.host, args.port, keepalive=60)
    client.loop_start()
    tally.done.wait(args.timeout)
    client.disconnect()
    client.loop_stop()
    tally.report()
    return 0


def ingest_receive(args: argparse.Namespace) -> int:
    tally = _Tally(args.expect)
    held: list[Message] = []

    def on_messages(messages: list[Message]) -> None:
        for message in messages:
            tally.count()
            held.append(message)
            if len(held) >= 200 or tally.done.is_set():
                consumer.ack(held)
                held.clear()

    config = MqttConfig(args.host, args.port, args.client_id, (f"{args.prefix}#",),
                        receive_maximum=args.receive_maximum)
    consumer = MqttConsumer(config, on_messages)
    consumer.start()
    if not consumer.wait_connected(10):
        raise SystemExit("ingest's consumer was not subscribed within 10 s")
    consumer.stop()  # the broker keeps the session and queues the backlog, as for the bare subscriber
    _say("ready")
    _wait_for_go()
    consumer = MqttConsumer(config, on_messages)
    consumer.start()
    tally.done.wait(args.timeout)
    consumer.stop()
    tally.report()
    return 0


# ---------------------------------------------------------------------------------------------- influx-write


def influx_write(args: argparse.Namespace) -> int:
    workload = _workload(args)
    registry = workload.registry
    limits = DecodeLimits()
    received_ms = int(_now_ms())
    lines: list[str] = []
    for topic, payload in workload.encoded():
        info = classify_topic(topic)
        device = registry.lookup(info.format, info.source_id) if info else None
        if info is None or device is None:
            raise SystemExit(f"workload topic {topic!r} does not match its own registry")
        lines.append(encode_reading(decode_message(info, payload, device, received_ms, limits)))
    bodies = [
        "\n".join(lines[start : start + args.batch]).encode() for start in range(0, len(lines), args.batch)
    ]
    with httpx.Client(base_url=args.url, timeout=60) as http:
        http.post("/query", data={"q": f'CREATE DATABASE "{args.db}"'}).raise_for_status()
        try:
            _say("ready", points=len(lines), batches=len(bodies))
            _wait_for_go()
            started = time.perf_counter()
            for body in bodies:
                resp = http.post(
                    "/write",
                    params={"db": args.db, "precision": "ms"},
                    content=body,
                    headers={"Content-Type": "text/plain; charset=utf-8"},
                )
                if resp.status_code != 204:
                    raise SystemExit(f"InfluxDB refused a raw batch ({resp.status_code}): {resp.text[:300]}")
            elapsed = time.perf_counter() - started
        finally:
            http.post("/query", data={"q": f'DROP DATABASE "{args.db}"'})
    _say("done", points=len(lines), seconds=elapsed, rate=len(lines) / elapsed if elapsed else 0.0)
    return 0


# ---------------------------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m placesense.bench_workers")
    roles = parser.add_subparsers(dest="role", required=True)

    def workload_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--devices", type=int, required=True)
        p.add_argument("--messages", type=int, required=True)
        p.add_argument("--formats", required=True)
        p.add_argument("--base-ms", type=int, required=True)

    pub = roles.add_parser("publish")
    workload_args(pub)
    pub.add_argument("--host", required=True)
    pub.add_argument("--port", type=int, required=True)
    pub.add_argument("--prefix", required=True)
    pub.add_argument("--client-id", required=True)
    pub.add_argument("--inflight", type=int, default=1000)
    pub.add_argument("--rate", type=float, default=0.0)
    pub.add_argument("--times-out", required=True)
    pub.add_argument("--timeout", type=float, default=600.0)
    pub.set_defaults(run=publish)

    def receiver_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--prefix", required=True)
        p.add_argument("--client-id", required=True)
        p.add_argument("--expect", type=int, required=True)
        p.add_argument("--receive-maximum", type=int, default=5000)
        p.add_argument("--timeout", type=float, default=600.0)

    sub = roles.add_parser("subscribe")
    receiver_args(sub)
    sub.add_argument("--protocol", choices=("5", "3.1.1"), default="5")
    sub.set_defaults(run=subscribe)

    own = roles.add_parser("ingest-receive")
    receiver_args(own)
    own.set_defaults(run=ingest_receive)

    write = roles.add_parser("influx-write")
    workload_args(write)
    write.add_argument("--url", required=True)
    write.add_argument("--db", required=True)
    write.add_argument("--batch", type=int, default=5000)
    write.set_defaults(run=influx_write)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
