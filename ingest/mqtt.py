"""The MQTT side of ingest: a paho-mqtt (v2 API) client with a persistent session and manual acknowledgement.

MQTT 5, ``clean_start=False`` and a long session expiry make the broker keep our subscriptions and queue
messages while we are down; ``manual_ack`` lets the pipeline send PUBACK only after a durable write; the
Receive Maximum we announce bounds how many unacknowledged messages the broker sends us, which keeps memory
flat under load. paho reconnects by itself with a doubling back-off. Nothing here decodes or stores.

Three changes to how paho moves bytes, each measured with ``placesense bench`` (docs/benchmarks.md):
- paho reads each packet with three or more ``recv`` calls (command byte, each length byte, body) and one
  ``select`` per packet. ``_BufferedSocket`` takes up to 256 KiB from the kernel at once and serves those small
  reads from memory, and ``_IngestClient.loop_read`` handles every packet already buffered before returning to
  ``select``. A bare paho subscriber spends ~58 µs of CPU per message here; with these two, ~34 µs.
- ``ack`` writes one buffer holding a batch's PUBACKs instead of one queued packet, wake-up byte and ``send``
  per message.
- An MQTT 5 QoS 1 PUBLISH (all of ingest's traffic) is parsed by ``_qos1_publish`` straight into topic, payload
  and packet id: whole packets already in the read buffer in one pass (``take_qos1_publishes``), others once
  paho has read them (``_IngestClient._handle_publish``). paho's own path builds a message object, its
  properties and a topic-filter match per message, which we do not use. Anything else takes paho's path.
- The messages of one read burst are handed on together, stamped with one receive time: one queue operation
  (two lock round trips) per burst instead of per message.
"""

from __future__ import annotations

import logging
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from placesense.basics.errors import PlacesenseError

log = logging.getLogger("placesense.ingest.mqtt")

SESSION_EXPIRY_S = 7 * 24 * 3600


class Message(NamedTuple):
    """One received message; ``generation`` is the connection it arrived on (acks are per connection).

    A named tuple: immutable, and built several times faster than a frozen dataclass, once per message."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_ms: int
    generation: int


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    client_id: str
    subscriptions: tuple[str, ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    receive_maximum: int = 5000
    keepalive_s: int = 30

    def secure(self, client: mqtt.Client) -> None:
        """Give a paho client this configuration's login and, for ``mqtts://``, TLS verified against
        ``ca_file`` (the system's CAs when unset)."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set_context(ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None))


class MqttConnectionError(PlacesenseError):
    pass


_RECV_CHUNK = 256 * 1024
# The fixed header and packet id of a PUBACK without a reason code (MQTT 3.1.1, and MQTT 5's short form for
# "success").
_PUBACK_HEADER = struct.Struct("!BBH")
# How many buffered packets loop_read handles before giving paho's loop a turn to write (PUBACKs, PINGREQ).
_READ_BURST = 1000
# Messages handed on together at most. It bounds what one read burst holds: a broker that lets more than our
# Receive Maximum through (mosquitto 2.0.11 does, once acknowledgements flow: eclipse-mosquitto/mosquitto#2301)
# could otherwise fill a burst with a whole backlog, read 256 KiB at a time.
_BURST_MESSAGES = 1000


def read_varint(data: bytes | bytearray, at: int, end: int) -> tuple[int, int]:
    """The MQTT variable byte integer at ``at`` (at most 4 bytes, before ``end``) and the position after it;
    ``(-1, at)`` when it is cut off or too long."""
    value, shift = 0, 0
    while at < end and shift <= 21:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at
    return -1, at


def _qos1_publish(data: bytes | bytearray, at: int, end: int, retain: bool) -> tuple[str, bytes, int, bool] | None:
    """``(topic, payload, packet id, retain)`` of the MQTT 5 QoS 1 PUBLISH whose variable header and payload are
    ``data[at:end]``: topic length and topic, packet id, properties (skipped: we announce no Topic Alias Maximum,
    so the broker sends whole topics), payload. None if malformed: paho then reads it and says what is wrong."""
    if end - at < 5:  # topic length, packet id and properties length at the least
        return None
    topic_end = at + 2 + (data[at] << 8 | data[at + 1])
    if topic_end + 2 >= end:
        return None
    props, mark = read_varint(data, topic_end + 2, end)
    if props < 0 or mark + props > end:
        return None
    # The broker checked the topic is UTF-8; a bad one still reaches the pipeline, as a dead letter.
    return (
        data[at + 2 : topic_end].decode("utf-8", "replace"),
        bytes(memoryview(data)[mark + props : end]),
        data[topic_end] << 8 | data[topic_end + 1],
        retain,
    )


class _BufferedSocket:
    """A socket whose small reads are served from one large ``recv``; everything else goes to the socket."""

    __slots__ = ("_buffer", "_pos", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        buffer, pos = self._buffer, self._pos
        if pos >= len(buffer):
            data: bytes = self._sock.recv(max(size, _RECV_CHUNK))  # BlockingIOError/SSL errors pass up
            if len(data) <= size:
                return data
            self._buffer, pos = data, 0
            buffer = data
        end = pos + size
        self._pos = end
        return buffer[pos:end]

    def take_qos1_publishes(self, into: list[tuple[str, bytes, int, bool]], limit: int) -> int:
        """Parse up to ``limit`` complete MQTT 5 QoS 1 PUBLISH packets at the front of the buffer into ``into`` as
        ``(topic, payload, packet id, retain)``; stop at anything else (or a packet not all here yet) and leave it
        for paho. Call only between packets (paho has no partial packet). Returns how many were taken."""
        buffer, pos = self._buffer, self._pos
        end_of_data = len(buffer)
        taken = 0
        while pos < end_of_data and taken < limit:
            command = buffer[pos]
            if command & 0xF6 != 0x32:  # PUBLISH with QoS 1; DUP and RETAIN may be set
                break
            length, at = read_varint(buffer, pos + 1, end_of_data)
            end = at + length
            if length < 0 or end > end_of_data:  # cut off or malformed: paho reads it and reports what is wrong
                break
            publish = _qos1_publish(buffer, at, end, bool(command & 0x01))
            if publish is None:
                break
            into.append(publish)
            taken += 1
            pos = end
        self._pos = pos
        return taken

    def pending(self) -> int:
        """Bytes readable without the kernel: what we buffered plus what TLS has decrypted. paho skips its
        ``select`` while this is non-zero."""
        inner = getattr(self._sock, "pending", None)
        return len(self._buffer) - self._pos + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _IngestClient(mqtt.Client):
    """paho's client with buffered reads, a short path for QoS 1 PUBLISH and batched PUBACKs (see the module
    docstring). ``on_qos1`` receives a read burst's QoS 1 messages as ``(topic, payload, mid, retain)`` tuples;
    without it paho's ``on_message`` gets each one."""

    on_qos1: Callable[[list[tuple[str, bytes, int, bool]]], None] | None = None
    _burst: list[tuple[str, bytes, int, bool]] | None = None

    def _handle_publish(self) -> MQTTErrorCode:
        command: int = self._in_packet["command"]
        burst = self._burst
        if burst is None or (command & 0x06) != 0x02 or self._protocol != mqtt.MQTTv5:
            if burst and self.on_qos1 is not None:  # keep arrival order: what came before this one goes first
                self.on_qos1(burst.copy())
                burst.clear()
            return super()._handle_publish()
        packet: bytearray = self._in_packet["packet"]
        publish = _qos1_publish(packet, 0, len(packet), bool(command & 0x01))
        if publish is None:
            return super()._handle_publish()  # malformed: paho says so
        burst.append(publish)
        return mqtt.MQTT_ERR_SUCCESS

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        deliver = self.on_qos1
        burst: list[tuple[str, bytes, int, bool]] | None = [] if deliver is not None else None
        self._burst = burst
        try:
            rc = super().loop_read(max_packets)
            fast = burst is not None and self._protocol == mqtt.MQTTv5
            for _ in range(_READ_BURST):
                sock = self._sock
                if rc != mqtt.MQTT_ERR_SUCCESS or sock is None or not sock.pending():  # type: ignore[attr-defined]
                    break
                room = _BURST_MESSAGES - len(burst) if burst is not None else 1
                if room <= 0:
                    break
                # Whole QoS 1 PUBLISH packets already buffered are parsed in one pass, without paho's per-packet
                # state machine; anything else, or a packet cut by the buffer's end, goes through paho.
                if fast and self._in_packet["command"] == 0 and sock.take_qos1_publishes(burst, room):  # type: ignore[attr-defined]
                    with self._msgtime_mutex:
                        self._last_bytes_received = mqtt.time_func()
                    continue
                rc = super().loop_read(1)
        finally:
            self._burst = None
            if burst:
                assert deliver is not None
                deliver(burst)
        return rc

    def ack_many(self, mids: list[int]) -> None:
        """Queue the PUBACKs of ``mids`` as one write."""
        if mids:
            packet = b"".join([_PUBACK_HEADER.pack(mqtt.PUBACK, 2, mid) for mid in mids])
            self._packet_queue(mqtt.PUBACK, packet, 0, 1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # PINGREQs sent and PINGRESPs received, counted under one condition: the broker answers a connection's
        # packets in order, so once the answer to our PINGREQ is in, it has read every packet queued before it.
        self._pings = 0
        self._pongs = 0
        self._pong = threading.Condition()
        super().__init__(*args, **kwargs)

    def _send_pingreq(self) -> MQTTErrorCode:
        with self._pong:
            self._pings += 1
        return super()._send_pingreq()

    def _handle_pingresp(self) -> MQTTErrorCode:
        rc = super()._handle_pingresp()
        with self._pong:
            self._pongs += 1
            self._pong.notify_all()
        return rc

    def broker_has_read(self, timeout_s: float) -> bool:
        """Send a PINGREQ behind everything queued and wait for its PINGRESP; True when it came."""
        with self._pong:
            target = self._pings + 1
        if self._send_pingreq() != mqtt.MQTT_ERR_SUCCESS:
            return False
        with self._pong:
            return self._pong.wait_for(lambda: self._pongs >= target, timeout_s)


class MqttConsumer:
    """Delivers lists of messages to ``on_messages`` (called on paho's network thread, in arrival order) and
    acknowledges on request."""

    def __init__(
        self, config: MqttConfig, on_messages: Callable[[list[Message]], None], metrics: Any = None
    ) -> None:
        self.config = config
        self._on_messages = on_messages
        self._metrics = metrics
        self._generation = 0
        self._subscribe_mid = -1
        self._ack_lock = threading.Lock()
        self._paused = False
        self.connected = threading.Event()
        self._socket_open = threading.Event()  # from CONNACK until paho reports the connection closed
        self.client = _IngestClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        config.secure(self.client)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_qos1 = self._on_qos1
        self.client.on_subscribe = self._on_subscribe

    @property
    def generation(self) -> int:
        return self._generation

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = self.config.receive_maximum
        self.client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        # The broker must have read the last PUBACKs before we close: having been acknowledged, it sends more
        # messages at once, and closing a socket with unread data makes the kernel reset the connection, which
        # can discard PUBACKs the broker has not read yet; it then sends those messages again after a restart
        # (seen: 39 of 40 acknowledged messages came back). A PINGREQ round trip proves they were read.
        if self._socket_open.is_set() and not self.client.broker_has_read(2.0):
            log.warning("the MQTT broker did not answer before disconnecting; it may send some messages again")
        self.client.disconnect()
        self.client.loop_stop()
        # paho closes its wake-up socket pair only when a connected loop ends (not when stopped mid-connect).
        self.client._reset_sockets()
        self.connected.clear()

    def pause(self) -> None:
        """Deliver nothing more (at shutdown, while the last batch flushes); what arrives stays unacknowledged
        and the broker sends it again next time."""
        self._paused = True

    def wait_connected(self, timeout_s: float) -> bool:
        return self.connected.wait(timeout_s)

    def ack(self, messages: list[Message]) -> int:
        """PUBACK the QoS 1/2 messages that arrived on the current connection; return how many were acked.

        A message from an earlier connection is not acknowledged: its packet id may now belong to another
        message. The broker redelivers it; its write is idempotent, so nothing doubles.
        """
        with self._ack_lock:
            generation = self._generation
            # We subscribe with QoS 1, so the broker never sends QoS 2.
            mids = [m.mid for m in messages if m.qos == 1 and m.generation == generation]
            self.client.ack_many(mids)
        return len(mids)

    # paho callbacks (network thread)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error(
                "MQTT broker %s:%d refused the connection: %s. Check PLACESENSE_MQTT_USERNAME/PASSWORD and the "
                "broker's ACL for client id %r.",
                self.config.host, self.config.port, reason, self.config.client_id,
            )
            return
        with self._ack_lock:
            self._generation += 1
        self._socket_open.set()
        session = "resumed" if flags.session_present else "new"
        log.info("connected to MQTT broker %s:%d (%s session)", self.config.host, self.config.port, session)
        _, mid = client.subscribe([(topic, 1) for topic in self.config.subscriptions])
        self._subscribe_mid = -1 if mid is None else mid
        if self._metrics is not None:
            self._metrics.inc("placesense_mqtt_connects_total")
        if flags.session_present:
            # A resumed session already holds our subscriptions, and the broker may send its backlog before it
            # confirms the new SUBSCRIBE: we are consuming now.
            self.connected.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        # Ready only once the broker has confirmed the subscriptions: before that, a new session would miss
        # messages published meanwhile.
        if mid != self._subscribe_mid:
            return
        refused = [r for r in reasons if r.is_failure]
        if refused:
            log.error(
                "the broker refused %d of our subscriptions (%s); check the ACL of the ingest account",
                len(refused), ", ".join(str(r) for r in refused),
            )
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._socket_open.clear()
        self.connected.clear()
        if reason.value != 0:
            log.warning("lost the MQTT broker (%s); reconnecting with back-off", reason)

    def _on_qos1(self, burst: list[tuple[str, bytes, int, bool]]) -> None:
        if not self._paused:
            received_ms, generation = time.time_ns() // 1_000_000, self._generation
            self._on_messages(
                [Message(topic, payload, mid, 1, retain, received_ms, generation)
                 for topic, payload, mid, retain in burst]
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._paused:
            return
        self._on_messages([
            Message(
                topic=msg.topic,
                payload=bytes(msg.payload),
                mid=msg.mid,
                qos=msg.qos,
                retain=bool(msg.retain),
                received_ms=time.time_ns() // 1_000_000,
                generation=self._generation,
            )
        ])
