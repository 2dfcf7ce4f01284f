"""The composition root: settings → clients → ingest pipeline → rules and detectors → alerts → API.

This is the only place that builds clients and wires the rooms together. ``Service`` owns their lifecycle;
``placesense serve`` runs one inside the API's lifespan, and tests build one the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devices.decode import DecodeLimits
from devices.readings import Reading
from devices.registry import Registry, load_registry
from ingest.deadletters import DeadLetterStore
from ingest.devicestate import DeviceStates
from ingest.influx import InfluxClient, InfluxConfig
from ingest.metrics import IngestMetrics
from ingest.mqtt import MqttConfig
from ingest.pipeline import Pipeline, PipelineConfig, Sink, subscriptions
from ingest.spool import Spool
from ingest.writer import StorageWriter
from placesense.clock import Clock, make_clock
from placesense.db import make_engine
from placesense.settings import Settings

log = logging.getLogger("placesense.service")


def influx_config(settings: Settings) -> InfluxConfig:
    return InfluxConfig(
        url=settings.influx_url,
        db=settings.influx_db,
        rp=settings.influx_rp,
        username=settings.influx_username,
        password=settings.influx_password.get_secret_value() if settings.influx_password else None,
        token=settings.influx_token.get_secret_value() if settings.influx_token else None,
        timeout_s=settings.influx_timeout_s,
    )


def mqtt_config(settings: Settings, client_id: str | None = None) -> MqttConfig:
    return MqttConfig(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        client_id=client_id or settings.mqtt_client_id,
        subscriptions=subscriptions(settings.topic_prefix),
        username=settings.mqtt_username,
        password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None,
        tls=settings.mqtt_tls,
        ca_file=settings.mqtt_ca_file,
        receive_maximum=settings.mqtt_receive_maximum,
    )


@dataclass
class Service:
    """Everything ``placesense serve`` runs, built from settings."""

    settings: Settings
    registry: Registry
    clock: Clock
    metrics: IngestMetrics
    influx: InfluxClient
    dead_letters: DeadLetterStore
    device_states: DeviceStates
    pipeline: Pipeline
    extras: dict[str, Any] = field(default_factory=dict)
    _stoppers: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, registry: Registry | None = None, sinks: Sequence[Sink] = ()) -> Service:
        registry = registry or load_registry(settings.registry_path)
        clock = make_clock(settings.clock)
        metrics = IngestMetrics()
        engine = make_engine(settings.database_url)
        influx = InfluxClient(influx_config(settings))
        spool = Spool(settings.spool_dir, settings.spool_max_mb * 1_000_000)
        writer = StorageWriter(influx, spool, metrics, create_database=settings.influx_create_db)
        dead_letters = DeadLetterStore(engine)
        device_states = DeviceStates(engine)

        def observe(readings: Sequence[Reading]) -> None:
            for reading in readings:
                clock.observe(reading.ts_ms)

        pipeline = Pipeline(
            PipelineConfig(
                mqtt=mqtt_config(settings),
                topic_prefix=settings.topic_prefix,
                batch_max_points=settings.batch_max_points,
                batch_max_ms=settings.batch_max_ms,
                limits=DecodeLimits(
                    max_payload_bytes=settings.max_payload_bytes,
                    max_future_ms=settings.max_future_s * 1000,
                    max_past_ms=settings.max_past_days * 86_400_000,
                ),
            ),
            registry,
            writer,
            dead_letters,
            device_states,
            metrics,
            sinks=[observe, *sinks],
        )
        return cls(settings, registry, clock, metrics, influx, dead_letters, device_states, pipeline,
                   extras={"engine": engine, "spool": spool, "writer": writer})

    def start(self) -> None:
        self.pipeline.start()

    def ingest_readings(self, readings: Sequence[Reading]) -> int:
        """Store readings that arrived outside MQTT (the API's HTTP push); return how many were stored."""
        return len(readings) - len(self.pipeline.ingest_readings(readings))

    def stop(self) -> None:
        for stopper in reversed(self._stoppers):
            try:
                stopper()
            except Exception:
                log.exception("error while stopping")
        self.pipeline.stop()
        self.influx.close()
