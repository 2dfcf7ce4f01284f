"""The ingest pipeline: receive → decode → batch → durable write → journal → acknowledge → hand on.

Threads and their jobs:
- paho's network thread only timestamps a message and queues it (never blocks on storage);
- the batch worker decodes, builds line protocol, and flushes by size or age: dead letters committed to the
  relational store, readings written to InfluxDB or the spool, appended to the evaluation journal
  (``ingest.journal``, which the rules read), then — and only then — PUBACKs sent; it waits while the journal
  holds too many readings the rules have not evaluated, so a slow rule pushes back on the broker;
- the replay thread drains the spool when InfluxDB is back;
- the hand-on thread passes stored readings to in-process sinks (the bench's timing log).
A message that cannot be stored stays unacknowledged and the broker delivers it again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from devices.decode import DecodeLimits, decode_message
from devices.readings import Reading
from devices.registry import DeviceSpec, Registry
from devices.topics import SUBSCRIPTIONS, TopicInfo, classify_topic
from ingest.deadletters import DeadLetter, DeadLetterStore
from ingest.devicestate import DeviceStates
from ingest.journal import Backlog
from ingest.lineprotocol import LineEncoder, series_tags
from ingest.metrics import IngestMetrics
from ingest.mqtt import Message, MqttConfig, MqttConsumer
from ingest.writer import Rejected, StorageWriter
from placesense.basics.errors import DecodeError, RetryableStorageError
from placesense.basics.term import Fenced

log = logging.getLogger("placesense.ingest")

Sink = Callable[[Sequence[Reading]], None]

HTTP_JOURNAL_WAIT_S = 10.0  # an HTTP push waits this long for the rules to make room, then gets a 503
HANDOFF_BATCHES = 4  # stored batches that may wait for the sinks before ingest waits for them
# How often device status (last seen, battery, online) is saved; the API reads it from memory, so this only bounds
# what a crash forgets until each device's next reading. Saving a 10,000-device fleet every 2 s held the database
# (shared with the alert store) and the GIL long enough to delay alert changes: p99 stored→alert 274 ms.
DEVICE_STATUS_SAVE_S = 30.0


@dataclass(frozen=True)
class PipelineConfig:
    mqtt: MqttConfig
    topic_prefix: str = ""
    batch_max_points: int = 5000
    batch_max_ms: int = 25
    batch_linger_ms: int = 10
    limits: DecodeLimits = field(default_factory=DecodeLimits)


def subscriptions(prefix: str) -> tuple[str, ...]:
    return tuple(prefix + topic for topic in SUBSCRIPTIONS)


def spool_refusals(refused: Sequence[tuple[str, str]], now_ms: int) -> list[DeadLetter]:
    """Dead letters for spooled lines InfluxDB refused on replay, as ``(line, reason)``. No message waits for
    them; the line's own tags say whose reading it was, so an export or erasure of that home finds it."""
    letters = []
    for line, reason in refused:
        tags = series_tags(line)
        letters.append(DeadLetter(topic="(spool replay)", payload=line.encode(), reason=reason,
                                  kind="refused_by_influxdb", received_ms=now_ms, device_id=tags.get("device"),
                                  subject=tags.get("subject")))
    return letters


@dataclass
class _Batch:
    messages: list[Message] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    line_messages: list[Message] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    started: float = 0.0


class Pipeline:
    """One ingest instance. ``start()`` connects and runs; ``stop()`` flushes what it holds and disconnects."""

    def __init__(
        self,
        config: PipelineConfig,
        registry: Registry,
        writer: StorageWriter,
        dead_letters: DeadLetterStore,
        device_states: DeviceStates,
        metrics: IngestMetrics,
        sinks: Sequence[Sink] = (),
        journal: Backlog | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.writer = writer
        self.dead_letters = dead_letters
        self.device_states = device_states
        self.metrics = metrics
        self.sinks = list(sinks)
        self.journal = journal  # where stored readings wait for the rules (``ingest.journal``)
        self.consumer = MqttConsumer(config.mqtt, self._enqueue, metrics)
        self._encoder = LineEncoder()
        # Read bursts from paho's thread, at most ``_max_queued`` messages in all. The Receive Maximum should bound
        # them already, but not every broker keeps to it (mosquitto 2.0.11 lets whole backlogs through once
        # acknowledgements flow); this bound holds whatever the broker does, by making paho stop reading.
        self._inbox: queue.Queue[list[Message]] = queue.Queue()
        self._max_queued = max(1000, config.mqtt.receive_maximum)
        self._queued_count = 0  # messages received and not yet taken into a batch
        self._room = threading.Condition()
        # Stored batches waiting for the sinks. Kept short: when the rules fall behind, the batch worker waits
        # here and the broker holds the rest, instead of this process holding up to 64 batches (320,000
        # readings, ~250 MB in the 10,000-device bench) that are stored but not yet evaluated.
        self._handoff: queue.Queue[list[Reading] | None] = queue.Queue(maxsize=HANDOFF_BATCHES)
        self._stopping = threading.Event()
        self._evaluate_until = 0.0
        self._threads: list[threading.Thread] = []
        writer.on_refused = self._dead_letter_spooled
        metrics.gauge("placesense_spool_segments", lambda: float(len(writer.spool)))
        metrics.gauge("placesense_spool_bytes", lambda: float(writer.spool.size_bytes))
        metrics.gauge("placesense_influx_up", lambda: 1.0 if writer.influx_up else 0.0)
        metrics.gauge("placesense_mqtt_connected", lambda: 1.0 if self.consumer.connected.is_set() else 0.0)
        metrics.gauge("placesense_ingest_queue_depth", lambda: float(self._queued_count))

    # lifecycle

    def start(self) -> None:
        for name, target in (
            ("ingest-batch", self._batch_loop),
            ("ingest-replay", self._replay_loop),
            ("ingest-handoff", self._handoff_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.consumer.start()
        log.info(
            "ingest started: %d devices registered, subscribed to %s",
            len(self.registry.devices),
            ", ".join(self.config.mqtt.subscriptions),
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop receiving, flush and acknowledge what is held, then stop the threads."""
        self.consumer.pause()  # nothing new while the last batch flushes
        # Rules may be behind; give them a while to catch up, but never hold a shutdown hostage.
        self._evaluate_until = time.monotonic() + min(10.0, timeout_s / 3)
        self._stopping.set()
        with self._room:
            self._room.notify_all()  # paho's thread may be waiting for room in the inbox
        for thread in self._threads:
            thread.join(timeout_s)
        self.consumer.stop()
        try:
            self.device_states.flush()
        except RetryableStorageError as exc:
            log.warning("could not save device status at stop: %s", exc)

    # receive (paho network thread)

    def _enqueue(self, messages: list[Message]) -> None:
        # Waiting here stops paho reading the socket, which pushes back on the broker through TCP.
        with self._room:
            while self._queued_count >= self._max_queued and not self._stopping.is_set():
                self._room.wait(1.0)
            self._queued_count += len(messages)
        self._inbox.put(messages)

    def _taken(self, burst: list[Message]) -> None:
        with self._room:
            self._queued_count -= len(burst)
            self._room.notify()

    # decode

    def _classify(self, message: Message, batch: _Batch) -> None:
        info = classify_topic(message.topic, self.config.topic_prefix)
        if info is None:
            self._reject(batch, message, f"topic {message.topic!r} is not one placesense reads", "unknown_topic")
            return
        if info.kind == "status":
            self._status(message, info, batch)
            return
        if info.kind == "housekeeping":  # a bridge's own topic (Zigbee2MQTT's bridge/..., /set, /availability)
            self.metrics.inc("placesense_housekeeping_messages_total")
            return
        device = self.registry.lookup(info.format, info.source_id)
        if device is None:
            self._reject(
                batch,
                message,
                f"unknown device {info.source_id!r} ({info.format}); register it in the device registry",
                "unknown_device",
                info=info,
            )
            return
        try:
            reading = decode_message(info, message.payload, device, message.received_ms, self.config.limits)
        except DecodeError as exc:
            self._reject(batch, message, exc.reason, exc.kind, device=device, info=info)
            return
        except RecursionError:
            self._reject(batch, message, "payload nests too deeply", "malformed_json", device=device, info=info)
            return
        try:
            line = self._encoder.encode(reading)
        except ValueError as exc:
            self._reject(batch, message, str(exc), "unstorable", device=device, info=info)
            return
        batch.readings.append(reading)
        batch.lines.append(line)
        batch.line_messages.append(message)
        for refused in reading.refused:  # values of the message that were not stored, each with its reason
            self._reject(batch, message, refused.dead_letter_reason(), refused.kind, device=device, info=info)

    def _status(self, message: Message, info: TopicInfo, batch: _Batch) -> None:
        device = self.registry.lookup("canonical", info.source_id)
        text = message.payload.decode("utf-8", "replace").strip().strip('"').lower()
        if device is None:
            self._reject(batch, message, f"status from unknown device {info.source_id!r}", "unknown_device", info=info)
        elif text not in ("online", "offline"):
            self._reject(batch, message, f"status must be 'online' or 'offline', got {text[:40]!r}", "invalid_status",
                         device=device, info=info)
        else:
            self.metrics.inc("placesense_status_messages_total")
            self.device_states.saw_status(device.id, text == "online", message.received_ms)

    def _reject(
        self,
        batch: _Batch,
        message: Message,
        reason: str,
        kind: str,
        *,
        device: DeviceSpec | None = None,
        info: TopicInfo | None = None,
    ) -> None:
        # Whose letter it is, as far as ingest could tell: an export or erasure of a home finds it by these.
        batch.dead.append(
            DeadLetter(
                topic=message.topic,
                payload=message.payload,
                reason=reason,
                kind=kind,
                received_ms=message.received_ms,
                device_id=device.id if device else None,
                source_format=info.format if info else None,
                source_id=info.source_id if info else None,
                subject=device.subject if device else None,
            )
        )

    # batch worker

    def _batch_loop(self) -> None:
        batch = _Batch()
        carried: list[Message] = []  # the rest of a burst that did not fit in the last batch
        max_points = self.config.batch_max_points
        max_age = self.config.batch_max_ms / 1000
        linger = min(self.config.batch_linger_ms / 1000, max_age)
        while True:
            # With a batch open, wait a little for more, but a quiet moment ends it: under load the inbox is never
            # quiet and batches grow to their limits; at a trickle each reading is stored (and alerted on) at once.
            burst: list[Message] | None
            if carried:
                burst, carried = carried, []
            else:
                remaining = batch.started + max_age - time.monotonic()
                timeout = max(0.0, min(linger, remaining)) if batch.messages else max_age
                try:
                    burst = self._inbox.get(timeout=timeout)
                    self._taken(burst)
                except queue.Empty:
                    burst = None
            if burst is not None:
                if not batch.messages:
                    batch.started = time.monotonic()
                # Take what is already waiting without going back to the clock for each burst.
                received = 0
                while True:
                    room = max_points - len(batch.messages)
                    if len(burst) > room:
                        burst, carried = burst[:room], burst[room:]
                    for message in burst:
                        batch.messages.append(message)
                        self._classify(message, batch)
                    received += len(burst)
                    if carried or len(batch.messages) >= max_points:
                        break
                    try:
                        burst = self._inbox.get_nowait()
                    except queue.Empty:
                        break
                    self._taken(burst)
                # Counted here, once per drain, rather than per message on paho's network thread.
                self.metrics.inc("placesense_messages_received_total", received)
            full = len(batch.messages) >= max_points
            old = bool(batch.messages) and time.monotonic() - batch.started >= max_age
            quiet = burst is None and bool(batch.messages)
            if full or old or quiet or (self._stopping.is_set() and batch.messages):
                self._flush(batch)
                batch = _Batch()
            if self._stopping.is_set() and not carried and self._inbox.empty() and not batch.messages:
                self._handoff.put(None)
                return

    def _flush(self, batch: _Batch) -> None:
        """Store the batch durably, retrying until it is stored or we are told to stop; then acknowledge."""
        delay = 0.2
        refused: set[int] = set()
        while True:
            try:
                rejected = self.writer.store(batch.lines)
                refused = {r.index for r in rejected}
                dead = batch.dead + [
                    DeadLetter(
                        topic=batch.line_messages[r.index].topic,
                        payload=batch.line_messages[r.index].payload,
                        reason=r.reason,
                        kind="refused_by_influxdb",
                        received_ms=batch.line_messages[r.index].received_ms,
                        device_id=batch.readings[r.index].device_id,
                        subject=batch.readings[r.index].subject,
                    )
                    for r in rejected
                ]
                self.dead_letters.add_many(dead)
                break
            except RetryableStorageError as exc:
                if self._stopping.is_set():
                    log.error(
                        "stopping with %d messages unstored (%s); the broker will redeliver them",
                        len(batch.messages), exc,
                    )
                    return
                log.warning("cannot store a batch of %d messages yet: %s", len(batch.messages), exc)
                self._stopping.wait(delay)
                delay = min(delay * 2, 10.0)
        stored = [r for i, r in enumerate(batch.readings) if i not in refused]
        # Journalled before the acknowledgement: from here on the reading will be evaluated even if this process
        # dies, and the journal's bound on readings not yet evaluated is the evaluation's back-pressure.
        if stored and self.journal is not None and not self._journal(stored):
            return  # not acknowledged: the broker delivers them again (their second write overwrites the first)
        self.consumer.ack(batch.messages)
        self.metrics.inc("placesense_batches_total")
        for letter in dead:
            self.metrics.inc("placesense_dead_letters_total", kind=letter.kind)
        self._stored(stored)

    def _journal(self, stored: list[Reading]) -> bool:
        """Append a stored batch to the journal, retrying while it cannot take it; False when stopping, or when
        this instance no longer leads (the journal is shared, and the new leader's ingest takes the messages)."""
        assert self.journal is not None
        delay = 0.2
        while True:
            try:
                if self.journal.append(stored, stopping=self._stopping) is not None:
                    return True
                log.warning("stopping with %d readings stored but not handed to the rules; the broker will deliver "
                            "them again", len(stored))
                return False
            except Fenced as exc:
                log.error("not acknowledging %d readings: %s", len(stored), exc)
                return False
            except RetryableStorageError as exc:
                if self._stopping.is_set():
                    return False
                log.warning("cannot hand a batch of %d readings to the rules yet: %s", len(stored), exc)
                self._stopping.wait(delay)
                delay = min(delay * 2, 10.0)

    def _stored(self, readings: list[Reading]) -> None:
        """Count durably stored readings, note them in device state and hand them on to the sinks."""
        self.metrics.inc("placesense_readings_stored_total", len(readings))
        if readings:
            self.device_states.saw_readings(readings)
            if self.sinks:
                self._handoff.put(readings)

    def ingest_readings(self, readings: Sequence[Reading]) -> list[Rejected]:
        """Store readings that arrived outside MQTT (HTTP push) through the same durable path.

        Returns the readings InfluxDB refused for good (the caller has the raw request to dead-letter). Raises
        ``RetryableStorageError`` if neither InfluxDB nor the spool could take them: the caller answers 503.
        """
        lines = [self._encoder.encode(r) for r in readings]
        rejected = self.writer.store(lines)
        refused = {r.index for r in rejected}
        stored = [r for i, r in enumerate(readings) if i not in refused]
        if stored and self.journal is not None and self.journal.append(stored, timeout_s=HTTP_JOURNAL_WAIT_S) is None:
            raise RetryableStorageError(
                "stored, but the rules are too far behind to take more now; send again shortly (nothing doubles)"
            )
        self._stored(stored)
        return rejected

    def _dead_letter_spooled(self, refused: list[tuple[str, str]]) -> None:
        letters = spool_refusals(refused, time.time_ns() // 1_000_000)
        self.dead_letters.add_many(letters)
        for letter in letters:
            self.metrics.inc("placesense_dead_letters_total", kind=letter.kind)

    # spool replay and hand-on

    def _replay_loop(self) -> None:
        idle = 0.5
        last_flush = time.monotonic()
        while not self._stopping.is_set():
            progressed = False
            try:
                progressed = self.writer.replay_once()
            except Exception:  # the loop must survive anything; the segment stays for the next try
                log.exception("spool replay failed; will retry")
            if time.monotonic() - last_flush > DEVICE_STATUS_SAVE_S:
                last_flush = time.monotonic()
                try:
                    self.device_states.flush()
                except RetryableStorageError as exc:
                    log.warning("%s", exc)
            if not progressed:
                self._stopping.wait(idle)

    def _handoff_loop(self) -> None:
        skipped = 0
        while True:
            readings = self._handoff.get()
            if readings is None:
                if skipped:
                    log.warning("stopped with %d stored readings not yet evaluated by the rules", skipped)
                return
            if self._stopping.is_set() and time.monotonic() > self._evaluate_until:
                skipped += len(readings)  # stored and acknowledged already; only evaluation is skipped
                continue
            for sink in self.sinks:
                try:
                    sink(readings)
                except Exception:  # a failing rule must not stop ingest or the other sinks
                    log.exception("a reading sink failed on %d readings", len(readings))
