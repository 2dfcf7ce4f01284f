"""The API's ports: what each resource needs from the running service, as small protocols.

A route declares one ``Annotated`` dependency for its resource (``api.deps``: ``Readings``, ``Homes``, ``Street``,
``Alerts``, ``Devices``, ``Push``, ``Operations``) and reaches the service only through it, so the API depends on
these shapes and never on the composition root's ``Service``, which satisfies all of them (``ApiService``) and is
handed to ``api.app.create_app``. The types come from the rooms below (devices, storage, ingest, rules); where the
composition root passes its own objects through (the rules and routine views, health, leadership, notifications,
settings, device registration) a protocol here names only what the routes read. This module must not hold route
logic or import the composition root.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine

    from devices.readings import Reading
    from devices.registry import DeviceSpec, Registry
    from ingest.deadletters import DeadLetterStore
    from ingest.devicestate import DeviceStates
    from ingest.metrics import IngestMetrics
    from ingest.pipeline import Pipeline
    from placesense.alerts.ack_links import AckLinks
    from placesense.alerts.dispatch import Dispatcher
    from placesense.alerts.feed import AlertFeed
    from placesense.alerts.lifecycle import AlertService
    from placesense.alerts.outbox import Outbox
    from placesense.basics.clock import Clock
    from placesense.basics.findings import Finding
    from placesense.storage.influx import InfluxClient
    from rules.daqi import SiteAirQuality
    from rules.watering import WateringNeed
    from rules.watering_thresholds import ThresholdSuggestion


# -- what the composition root passes through, as far as routes read it -------------------------------------------


class RoutineReader(Protocol):
    def routine_today(self, home_id: str) -> dict[str, Any]: ...


class StreetRules(Protocol):
    def watering_list(self, now_ms: int | None = None) -> list[WateringNeed]: ...
    def air_quality(self) -> list[SiteAirQuality]: ...
    def mark_watered(self, bed_id: str, at_ms: int | None = None) -> list[Finding]: ...
    def threshold_suggestions(self, now_ms: int | None = None) -> list[ThresholdSuggestion]: ...


class NotificationParts(Protocol):
    @property
    def outbox(self) -> Outbox: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def links(self) -> AckLinks | None: ...


class Registered(Protocol):
    @property
    def device(self) -> DeviceSpec: ...
    @property
    def broker_password(self) -> str | None: ...
    @property
    def broker_reloaded(self) -> bool: ...
    @property
    def evaluation_watching(self) -> bool: ...


class Blindness(Protocol):
    @property
    def since_ms(self) -> int: ...
    @property
    def reason(self) -> str: ...


class Monitoring(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def since_ms(self) -> int | None: ...
    @property
    def blind(self) -> Sequence[Blindness]: ...
    @property
    def homes(self) -> Mapping[str, Blindness]: ...


class HealthSource(Protocol):
    def status(self) -> Monitoring: ...


class EvaluationState(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def pending_readings(self) -> int: ...


class EvaluationSource(Protocol):
    def health(self) -> EvaluationState: ...


class LeaseHolder(Protocol):
    @property
    def instance(self) -> str: ...
    @property
    def expires_ms(self) -> int: ...


class LeaseView(Protocol):
    def holder_now(self) -> LeaseHolder | None: ...


class LeadershipView(Protocol):
    @property
    def lease(self) -> LeaseView: ...


class InstanceSettings(Protocol):
    @property
    def instance_name(self) -> str: ...


class PushSettings(Protocol):
    @property
    def max_payload_bytes(self) -> int: ...
    @property
    def max_future_s(self) -> int: ...
    @property
    def max_past_days(self) -> int: ...


class ApiSettings(InstanceSettings, PushSettings, Protocol):
    @property
    def tokens_path(self) -> Path | None: ...


# -- what several resources share ----------------------------------------------------------------------------------


class _Registry(Protocol):
    @property
    def registry(self) -> Registry: ...


class _Clock(Protocol):
    @property
    def clock(self) -> Clock: ...


class _Influx(Protocol):
    @property
    def influx(self) -> InfluxClient: ...


class _Alerts(Protocol):
    @property
    def alerts(self) -> AlertService: ...


class _DeadLetters(Protocol):
    @property
    def dead_letters(self) -> DeadLetterStore: ...


class _Metrics(Protocol):
    @property
    def metrics(self) -> IngestMetrics: ...


# -- one port per resource -----------------------------------------------------------------------------------------


class ReadingsPort(_Registry, _Influx, Protocol):
    """``/api/v1/readings`` (and its CSV): which devices there are, and the stored readings."""


class HomesPort(_Registry, _Clock, _Influx, Protocol):
    """``/api/v1/homes``: the homes, today's routine, the activity timeline."""

    @property
    def routine(self) -> RoutineReader: ...


class StreetPort(_Registry, _Clock, _Alerts, Protocol):
    """Flowerbeds (watering list, bed actions) and air sites."""

    @property
    def rules(self) -> StreetRules: ...


class AlertsPort(_Registry, _Alerts, Protocol):
    """Alerts: list, act, stream; their deliveries and acknowledge links."""

    @property
    def alert_feed(self) -> AlertFeed: ...
    @property
    def notifications(self) -> NotificationParts: ...


class DevicesPort(_Registry, _Clock, _Influx, _DeadLetters, Protocol):
    """Devices: the registry with their state and signal, discovered devices, registration, dead letters."""

    @property
    def device_states(self) -> DeviceStates: ...
    def register_device(self, device: DeviceSpec) -> Registered: ...


class PushPort(_Registry, _DeadLetters, _Metrics, Protocol):
    """Readings pushed over HTTP (Sensor.Community): decode limits, the durable path, dead letters."""

    @property
    def settings(self) -> PushSettings: ...
    def ingest_readings(self, readings: Sequence[Reading]) -> int: ...


class OperationsPort(_Metrics, Protocol):
    """``/healthz``, ``/api/v1/status`` and ``/metrics``."""

    @property
    def settings(self) -> InstanceSettings: ...
    @property
    def pipeline(self) -> Pipeline: ...
    @property
    def health(self) -> HealthSource: ...
    @property
    def evaluator(self) -> EvaluationSource: ...
    @property
    def leadership(self) -> LeadershipView | None: ...
    def role(self) -> str: ...


class ApiService(ReadingsPort, HomesPort, StreetPort, AlertsPort, DevicesPort, PushPort, OperationsPort, Protocol):
    """All of it, and what ``create_app`` itself needs: the settings, the database engine (the audit log), and the
    lifecycle it runs in the app's lifespan."""

    @property
    def settings(self) -> ApiSettings: ...
    @property
    def engine(self) -> Engine: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
