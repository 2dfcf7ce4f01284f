"""The benchmark's helper processes: the publisher and the two raw-limit probes.

``placesense bench`` runs each of these as ``python -m placesense.tools.bench.roles <role> …`` so that publishing
and the raw measurements never share a core's GIL, or their memory, with the pipeline being measured. Each
role rebuilds the workload from the same arguments (see ``placesense.tools.bench.workload``), talks to its
parent (``placesense.tools.bench.worker``) with one JSON object per stdout line (``{"event": "ready"}`` and
``{"event": "done", …}``), and waits for a ``go`` line on stdin before the timed part, so that set-up work
(encoding, connecting) is never timed.

Roles:
- ``publish``: publishes every message with QoS 1 as fast as the broker acknowledges, keeping at most
  ``--inflight`` unacknowledged, optionally paced to ``--rate``; writes each message's publish wall time. It
  writes prepared MQTT 3.1.1 packets on a plain socket rather than through paho, to leave the cores to the
  pipeline (see ``publish``).
- ``subscribe``: a bare paho subscriber (QoS 1, paho's automatic acknowledgement) counting what it receives.
- ``ingest-receive``: ingest's own MQTT consumer (``ingest.mqtt.MqttConsumer``: persistent session, manual
  PUBACKs sent per 200 messages) counting what it receives, and nothing else of the pipeline.
- ``influx-write``: the line protocol of the same messages, written to a scratch database in large batches.

Nothing here is imported by the service; it exists only for measuring it.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import socket
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
from ingest.mqtt import Message, MqttConfig, MqttConsumer, read_varint
from placesense.tools.bench.workload import Workload, build_registry, parse_formats


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


def _remaining_length(length: int) -> bytes:
    """MQTT's variable byte integer, as a packet's remaining length is sent."""
    out = bytearray()
    while True:
        length, byte = length >> 7, length & 0x7F
        out.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(out)


def _packet(kind: int, body: bytes) -> bytes:
    return bytes((kind,)) + _remaining_length(len(body)) + body


def _utf8(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _qos1_publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    return _packet(0x32, _utf8(topic) + packet_id.to_bytes(2, "big") + payload)


class _Acks:
    """Counts the broker's PUBACKs (and fails on anything it should not send) from a non-blocking socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self.count = 0

    def read(self) -> None:
        try:
            data = self._sock.recv(65536)
        except BlockingIOError:
            return
        if not data:
            raise SystemExit("the broker closed the publisher's connection")
        buffer = self._buffer
        buffer += data
        at = 0
        while len(buffer) - at >= 2:
            length, body = read_varint(buffer, at + 1, len(buffer))
            if length < 0 or body + length > len(buffer):
                break  # cut off: the rest comes with the next read
            if buffer[at] >> 4 != 4:  # PUBACK
                raise SystemExit(f"the broker sent MQTT packet type {buffer[at] >> 4}, not a PUBACK")
            if length >= 3 and buffer[body + 2] >= 0x80:
                raise SystemExit(f"the broker refused a message (reason code {buffer[body + 2]:#x})")
            self.count += 1
            at = body + length
        del buffer[:at]


def publish(args: argparse.Namespace) -> int:
    # The publisher stands in for thousands of devices and shares the machine's two cores with the pipeline it
    # measures, so it spends as little CPU per message as it can: every PUBLISH packet is encoded before "go",
    # and the timed loop only writes prepared bytes and counts PUBACKs (about a tenth of paho's cost a message).
    total = args.messages
    packets = [
        _qos1_publish_packet(topic, payload, index % 65535 + 1)
        for index, (topic, payload) in enumerate(_workload(args).encoded(args.prefix))
    ]
    window = args.inflight  # under 65,535, so a packet id is never reused while its message is unacknowledged
    sock = socket.create_connection((args.host, args.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # MQTT 3.1.1 CONNECT: clean session, keep-alive 60 s (we write far more often than that), no credentials.
    sock.sendall(_packet(0x10, _utf8("MQTT") + bytes((4, 0x02)) + (60).to_bytes(2, "big") + _utf8(args.client_id)))
    connack = sock.recv(4)
    if len(connack) != 4 or connack[0] != 0x20 or connack[3] != 0:
        raise SystemExit(f"publisher could not connect to {args.host}:{args.port} (CONNACK {connack.hex()})")
    sock.setblocking(False)
    acks = _Acks(sock)
    _say("ready", messages=total)
    _wait_for_go()

    published_ms = array("d", bytes(8 * total))
    interval_s = 1.0 / args.rate if args.rate else 0.0
    started = time.monotonic()
    sent = 0
    pending = memoryview(b"")
    while sent < total or pending:
        # Everything due now (the pace) that fits in the window goes out in one write.
        if not pending:
            due = total if not interval_s else min(total, int((time.monotonic() - started) / interval_s) + 1)
            upto = min(due, acks.count + window)
            if upto > sent:
                now = _now_ms()
                for index in range(sent, upto):
                    published_ms[index] = now
                pending = memoryview(b"".join(packets[sent:upto]))
                sent = upto
        if pending:
            with contextlib.suppress(BlockingIOError):  # the socket buffer is full: select says when it drains
                pending = pending[sock.send(pending) :]
        # Paced, wake for the next message due, but at most once a millisecond: at 10,000 msgs/s that writes ~10
        # packets at a time instead of making a system call per message.
        wake = None if not interval_s or sent >= total else max(0.001, started + sent * interval_s - time.monotonic())
        readable, _, _ = select.select([sock], [sock] if pending else [], [], wake if not pending else None)
        if readable:
            acks.read()
    while acks.count < total:
        if select.select([sock], [], [], 1.0)[0]:
            acks.read()
        if time.monotonic() - started > args.timeout:
            raise SystemExit(f"broker acknowledged only {acks.count} of {total} messages")
    elapsed = time.monotonic() - started
    sock.sendall(_packet(0xE0, b""))  # DISCONNECT: a clean end, not a dropped connection in the broker's log
    sock.close()
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
    parser = argparse.ArgumentParser(prog="python -m placesense.tools.bench.roles")
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
