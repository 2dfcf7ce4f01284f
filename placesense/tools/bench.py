"""``placesense bench``: the whole pipeline measured against the raw limits of the same broker and InfluxDB.

One run, four timed parts, each on its own topic prefix and database so none sees another's messages:

1. raw InfluxDB: the line protocol of the workload written in 5,000-point batches to a scratch database;
2. raw MQTT: a bare paho subscriber (MQTT 5, QoS 1, paho's automatic PUBACK) draining a backlog of the workload;
3. pipeline capacity: the full service (``Service.build``: decode, validate, durable write, ack, sinks)
   draining the same backlog — messages/s from its first receive to its last stored reading;
4. pipeline latency: the service running while a publisher process publishes the workload live at
   ``--live-rate`` — publish→stored latency per message.

Capacity is measured from a backlog on both sides because on a small machine a live Python publisher, the
broker and the subscriber share the cores: a live run measures the publisher as much as the subscriber. The
publisher (``placesense.tools.bench_workers``) is always a separate process. ``lost`` is what the two pipeline parts
published minus the points found in InfluxDB afterwards. The last stdout line is the JSON object DESIGN.md
fixes; progress goes to stderr.

This module measures; it must not change how ingest works. Its only hook into the pipeline is a sink, which
the pipeline calls with readings right after their durable write and PUBACK.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
import orjson
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.readings import Reading
from devices.registry import Registry
from ingest.pipeline import subscriptions
from placesense.basics.errors import PlacesenseError
from placesense.basics.memory import settle_memory
from placesense.service import Service
from placesense.settings import Settings, load_settings
from placesense.tools.bench_workload import BENCH_FORMATS, Workload, build_registry, parse_formats
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.process import running

MEASUREMENTS = ("home", "soil", "air")


class BenchError(PlacesenseError):
    """The benchmark could not run or could not finish in time."""


def _progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- helpers


class Worker:
    """A ``placesense.tools.bench_workers`` child process and its JSON-lines conversation."""

    def __init__(self, role: str, argv: Sequence[str]) -> None:
        self.role = role
        self.process = subprocess.Popen(
            [sys.executable, "-m", "placesense.tools.bench_workers", role, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        # A reader thread, so that waiting for a line can time out without blocking on a pipe.
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: TextIO | None) -> None:
        assert stream is not None
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        """Wait for the next ``{"event": event, …}`` line."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(0.0, remaining))
            except queue.Empty:
                raise BenchError(f"the {self.role} worker said nothing for {timeout_s:.0f} s") from None
            if line is None:
                code = self.process.wait()
                raise BenchError(f"the {self.role} worker exited ({code}) before '{event}'")
            message: dict[str, Any] = orjson.loads(line)
            if message.get("event") == event:
                return message

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._reader.join(5)


@contextlib.contextmanager
def worker(role: str, argv: Sequence[str]) -> Iterator[Worker]:
    w = Worker(role, argv)
    try:
        yield w
    finally:
        w.close()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence; 0.0 when it is empty."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[rank])


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": round(percentile(ordered, 50), 2), "p99": round(percentile(ordered, 99), 2)}


class RssPeak:
    """The largest resident memory of the service seen while a pipeline part runs: this process (ingest and the
    API) plus its evaluation process, summed. The publisher, the probes and the servers are other processes.
    Sampled from ``/proc/<pid>/statm`` by the bench's own progress loop, so measuring adds no thread competing with
    the pipeline for the GIL (a sampling thread that walked every process ten times a second did). The sum counts
    pages the two processes share twice, so it errs high."""

    def __init__(self) -> None:
        self.peak_bytes = 0
        self.peak_parts: dict[str, int] = {}
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self, pid: int | str) -> int:
        try:
            with open(f"/proc/{pid}/statm", "rb") as statm:
                return int(statm.read().split()[1]) * self._page
        except OSError:  # gone, or not Linux
            try:
                return int(psutil.Process(None if pid == "self" else int(pid)).memory_info().rss)
            except psutil.Error:
                return 0

    def sample(self, evaluation_pid: int | None = None) -> None:
        parts = {"ingest_api": self._rss("self")}
        if evaluation_pid is not None:
            parts["evaluation"] = self._rss(evaluation_pid)
        for name, value in parts.items():
            self.peak_parts[name] = max(self.peak_parts.get(name, 0), value)
        self.peak_bytes = max(self.peak_bytes, sum(parts.values()))


class CpuMeter:
    """CPU time (user + system) processes spend over a part of the bench: a figure machine load barely moves,
    unlike wall-clock rates, so it shows where the work goes."""

    def __init__(self) -> None:
        self._start: dict[str, tuple[psutil.Process, float]] = {}

    def watch(self, name: str, pid: int | None) -> None:
        if pid is None:
            return
        try:
            process = psutil.Process(pid)
            times = process.cpu_times()
        except psutil.Error:
            return
        self._start[name] = (process, times.user + times.system)

    def per_message_us(self, messages: int) -> dict[str, float]:
        used: dict[str, float] = {}
        for name, (process, start) in self._start.items():
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            used[name] = round((times.user + times.system - start) / max(1, messages) * 1e6, 1)
        return used


@dataclass
class StoredLog:
    """What the bench's sink saw: per batch, when it was handed on, and its readings' event and receive times."""

    batches: list[tuple[float, array[int], array[int]]] = field(default_factory=list)
    count: int = 0
    evaluated_ms: float = 0.0  # when the evaluation process had finished with every stored reading

    def __call__(self, readings: Sequence[Reading]) -> None:
        # Called on the pipeline's hand-on thread after the durable write and PUBACK, before the batch is sent to
        # the evaluation process; kept cheap (two compact arrays per batch) so the bench disturbs the pipeline as
        # little as it can.
        now_ms = time.time() * 1000.0
        self.batches.append(
            (now_ms, array("q", [r.ts_ms for r in readings]), array("q", [r.received_ms for r in readings]))
        )
        self.count += len(readings)

    def first_received_ms(self) -> float:
        return float(min((min(received) for _, _, received in self.batches if received), default=0))

    def last_stored_ms(self) -> float:
        return max((stored for stored, _, _ in self.batches), default=0.0)

    def throughput(self) -> float:
        """Readings per second from the first received to the last stored and evaluated."""
        span_s = (max(self.last_stored_ms(), self.evaluated_ms) - self.first_received_ms()) / 1000.0
        return self.count / span_s if span_s > 0 else 0.0


class AlertLog:
    """Alert changes seen on the service's in-process feed, with the wall time each was published."""

    def __init__(self, service: Service) -> None:
        self.changes: list[tuple[float, int]] = []  # (published at, ms; the alert's event time, ms)
        self._subscription = service.alert_feed.subscribe()
        self._service = service
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-alerts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            change = self._subscription.get(timeout_s=0.2)
            if change is not None:
                self.changes.append((time.time() * 1000.0, change.alert.updated_at_ms))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._service.alert_feed.unsubscribe(self._subscription)

    def latencies(self, log: StoredLog) -> tuple[list[float], list[float]]:
        """Reading received → alert published, and reading stored → alert published, for the changes a reading
        caused (its event time is the alert's)."""
        seen: dict[int, tuple[int, float]] = {}  # event time → (received, stored)
        for stored_ms, event_times, received_times in log.batches:
            seen.update((event, (received, stored_ms)) for event, received in zip(event_times, received_times,
                                                                                   strict=True))
        caused = [(at, seen[event]) for at, event in self.changes if event in seen]
        return [at - received for at, (received, _) in caused], [at - stored for at, (_, stored) in caused]


# ---------------------------------------------------------------------------------------------- the run


@dataclass
class BenchRun:
    args: argparse.Namespace
    formats: tuple[str, ...]
    registry: Registry
    workload: Workload
    mqtt_url: str
    influx_url: str
    workdir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    rss: RssPeak = field(default_factory=RssPeak)
    client_ids: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    server_pids: dict[str, int] = field(default_factory=dict)  # the servers the bench started, if it did
    drain_cpu_us: dict[str, float] = field(default_factory=dict)

    @property
    def mqtt_host(self) -> str:
        return self.settings("x").mqtt_host

    @property
    def mqtt_port(self) -> int:
        return self.settings("x").mqtt_port

    def settings(self, part: str) -> Settings:
        return load_settings(
            mqtt_url=self.mqtt_url,
            influx_url=self.influx_url,
            influx_db=f"bench_{self.run_id}_{part}",
            mqtt_client_id=f"bench-{self.run_id}-{part}",
            topic_prefix=f"bench/{self.run_id}/{part}/",
            database_url=f"sqlite:///{self.workdir / f'bench-{part}.db'}",
            spool_dir=self.workdir / f"spool-{part}",
            state_dir=self.workdir / f"state-{part}",
        )

    def workload_argv(self) -> list[str]:
        return [
            "--devices", str(len(self.registry.devices)),
            "--messages", str(self.workload.messages),
            "--formats", ",".join(self.formats),
            "--base-ms", str(self.workload.base_ms),
        ]  # fmt: skip

    def publisher(self, prefix: str, client_id: str, times_out: Path, rate: float = 0.0) -> Worker:
        return Worker(
            "publish",
            [
                *self.workload_argv(),
                "--host", self.mqtt_host, "--port", str(self.mqtt_port),
                "--prefix", prefix, "--client-id", client_id,
                "--inflight", str(self.args.inflight), "--rate", str(rate),
                "--times-out", str(times_out),
            ],
        )  # fmt: skip

    def publish_all(self, prefix: str, part: str, rate: float = 0.0) -> tuple[Worker, Path]:
        times = self.workdir / f"published-{part}.bin"
        pub = self.publisher(prefix, f"bench-{self.run_id}-{part}-pub", times, rate)
        pub.expect("ready", 120)
        pub.go()
        return pub, times

    # raw limits

    def raw_influx(self) -> float:
        db = f"bench_{self.run_id}_raw"
        _progress(f"raw InfluxDB: writing {self.workload.messages:,} points in 5,000-point batches")
        with worker("influx-write", [*self.workload_argv(), "--url", self.influx_url, "--db", db]) as w:
            w.expect("ready", 300)
            w.go()
            done = w.expect("done", self.args.timeout)
        rate = float(done["rate"])
        _progress(f"raw InfluxDB: {rate:,.0f} points/s")
        return rate

    def raw_mqtt(self, role: str = "subscribe") -> tuple[float, float]:
        """Drain a backlog with a bare paho subscriber (``subscribe``) or with ingest's own MQTT consumer and
        nothing else of the pipeline (``ingest-receive``); return the receive rate and the publisher's rate."""
        part = "raw" if role == "subscribe" else "rawingest"
        who = "a bare paho subscriber" if role == "subscribe" else "ingest's MQTT consumer alone"
        prefix = f"bench/{self.run_id}/{part}/"
        client_id = f"bench-{self.run_id}-{part}-sub"
        self.client_ids.append(client_id)
        _progress(f"raw MQTT: publishing a backlog of {self.workload.messages:,} messages for {who}")
        argv = [
            "--host", self.mqtt_host, "--port", str(self.mqtt_port), "--prefix", prefix,
            "--client-id", client_id, "--expect", str(self.workload.messages),
            "--receive-maximum", str(self.settings(part).mqtt_receive_maximum),
            "--timeout", str(self.args.timeout),
        ]  # fmt: skip
        with worker(role, argv) as sub:
            sub.expect("ready", 60)
            pub, _ = self.publish_all(prefix, part)
            try:
                published = pub.expect("done", self.args.timeout)
            finally:
                pub.close()
            sub.go()
            done = sub.expect("done", self.args.timeout + 10)
        if int(done["received"]) < self.workload.messages:
            raise BenchError(f"{who} received {done['received']} of {self.workload.messages}")
        rate = float(done["rate"])
        _progress(f"raw MQTT: {who}: {rate:,.0f} messages/s received (publisher: {published['rate']:,.0f}/s)")
        return rate, float(published["rate"])

    # the pipeline

    def prime_session(self, settings: Settings) -> None:
        """Create ingest's persistent session and subscriptions before anything is published, as a deployed
        service has them, so that nothing published before its first SUBACK is missed."""
        subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.mqtt_client_id,
                             protocol=mqtt.MQTTv5)
        client.on_subscribe = lambda *_: subscribed.set()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        client.connect(settings.mqtt_host, settings.mqtt_port, clean_start=True, properties=props)
        client.loop_start()
        try:
            client.subscribe([(topic, 1) for topic in subscriptions(settings.topic_prefix)])
            if not subscribed.wait(10):
                raise BenchError("the broker did not acknowledge the bench's subscriptions within 10 s")
        finally:
            client.disconnect()
            client.loop_stop()
        self.client_ids.append(settings.mqtt_client_id)
        self.databases.append(settings.influx_db)

    def wait_stored(self, service: Service, log: StoredLog, what: str, expect: int) -> None:
        """Wait until ``expect`` messages are stored (or dead letters) and every stored reading is evaluated.
        Ends with an error naming the stage that stopped moving when no counter moves for ``--stall-timeout``,
        and at ``--timeout`` whatever happens: the bench never hangs."""
        metrics = service.metrics
        deadline = time.monotonic() + self.args.timeout
        last_report = 0.0
        moved_at = time.monotonic()
        last: tuple[float, ...] = ()
        while True:
            self.rss.sample(service.evaluator.pid)
            received = metrics.value("placesense_messages_received_total")
            dead = metrics.value("placesense_dead_letters_total")
            stored = metrics.value("placesense_readings_stored_total")
            evaluated = metrics.value("placesense_readings_evaluated_total")
            done = stored + dead
            # The sink runs on the hand-on thread just after the counters move; wait for it too, and for the
            # evaluation process to finish with what was stored: the rules and detectors are part of the pipeline.
            if done >= expect and log.count + dead >= expect and evaluated >= log.count:
                log.evaluated_ms = time.time() * 1000.0
                return
            now = time.monotonic()
            counters = (received, done, evaluated, float(log.count))
            if counters != last:
                last, moved_at = counters, now
            elif now - moved_at > self.args.stall_timeout:
                raise BenchError(_stalled(what, expect, received, done, evaluated, log.count, now - moved_at))
            if now - last_report >= 1.0:
                last_report = now
                _progress(f"{what}: {int(received):,} received, {int(done):,}/{expect:,} stored, "
                          f"{int(evaluated):,} evaluated")
            if now > deadline:
                raise BenchError(f"{what}: only {int(done)} of {expect} messages stored and {int(evaluated)} "
                                 f"evaluated within {self.args.timeout:.0f} s")
            # only evaluation is left: look often, it ends the measured span
            time.sleep(0.005 if done >= expect else 0.05)

    def pipeline_capacity(self) -> tuple[float, int]:
        settings = self.settings("drain")
        self.prime_session(settings)
        _progress(f"pipeline capacity: publishing a backlog of {self.workload.messages:,} messages")
        pub, _ = self.publish_all(settings.topic_prefix, "drain")
        try:
            pub.expect("done", self.args.timeout)
        finally:
            pub.close()
        log = StoredLog()
        service = Service.build(settings, registry=self.registry, sinks=[log])
        settle_memory()  # as ``placesense serve`` does
        _progress("pipeline capacity: service started, draining the backlog")
        service.start()
        cpu = self.cpu_meter(service)  # from when the evaluation process is ready: its start-up is not the drain's
        try:
            self.wait_stored(service, log, "pipeline capacity", self.workload.messages)
            self.drain_cpu_us = cpu.per_message_us(self.workload.messages)
        finally:
            service.stop()
        dead = int(service.metrics.value("placesense_dead_letters_total"))
        rate = log.throughput()
        _progress(f"pipeline capacity: {rate:,.0f} messages/s end to end ({dead} dead letters)")
        return rate, dead

    def cpu_meter(self, service: Service) -> CpuMeter:
        """A CPU meter on the service's two processes and the servers the bench started."""
        cpu = CpuMeter()
        cpu.watch("ingest_api", os.getpid())
        cpu.watch("evaluation", service.evaluator.pid)
        for name, pid in self.server_pids.items():
            cpu.watch(name, pid)
        return cpu

    def pipeline_live(self, rate: float) -> dict[str, Any]:
        settings = self.settings("live")
        self.prime_session(settings)
        log = StoredLog()
        service = Service.build(settings, registry=self.registry, sinks=[log])
        alerts = AlertLog(service)
        settle_memory()
        service.start()
        try:
            if not service.pipeline.consumer.wait_connected(15):
                raise BenchError(f"the pipeline could not connect to {self.mqtt_url}")
            pace = f"at {rate:,.0f}/s" if rate else "as fast as the broker takes"
            _progress(f"pipeline latency: publishing {self.workload.messages:,} messages live {pace}")
            pub, times_path = self.publish_all(settings.topic_prefix, "live", rate)
            cpu = self.cpu_meter(service)
            cpu.watch("publisher", pub.process.pid)
            try:
                published = pub.expect("done", self.args.timeout)
                live_cpu = cpu.per_message_us(self.workload.messages)  # the publisher's, before it exits
            finally:
                pub.close()
            self.wait_stored(service, log, "pipeline latency", self.workload.messages)
            live_cpu |= {name: used for name, used in cpu.per_message_us(self.workload.messages).items()
                         if name != "publisher"}
        finally:
            service.stop()
            alerts.close()
        state_file = settings.state_dir / "evaluation-state.json"
        state_size = state_file.stat().st_size if state_file.exists() else 0
        event_to_alert, stored_to_alert = alerts.latencies(log)
        published_ms = array("d")
        published_ms.frombytes(times_path.read_bytes())
        to_stored: list[float] = []
        to_received: list[float] = []
        received_to_stored: list[float] = []
        base = self.workload.base_ms
        for stored_ms, event_times, received_times in log.batches:
            for ts_ms, received_ms in zip(event_times, received_times, strict=True):
                sent = published_ms[ts_ms - base]
                to_stored.append(stored_ms - sent)
                to_received.append(received_ms - sent)
                received_to_stored.append(stored_ms - received_ms)
        result: dict[str, Any] = {
            "target_msgs_per_s": float(rate),
            "publish_msgs_per_s": round(float(published["rate"]), 1),
            "throughput_msgs_per_s": round(log.throughput(), 1),
            "publish_to_stored_ms": _quantiles(to_stored),
            "publish_to_received_ms": _quantiles(to_received),
            "received_to_stored_ms": _quantiles(received_to_stored),
            "dead_letters": int(service.metrics.value("placesense_dead_letters_total")),
            "event_to_alert_ms": _quantiles(event_to_alert),
            "stored_to_alert_ms": _quantiles(stored_to_alert),
            "alert_changes": len(event_to_alert),
            "cpu_us_per_msg": live_cpu,
            "state_bytes_per_device": round(state_size / max(1, len(self.registry.devices)), 1),
        }
        _progress(f"pipeline latency: publish→stored p50 {result['publish_to_stored_ms']['p50']:.0f} ms, "
                  f"p99 {result['publish_to_stored_ms']['p99']:.0f} ms")
        return result

    # afterwards

    def count_stored(self, db: str) -> int:
        """Points in ``db``: per device, the count of its most complete field (each device always sends the
        same fields), summed over devices."""
        total = 0
        with httpx.Client(base_url=self.influx_url, timeout=120) as http:
            for measurement in MEASUREMENTS:
                resp = http.post(
                    "/query",
                    params={"db": db},
                    data={"q": f'SELECT count(*) FROM "{measurement}" GROUP BY "device"'},
                )
                resp.raise_for_status()
                result = resp.json()["results"][0]
                if "error" in result and "database not found" not in result["error"]:
                    raise BenchError(f"cannot count stored readings: {result['error']}")
                for series in result.get("series", []):
                    row = series["values"][0]
                    total += max(int(v or 0) for c, v in zip(series["columns"], row, strict=True) if c != "time")
        return total

    def clean_up(self) -> None:
        """Drop the bench's databases and broker sessions (they matter on servers the bench did not start)."""
        with httpx.Client(base_url=self.influx_url, timeout=60) as http:
            for db in self.databases:
                with contextlib.suppress(httpx.HTTPError):
                    http.post("/query", data={"q": f'DROP DATABASE "{db}"'})
        for client_id in self.client_ids:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
            with contextlib.suppress(OSError):
                client.connect(self.mqtt_host, self.mqtt_port, clean_start=True, properties=props)
                client.loop_start()
                deadline = time.monotonic() + 5
                while not client.is_connected() and time.monotonic() < deadline:
                    time.sleep(0.01)
                client.disconnect()
                client.loop_stop()


def _stalled(what: str, expect: int, received: float, done: float, evaluated: float, handed_on: int,
             quiet_s: float) -> str:
    """Which stage stopped moving, in words."""
    if received < expect and received <= done:
        stage = (f"receiving stopped at {int(received):,} of {expect:,} messages (the broker or the publisher is "
                 "not delivering)")
    elif done < received:
        stage = f"storing stopped at {int(done):,} of {int(received):,} received messages (InfluxDB or the spool)"
    elif evaluated < handed_on:
        stage = (f"evaluation stopped at {int(evaluated):,} of {handed_on:,} stored readings (the rules process "
                 "answers nothing)")
    else:
        stage = f"the pipeline stopped at {int(done):,} of {expect:,} messages"
    return f"{what}: {stage}; nothing moved for {quiet_s:.0f} s"


def state_bytes(days: int) -> dict[str, float]:
    """Bytes of saved evaluation state per home, flowerbed and air site after ``days`` of simulated life
    (firmware-sim's fleet, in-process through the same evaluation core as serve), as it is written to the state
    file; the mean over four of each."""
    from firmware_sim.fleet import build_fleet
    from firmware_sim.simulation import generate

    from placesense.evaluation_core import EvaluationCore, EvaluationSpec, subject_state
    from placesense.statecodec import encode
    from rules.config import RulesConfig

    registry = build_fleet(homes=4, beds=4, air_sites=4, seed=11, formats="canonical")
    start = 1_704_067_200_000
    with tempfile.TemporaryDirectory(prefix="placesense-bench-state-") as folder:
        core = EvaluationCore(EvaluationSpec(registry, RulesConfig(), "event", Path(folder), 30))
        batch: list[tuple[Any, ...]] = []
        for device, m in generate(registry, start, start + days * 86_400_000, seed=11, anomalies=[]):
            batch.append((device.domain, device.id, device.subject, device.room, m.ts_ms,
                          {k: float(v) for k, v in m.metrics.items()}, m.battery_pct, m.seq))
            if len(batch) == 500:
                core.readings(batch)
                core.tick()
                batch = []
        core.readings(batch)
        parts: dict[str, Any] = {name: part.state() for name, part in core._parts().items()}
    sizes: dict[str, list[int]] = {"home": [], "bed": [], "site": []}
    for kind, subjects in (("home", registry.homes), ("bed", registry.flowerbeds), ("site", registry.air_sites)):
        for subject in subjects:
            ids = {subject} | {d.id for d in registry.devices.values() if d.subject == subject}
            sizes[kind].append(len(orjson.dumps(encode(subject_state(parts, ids)))))
    return {kind: round(sum(values) / len(values), 1) for kind, values in sizes.items()}


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def measure(bench: BenchRun) -> dict[str, Any]:
    args = bench.args
    started = time.monotonic()
    influx_rate = bench.raw_influx()
    mqtt_rate, raw_publish_rate = bench.raw_mqtt()
    ingest_receive_rate, _ = bench.raw_mqtt("ingest-receive")
    capacity, drain_dead = bench.pipeline_capacity()
    live_rate = args.live_rate if args.live_rate is not None else round(capacity / 2, -2) or 100.0
    live = bench.pipeline_live(live_rate)
    found = sum(bench.count_stored(db) for db in bench.databases)
    _progress(f"learned state: a simulated {args.state_days}-day life of 4 homes, 4 flowerbeds and 4 air sites")
    per_subject = state_bytes(args.state_days)
    _progress("learned state: " + ", ".join(f"{v:,.0f} bytes per {k}" for k, v in per_subject.items()))
    published = 2 * args.messages
    lost = published - found
    _progress(f"InfluxDB holds {found:,} of the {published:,} readings the pipeline was sent (lost {lost})")
    slower_raw = min(mqtt_rate, influx_rate)
    return {
        "messages": args.messages,
        "devices": args.devices,
        "formats": list(bench.formats),
        "throughput_msgs_per_s": round(capacity, 1),
        "publish_to_stored_ms": live["publish_to_stored_ms"],
        "event_to_alert_ms": live["event_to_alert_ms"],
        "peak_rss_mb": round(bench.rss.peak_bytes / 2**20, 1),
        "peak_rss_mb_by_process": {name: round(v / 2**20, 1) for name, v in bench.rss.peak_parts.items()},
        "lost": lost,
        "raw": {
            "mqtt_receive_msgs_per_s": round(mqtt_rate, 1),
            "influx_write_points_per_s": round(influx_rate, 1),
            "publisher_msgs_per_s": round(raw_publish_rate, 1),
            # not a raw limit: ingest's own receive path with nothing behind it, to show where the rest goes
            "ingest_receive_msgs_per_s": round(ingest_receive_rate, 1),
        },
        "ratio": round(capacity / slower_raw, 3) if slower_raw else 0.0,
        # CPU each process spent per message while the backlog drained; where the two cores went
        "drain_cpu_us_per_msg": bench.drain_cpu_us,
        "live": live,
        # the saved evaluation state (docs/state.md) per subject after a simulated life of --state-days days,
        # and of the live part's whole fleet per device
        "state_bytes_per": per_subject,
        "state_days": args.state_days,
        "state_bytes_per_device": live["state_bytes_per_device"],
        "published": published,
        "dead_letters": drain_dead + int(live["dead_letters"]),
        "machine": machine(),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


# ---------------------------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Measure the whole pipeline (decode, validate, durable write to InfluxDB, ack, sinks) against the raw\n"
        "limits of the same broker and InfluxDB: a bare paho subscriber's receive rate and InfluxDB's write rate\n"
        "in 5,000-point batches. Capacity is measured by draining a backlog; latency while a separate publisher\n"
        "process publishes live. Starts its own mosquitto and InfluxDB in a temporary folder unless\n"
        "--mqtt-url and --influx-url are given. Progress goes to stderr; the last stdout line is one JSON object:\n"
        "messages, devices, throughput_msgs_per_s, publish_to_stored_ms {p50,p99}, event_to_alert_ms {p50,p99},\n"
        "peak_rss_mb (the service's two processes summed), lost, raw {mqtt_receive_msgs_per_s,\n"
        "influx_write_points_per_s}, ratio (pipeline rate / lower raw rate), plus details: peak_rss_mb_by_process,\n"
        "drain_cpu_us_per_msg (CPU per message of each process while the backlog drained), live. See\n"
        "docs/benchmarks.md for recorded results."
    )
    parser.add_argument("--messages", type=int, default=100_000, metavar="N",
                        help="messages per timed part (default: %(default)s)")
    parser.add_argument("--devices", type=int, default=2_000, metavar="D",
                        help="simulated devices, messages go round-robin over them (default: %(default)s)")
    parser.add_argument("--formats", default=",".join(BENCH_FORMATS),
                        help="source formats, comma-separated, devices spread over them (default: %(default)s)")
    parser.add_argument("--mqtt-url", help="use this broker (mqtt://host:port) instead of starting one")
    parser.add_argument("--influx-url", help="use this InfluxDB (http://host:port) instead of starting one")
    parser.add_argument("--live-rate", type=float, default=None, metavar="MSGS_PER_S",
                        help="publish rate of the latency part; 0 = as fast as the broker takes (default: half the "
                        "measured pipeline capacity, so latency is measured below saturation, not in a growing queue)")
    parser.add_argument("--inflight", type=int, default=1000,
                        help="the publisher's bound on unacknowledged QoS 1 messages (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="deadline for each part to finish (default: 60 s + 2 ms per message)")
    parser.add_argument("--state-days", type=int, default=30, metavar="DAYS",
                        help="simulated days of life before the saved state is measured per home, bed and site "
                        "(default: %(default)s)")
    parser.add_argument("--stall-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="end the run with an error naming the stage when no count moves for this long "
                        "(default: %(default)s)")
    parser.add_argument("--workdir", type=Path,
                        help="keep servers' data, spool and SQLite here (default: a temporary folder, removed after)")


def run(args: argparse.Namespace) -> int:
    try:
        formats = parse_formats(args.formats)
    except ValueError as exc:
        raise BenchError(str(exc)) from exc
    if args.messages < 1 or args.devices < 1:
        raise BenchError("--messages and --devices must be at least 1")
    if bool(args.mqtt_url) != bool(args.influx_url):
        raise BenchError("give both --mqtt-url and --influx-url, or neither to start local servers")
    if args.timeout is None:
        args.timeout = 60.0 + args.messages * 0.002
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="placesense-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # SIGTERM (and a closed terminal) end the run like Ctrl-C: through every ``finally``, so the servers, the
    # service's rules process and the workers the bench started are stopped.
    previous = {signum: signal.signal(signum, _interrupted) for signum in (signal.SIGTERM, signal.SIGHUP)}
    _progress(f"building {args.devices:,} devices over {', '.join(formats)}; working in {workdir}")
    registry = build_registry(args.devices, formats)
    # Event times end a minute before now: inside ingest's accepted window, and distinct per message.
    base_ms = int(time.time() * 1000) - args.messages - 60_000
    workload = Workload(registry, args.messages, base_ms)
    try:
        if args.mqtt_url:
            result = _measure_with(args, formats, registry, workload, args.mqtt_url, args.influx_url, workdir, {})
        else:
            broker = Mosquitto(workdir / "mosquitto")
            influx = InfluxDB(workdir / "influxdb")
            _progress(f"starting mosquitto on {broker.url} and InfluxDB on {influx.url}")
            with running(broker, influx):
                pids = {"mosquitto": broker.proc.process, "influxdb": influx.proc.process}
                server_pids = {name: p.pid for name, p in pids.items() if p is not None}
                result = _measure_with(args, formats, registry, workload, broker.url, influx.url, workdir,
                                       server_pids)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(orjson.dumps(result).decode(), flush=True)
    return 0


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _measure_with(
    args: argparse.Namespace,
    formats: tuple[str, ...],
    registry: Registry,
    workload: Workload,
    mqtt_url: str,
    influx_url: str,
    workdir: Path,
    server_pids: dict[str, int],
) -> dict[str, Any]:
    bench = BenchRun(args, formats, registry, workload, mqtt_url, influx_url, workdir, server_pids=server_pids)
    try:
        return measure(bench)
    finally:
        bench.clean_up()
