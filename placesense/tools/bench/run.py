"""``BenchRun``: one run of the bench against one broker and one InfluxDB. It names each part's settings, topic
prefix, database and broker session (all under the run's id, so parts never see each other's messages), times
the raw limits through helper processes, runs the service through the two pipeline parts, counts what InfluxDB
holds afterwards and drops what the run created. The order of the parts and the JSON are ``measure``'s.

It measures; it must not change how ingest works. Its only hook into the pipeline is a sink (``logs.StoredLog``),
which the pipeline calls with readings right after their durable write and PUBACK.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
import uuid
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.registry import Registry
from ingest.pipeline import subscriptions
from placesense.basics.memory import settle_memory
from placesense.service import Service
from placesense.settings import Settings, load_settings
from placesense.tools.bench.logs import AlertLog, StoredLog
from placesense.tools.bench.meters import CpuMeter, RssPeak, quantiles
from placesense.tools.bench.progress import BenchError, progress
from placesense.tools.bench.worker import Worker, worker
from placesense.tools.bench.workload import Workload

MEASUREMENTS = ("home", "soil", "air")


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
        progress(f"raw InfluxDB: writing {self.workload.messages:,} points in 5,000-point batches")
        with worker("influx-write", [*self.workload_argv(), "--url", self.influx_url, "--db", db]) as w:
            w.expect("ready", 300)
            w.go()
            done = w.expect("done", self.args.timeout)
        rate = float(done["rate"])
        progress(f"raw InfluxDB: {rate:,.0f} points/s")
        return rate

    def raw_mqtt(self, role: str = "subscribe") -> tuple[float, float]:
        """Drain a backlog with a bare paho subscriber (``subscribe``) or with ingest's own MQTT consumer and
        nothing else of the pipeline (``ingest-receive``); return the receive rate and the publisher's rate."""
        part = "raw" if role == "subscribe" else "rawingest"
        who = "a bare paho subscriber" if role == "subscribe" else "ingest's MQTT consumer alone"
        prefix = f"bench/{self.run_id}/{part}/"
        client_id = f"bench-{self.run_id}-{part}-sub"
        self.client_ids.append(client_id)
        progress(f"raw MQTT: publishing a backlog of {self.workload.messages:,} messages for {who}")
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
        progress(f"raw MQTT: {who}: {rate:,.0f} messages/s received (publisher: {published['rate']:,.0f}/s)")
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
                progress(f"{what}: {int(received):,} received, {int(done):,}/{expect:,} stored, "
                          f"{int(evaluated):,} evaluated")
            if now > deadline:
                raise BenchError(f"{what}: only {int(done)} of {expect} messages stored and {int(evaluated)} "
                                 f"evaluated within {self.args.timeout:.0f} s")
            # only evaluation is left: look often, it ends the measured span
            time.sleep(0.005 if done >= expect else 0.05)

    def pipeline_capacity(self) -> tuple[float, int]:
        settings = self.settings("drain")
        self.prime_session(settings)
        progress(f"pipeline capacity: publishing a backlog of {self.workload.messages:,} messages")
        pub, _ = self.publish_all(settings.topic_prefix, "drain")
        try:
            pub.expect("done", self.args.timeout)
        finally:
            pub.close()
        log = StoredLog()
        service = Service.build(settings, registry=self.registry, sinks=[log])
        settle_memory()  # as ``placesense serve`` does
        progress("pipeline capacity: service started, draining the backlog")
        service.start()
        cpu = self.cpu_meter(service)  # from when the evaluation process is ready: its start-up is not the drain's
        try:
            self.wait_stored(service, log, "pipeline capacity", self.workload.messages)
            self.drain_cpu_us = cpu.per_message_us(self.workload.messages)
        finally:
            service.stop()
        dead = int(service.metrics.value("placesense_dead_letters_total"))
        rate = log.throughput()
        progress(f"pipeline capacity: {rate:,.0f} messages/s end to end ({dead} dead letters)")
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
            progress(f"pipeline latency: publishing {self.workload.messages:,} messages live {pace}")
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
            "publish_to_stored_ms": quantiles(to_stored),
            "publish_to_received_ms": quantiles(to_received),
            "received_to_stored_ms": quantiles(received_to_stored),
            "dead_letters": int(service.metrics.value("placesense_dead_letters_total")),
            "event_to_alert_ms": quantiles(event_to_alert),
            "stored_to_alert_ms": quantiles(stored_to_alert),
            "alert_changes": len(event_to_alert),
            "cpu_us_per_msg": live_cpu,
            "state_bytes_per_device": round(state_size / max(1, len(self.registry.devices)), 1),
        }
        progress(f"pipeline latency: publish→stored p50 {result['publish_to_stored_ms']['p50']:.0f} ms, "
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

