"""The composition root: settings → clients → ingest pipeline → rules and detectors → alerts → API.

This is the only place that builds clients and wires the rooms together. ``Service`` owns their lifecycle;
``placesense serve`` runs one inside the API's lifespan, and tests build one the same way.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.decode import DecodeLimits
from devices.readings import Reading
from devices.registry import Registry, load_registry
from ingest.deadletters import DeadLetterStore
from ingest.devicestate import DeviceStates
from ingest.journal import Backlog, Journal
from ingest.journal_db import DatabaseJournal, StandbyJournal
from ingest.metrics import IngestMetrics
from ingest.mqtt import MqttConfig
from ingest.pipeline import Pipeline, PipelineConfig, Sink, subscriptions
from ingest.spool import Spool
from ingest.writer import StorageWriter
from placesense.basics.clock import Clock, make_clock
from placesense.basics.db import make_engine
from placesense.basics.files import private_dir
from placesense.basics.findings import Finding
from placesense.basics.leadership import Leadership, Lease, fence
from placesense.basics.term import Fenced, Term
from placesense.evaluation import Evaluator
from placesense.evaluation_core import EvaluationSpec
from placesense.evaluation_views import RoutineView, RulesView
from placesense.health import DeliveryHealth, HealthWatch
from placesense.settings import Settings
from placesense.statelock import StateLock
from placesense.storage.influx import InfluxClient, InfluxConfig

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from devices.registry import DeviceSpec
    from placesense.alerts.feed import AlertFeed
    from placesense.alerts.lifecycle import AlertService
    from placesense.notifying import Notifications
    from placesense.registration import Registered
    from rules.config import RulesConfig

log = logging.getLogger("placesense.service")

GIL_SWITCH_INTERVAL_S = 0.001  # see Service.start


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
    """Ingest's connection: its client id, account and subscriptions."""
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


def alerts_mqtt_config(settings: Settings) -> MqttConfig:
    """The alerts publisher's connection: its own client id and account (PLACESENSE_MQTT_ALERTS_*), so it never
    takes over ingest's session; a broker that binds client ids to usernames allows one connection per account."""
    return MqttConfig(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        client_id=settings.mqtt_alerts_username or f"{settings.mqtt_client_id}-alerts",
        subscriptions=(),
        username=settings.mqtt_alerts_username,
        password=settings.mqtt_alerts_password.get_secret_value() if settings.mqtt_alerts_password else None,
        tls=settings.mqtt_tls,
        ca_file=settings.mqtt_ca_file,
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
    alerts: AlertService
    alert_feed: AlertFeed
    rules: RulesView
    routine: RoutineView
    evaluator: Evaluator
    state_lock: StateLock
    health: HealthWatch
    engine: Engine  # the relational database: alerts, dead letters, device status, audit log
    spool: Spool
    writer: StorageWriter
    alert_client: mqtt.Client  # the alerts publisher's own connection
    notifications: Notifications  # the outbox, its dispatcher and the acknowledge links
    registry_file: Path | None = None  # the file the registry came from; devices registered over the API go there
    leadership: Leadership | None = None  # active/standby (PLACESENSE_HA): the lease this instance watches
    _stoppers: list[Callable[[], None]] = field(default_factory=list)
    _make_term: Callable[[Term | None], tuple[Evaluator, Pipeline]] | None = None

    @classmethod
    def build(cls, settings: Settings, registry: Registry | None = None, sinks: Sequence[Sink] = ()) -> Service:
        from rules.config import load_rules

        from_file = registry is None
        registry = registry or load_registry(settings.registry_path)
        rules_config = load_rules(settings.rules_path)
        # First, before anything connects: a second service on the same state folder stops here, with the reason.
        state_lock = StateLock(
            settings.state_dir, "placesense serve",
            "starting another service on it (or give this one its own folder: PLACESENSE_STATE_DIR)",
        )
        try:
            service = cls._build(settings, registry, rules_config, state_lock, sinks)
        except BaseException:
            state_lock.release()
            raise
        if from_file:  # devices registered over the API are written back to it (placesense.registration)
            service.registry_file = settings.registry_path
        return service

    @classmethod
    def _build(
        cls, settings: Settings, registry: Registry, rules_config: RulesConfig, state_lock: StateLock,
        sinks: Sequence[Sink],
    ) -> Service:
        from placesense.alerts.feed import AlertFeed
        from placesense.alerts.lifecycle import AlertService
        from placesense.alerts.store import AlertStore
        from placesense.notifying import build_notifications

        clock = make_clock(settings.clock)
        # The evaluation child's Prometheus files: this run's only (counts start at zero with the service).
        metrics_dir = private_dir(settings.state_dir / "metrics")
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
        built: list[Service] = []  # the service, once built: its evaluator changes with each term of leadership
        metrics = IngestMetrics(metrics_dir, lambda: built[0].evaluator.child_pid if built else None)
        engine = make_engine(settings.database_url)
        influx = InfluxClient(influx_config(settings))
        spool = Spool(settings.spool_dir, settings.spool_max_mb * 1_000_000)
        writer = StorageWriter(influx, spool, metrics, create_database=settings.influx_create_db)
        dead_letters = DeadLetterStore(engine, max_bytes=settings.dead_letter_max_mb * 1_000_000)
        device_states = DeviceStates(engine)

        alert_feed = AlertFeed()
        alert_client = _alert_mqtt_client(settings)
        # Every message that leaves the process (MQTT, webhooks, Notify, SMTP, chat) is written to the outbox with
        # the alert change and sent from there; the live feed stays in-process.
        notifications = build_notifications(settings, registry, rules_config, engine, alert_client)
        deliveries: list[DeliveryHealth] = [notifications.dispatcher]
        stoppers: list[Callable[[], None]] = [lambda: _stop_client(alert_client), notifications.dispatcher.stop]
        alerts = AlertService(AlertStore(engine), clock, rules_config, publishers=[alert_feed],
                              outbox=notifications.outbox)
        rules_config.check_registry(registry)  # here, so a bad config fails the start and not only the child
        config = PipelineConfig(
            mqtt=mqtt_config(settings),
            topic_prefix=settings.topic_prefix,
            batch_max_points=settings.batch_max_points,
            batch_max_ms=settings.batch_max_ms,
            batch_linger_ms=settings.batch_linger_ms,
            limits=DecodeLimits(
                max_payload_bytes=settings.max_payload_bytes,
                max_future_ms=settings.max_future_s * 1000,
                max_past_ms=settings.max_past_days * 86_400_000,
            ),
        )

        def make_term(term: Term | None) -> tuple[Evaluator, Pipeline]:
            """Ingest and evaluation for one term of leadership (or for good, with one instance). A standby has
            them built but not started, on a journal that takes nothing."""
            spec = EvaluationSpec(registry, rules_config, settings.clock, settings.state_dir,
                                  logging.getLogger().getEffectiveLevel(), influx=influx_config(settings), term=term)
            journal: Backlog
            if term is not None:
                journal = DatabaseJournal(engine, term, max_pending_readings=settings.evaluation_max_pending)
            elif settings.ha:
                journal = StandbyJournal()
            else:
                journal = Journal(settings.state_dir / "journal", max_pending_readings=settings.evaluation_max_pending)
            evaluator = Evaluator(
                spec, alerts, clock, metrics, journal, settings.tick_interval_s, hold_fds=(state_lock.fileno(),),
                stall_alert_s=settings.evaluation_stall_alert_s, stall_kill_s=settings.evaluation_stall_kill_s,
                metrics_dir=metrics_dir,
            )
            pipeline = Pipeline(config, registry, writer, dead_letters, device_states, metrics, sinks=sinks,
                                journal=journal)
            return evaluator, pipeline

        evaluator, pipeline = make_term(None)
        service = cls(
            settings, registry, clock, metrics, influx, dead_letters, device_states, pipeline,
            alerts=alerts, alert_feed=alert_feed, rules=RulesView(evaluator), routine=RoutineView(evaluator),
            evaluator=evaluator, state_lock=state_lock, health=HealthWatch(pipeline, evaluator, alerts, deliveries),
            engine=engine, spool=spool, writer=writer, alert_client=alert_client, notifications=notifications,
        )
        built.append(service)
        service._make_term = make_term
        if settings.ha:
            lease = Lease(engine, settings.database_url, settings.instance_name, settings.ha_lease_s)
            service.leadership = Leadership(lease, service._begin_term, service._end_term)
            service.health.role = service.role
            service.health.lease = lease
            service.health.subject = settings.instance_name
            alerts.fence = _standing_by
        metrics.gauge("placesense_evaluation_backlog", lambda: float(service.evaluator.backlog))
        metrics.gauge("placesense_journal_bytes", lambda: float(service.evaluator.journal.bytes))
        metrics.gauge("placesense_evaluation_state_bytes", lambda: float(service.evaluator.state_bytes))
        service._stoppers.extend(stoppers)
        return service

    def start(self) -> None:
        # Python hands the GIL to a waiting thread every 5 ms by default. Here the batch worker decodes without
        # pause under load, and every step of the threads that wait on I/O (hand-on to the evaluation process,
        # findings → alert store → publishers, the API) waits that long for the GIL again, and an alert takes many
        # such steps. 1 ms cut p99 stored→alert at 10,000 msgs/s from 133–392 to 92–94 ms (docs/benchmarks.md).
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        if self.leadership is not None:
            self.health.start()
            self.leadership.start()  # leads at once if no other instance does (see _begin_term)
            return
        self._connect_alerts()
        self.notifications.dispatcher.start()  # what an earlier run stored and did not send goes out now
        self.evaluator.start()
        self.pipeline.start()
        self.health.start()

    def role(self) -> str:
        """``single`` (one instance), ``leader`` or ``standby`` (active/standby)."""
        if self.leadership is None:
            return "single"
        return "leader" if self.leadership.leading else "standby"

    def _connect_alerts(self) -> None:
        self.alert_client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30)
        self.alert_client.loop_start()

    def _begin_term(self, term: Term) -> None:
        """This instance leads: ingest and evaluate, from the state and journal the last leader left."""
        assert self._make_term is not None and self.leadership is not None
        evaluator, pipeline = self._make_term(term)
        self.alerts.fence = lambda conn: fence(conn, term)
        self._use(evaluator, pipeline)
        self.device_states.reload()  # the last leader's saves
        self._connect_alerts()
        self.notifications.dispatcher.start()  # only the leader sends: what the last one stored and did not send
        evaluator.start()
        pipeline.start()
        previous = self.leadership.lease.took_over_from
        if previous:
            words = (f"{term.instance} took over evaluation from {previous}, whose lease ran out without a word "
                     "(it stopped or lost its connection); alerts that fell due meanwhile are raised now, marked late.")
            self.alerts.apply(Finding("leader_changed", "ops", "placesense", "warning", words, self.clock.now_ms(),
                                      True, {"epoch": term.epoch}))

    def _end_term(self, term: Term) -> None:
        """This instance no longer leads (or is stopping): stop ingest and evaluation; nothing more is written."""
        assert self._make_term is not None
        self.alerts.fence = _standing_by
        self.pipeline.stop()
        self.evaluator.stop()
        self.notifications.dispatcher.stop(close=False)  # the next leader sends what is left in the outbox
        _stop_client(self.alert_client)
        self._use(*self._make_term(None))

    def _use(self, evaluator: Evaluator, pipeline: Pipeline) -> None:
        self.evaluator, self.pipeline = evaluator, pipeline
        self.rules, self.routine = RulesView(evaluator), RoutineView(evaluator)
        self.health.evaluator, self.health.pipeline = evaluator, pipeline

    def ingest_readings(self, readings: Sequence[Reading]) -> int:
        """Store readings that arrived outside MQTT (the API's HTTP push); return how many were stored."""
        return len(readings) - len(self.pipeline.ingest_readings(readings))

    def register_device(self, device: DeviceSpec) -> Registered:
        """Register ``device`` while serving (``placesense.registration``)."""
        from placesense.registration import register_device

        return register_device(self, device)

    def stop(self) -> None:
        self.health.stop()  # first: stopping parts are not blind spots
        if self.leadership is not None:
            self.leadership.stop()
            if self.leadership.leading:
                self.pipeline.stop()
                self.evaluator.stop()  # it saves its state while this instance still holds the lease
                self.leadership.release()  # then a standby takes over at its next look
        else:
            self.pipeline.stop()  # the last readings are stored, journalled and acknowledged
            self.evaluator.stop()
        for stopper in reversed(self._stoppers):
            try:
                stopper()
            except Exception:
                log.exception("error while stopping")
        self.influx.close()
        self.evaluator.journal.close()
        self.engine.dispose()
        self.state_lock.release()  # last: the evaluation process has saved and ended


def _standing_by(_conn: Any) -> None:
    raise Fenced("this instance does not lead: the leader applies findings and sends reminders")


def _alert_mqtt_client(settings: Settings) -> mqtt.Client:
    """The paho client alerts are published with: its own id and account, so it never takes over ingest's session."""
    config = alerts_mqtt_config(settings)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=config.client_id,
                         protocol=mqtt.MQTTv5)
    config.secure(client)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.max_queued_messages_set(10_000)  # alerts wait for a broker outage to end; a bound keeps memory flat
    return client


def _stop_client(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()
    # paho closes its wake-up socket pair only when a connected loop ends; a client stopped while still
    # connecting (broker down, or a very short run) would leak it.
    client._reset_sockets()
