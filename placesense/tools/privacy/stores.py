"""The stores a privacy action works through, and which of their rows are one home's.

``PrivacyStores`` holds InfluxDB, the relational store (with the alert store and the audit log built on it), the
registry, the state and spool folders, the topic prefix and the broker login; it names a home's devices and
matches its dead letters, topics and discovered devices exactly, never by a pattern. Export, erasure and retention
(``export``, ``erasure``, ``retention`` beside this module) share it; building it creates the stores' tables. It
must not export, delete or record anything itself: it only says what belongs to a home.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, or_, tuple_
from sqlalchemy.exc import SQLAlchemyError

from devices.registry import Registry
from devices.topics import DEVICE_ID_RE, canonical_topic
from ingest.mqtt import MqttConfig
from placesense.basics.errors import ConfigError, StorageError
from placesense.storage import erasure
from placesense.storage.influx import InfluxClient


class PrivacyStores:
    """Where a home's personal data is kept, and which rows there are the home's."""

    def __init__(
        self,
        influx: InfluxClient,
        engine: Engine,
        registry: Registry,
        state_dir: Path,
        spool_dir: Path | None = None,
        *,
        topic_prefix: str = "",
        broker: MqttConfig | None = None,
    ) -> None:
        from api.audit import AuditLog
        from ingest.deadletters import DeadLetterStore
        from ingest.devicestate import DeviceStates
        from placesense.alerts.store import AlertStore

        self.influx = influx
        self.engine = engine
        self.registry = registry
        self.state_dir = state_dir
        self.spool_dir = spool_dir
        self.topic_prefix = topic_prefix
        # The login that may empty devices' retained status messages (the alerts publisher's); None: none here.
        self.broker = broker
        # Building the stores creates their tables, so a fresh database exports and deletes without errors (the
        # alert store creates the notification outbox and acknowledge links with the alerts' own tables).
        self.alerts = AlertStore(engine)
        self.audit = AuditLog(engine)
        DeadLetterStore(engine)
        DeviceStates(engine)

    def home_devices(self, home_id: str) -> list[str]:
        """The home's devices: those in the registry, and any InfluxDB still holds for it (removed devices)."""
        devices = {d.id for d in self.registry.devices.values() if d.subject == home_id}
        devices.update(erasure.home_device_ids(self.influx, home_id))
        return sorted(devices)

    def letters_of(self, home_id: str, devices: Iterable[str]) -> Any:
        """The home's dead letters, matched exactly: those recorded under the home; and, from before letters
        recorded their home, those of its devices by id, source or exact topic. Never a pattern: a device named
        ``telemetry`` once matched every device's telemetry topic, and erased three other homes' letters."""
        from ingest.deadletters import dead_letters

        ids = sorted(devices)
        specs = [d for d in self.registry.devices.values() if d.id in ids]
        sources = sorted({(d.format, d.source_key) for d in specs} | {("canonical", i) for i in ids})
        topics = sorted(self.topics_of(ids))
        unrecorded = and_(
            dead_letters.c.subject.is_(None),
            or_(
                dead_letters.c.device_id.in_(ids),
                tuple_(dead_letters.c.source_format, dead_letters.c.source_id).in_(sources),
                dead_letters.c.topic.in_(topics),
            ),
        )
        return or_(dead_letters.c.subject == home_id, unrecorded)

    def topics_of(self, devices: Iterable[str]) -> set[str]:
        """Every topic a device of the home publishes on, exactly (with the installation's prefix)."""
        prefix = self.topic_prefix
        topics: set[str] = set()
        for device_id in devices:
            spec = self.registry.devices.get(device_id)
            domain = spec.domain if spec else "home"
            topics |= {canonical_topic(domain, device_id, kind, prefix) for kind in ("telemetry", "status")}
            if spec is not None and spec.format == "zigbee2mqtt":
                topics.add(f"{prefix}zigbee2mqtt/{spec.source_key}")
        return topics

    def discovered_of(self, home_id: str) -> Any:
        """Discovered-device rows of the home's devices: heard before they were registered."""
        from ingest.deadletters import discovered_devices

        sources = sorted({(d.format, d.source_key) for d in self.registry.devices.values() if d.subject == home_id})
        if not sources:
            return discovered_devices.c.format.is_(None)  # matches nothing (a primary key is never NULL)
        return tuple_(discovered_devices.c.format, discovered_devices.c.source_id).in_(sources)

    @staticmethod
    def mapped() -> Any:
        return _SqlErrors()


class _SqlErrors:
    """Map SQLAlchemy errors to ``StorageError`` once, here, so the CLI prints one readable line."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any) -> None:
        if isinstance(exc, SQLAlchemyError):
            raise StorageError(f"database: {type(exc).__name__}: {exc}") from exc


def check_home_id(home_id: str) -> str:
    """``home_id`` if it is a home id, else a ``ConfigError``."""
    # Ids go into queries (escaped by placesense.storage.influxql, and the registry's id pattern has no quote or
    # backslash to escape anyway). The whole id must match: '$' would let a trailing newline through.
    if not DEVICE_ID_RE.fullmatch(home_id):
        raise ConfigError(f"{home_id!r} is not a home id (a-z, 0-9, '.', '_', '-')")
    return home_id
