"""The rules and detectors run in a child process fed from the journal: it answers the API, survives being
killed or stopped, and no stored reading goes unevaluated (or is counted twice) whatever happens to it."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import psutil
import pytest

from api.app import create_app
from api.auth import TokenEntry, TokenStore, hash_token
from devices.readings import Reading
from devices.registry import Registry
from placesense.basics.errors import EvaluationUnavailable
from placesense.evaluation_process import EVALUATION_CHUNK
from placesense.evaluation_state import STATE_FILE
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.api.conftest import serve
from tests.helpers import eventually

SOIL = "placesense/v1/soil/bed-01-soil/telemetry"
HELP = "placesense/v1/home/h-0001-help/telemetry"


def _soil(ts_ms: int, seq: int, moisture: float) -> bytes:
    return orjson.dumps({"ts": ts_ms, "metrics": {"soil_moisture_pct": moisture}, "seq": seq})


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _beds_to_water(service: Service) -> list[str]:
    return [need.bed_id for need in service.rules.watering_list()]


def _every_stored_reading_evaluated_once(service: Service) -> bool:
    stored = service.metrics.value("placesense_readings_stored_total")
    return stored > 0 and service.metrics.value("placesense_readings_evaluated_total") == stored


@pytest.fixture
def quick_watchdog(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry: Registry, settings_for: Callable[..., Settings]
) -> Iterator[Service]:
    """A service whose watchdog reports a silent child after 1 s and replaces it after 4 s (defaults: 20 and 60)."""
    settings = settings_for(mosquitto, influx, influx_db, evaluation_stall_alert_s=1.0, evaluation_stall_kill_s=4.0)
    svc = Service.build(settings, registry=registry)
    svc.start()
    assert svc.pipeline.consumer.wait_connected(10)
    yield svc
    svc.stop()


def test_rules_run_in_their_own_process_and_answer_the_api(service: Service, publisher: Callable[..., None]) -> None:
    child = service.evaluator.pid
    assert child is not None and child != os.getpid()
    assert psutil.Process(child).ppid() == os.getpid()
    now = int(time.time() * 1000)
    publisher(service.settings.topic_prefix + SOIL, _soil(now - 60_000, 1, 4.0))  # bone dry
    eventually(lambda: _beds_to_water(service) == ["bed-01"], what="the dry bed on the watering list")
    assert service.metrics.value("placesense_readings_evaluated_total") == 1


def test_readings_stored_while_the_child_is_dead_are_evaluated_by_the_next_one(
    service: Service, publisher: Callable[..., None]
) -> None:
    prefix = service.settings.topic_prefix
    now = int(time.time() * 1000)
    publisher(prefix + SOIL, _soil(now - 120_000, 1, 45.0))
    eventually(lambda: service.metrics.value("placesense_readings_evaluated_total") == 1, what="first evaluated")
    first = service.evaluator.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    eventually(lambda: _gone(first), what="the evaluation process gone")
    # Until the new one is up the API says so plainly (a 503 over HTTP) rather than answering from nothing.
    with pytest.raises(EvaluationUnavailable):
        service.rules.watering_list()
    # Ingest carries on meanwhile: this reading is stored (and journalled) whatever the rules are doing.
    publisher(prefix + SOIL, _soil(now - 60_000, 2, 3.0))
    eventually(lambda: service.metrics.value("placesense_readings_stored_total") == 2, what="stored while down")
    eventually(lambda: service.metrics.value("placesense_evaluation_restarts_total") == 1, what="a restart")
    assert service.evaluator.pid not in (None, first)
    # The reading stored while no child ran is evaluated by the new one: the bed is dry from it alone.
    eventually(lambda: _beds_to_water(service) == ["bed-01"], what="the dry bed seen by the new process")
    eventually(lambda: _every_stored_reading_evaluated_once(service), what="every stored reading evaluated")
    assert service.metrics.value("placesense_readings_evaluated_total") == 2  # once each, never twice


def test_a_bed_marked_watered_stays_off_the_list_when_the_child_is_killed_straight_after(
    service: Service, publisher: Callable[..., None]
) -> None:
    """What a person told the rules is not in the journal that replays readings: the child saves it at once."""
    now = int(time.time() * 1000)
    publisher(service.settings.topic_prefix + SOIL, _soil(now - 60_000, 1, 4.0))  # bone dry
    eventually(lambda: _beds_to_water(service) == ["bed-01"], what="the dry bed on the watering list")
    service.rules.mark_watered("bed-01", now)
    assert _beds_to_water(service) == []
    first = service.evaluator.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)  # no chance to save at stop: only the save right after the call counts
    eventually(lambda: _gone(first), what="the evaluation process gone")
    eventually(lambda: service.evaluator.pid not in (None, first), what="a new evaluation process")

    def listed() -> list[str] | None:
        try:
            return _beds_to_water(service)
        except EvaluationUnavailable:
            return None  # still starting

    assert eventually(lambda: listed() is not None, what="the new process answering") and listed() == []


def test_stop_saves_the_state_privately_and_ends_the_child(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry: Registry, settings_for: Callable[..., Settings]
) -> None:
    service = Service.build(settings_for(mosquitto, influx, influx_db), registry=registry)
    service.start()
    child = service.evaluator.pid
    assert child is not None
    state = service.settings.state_dir / STATE_FILE
    assert not state.exists()
    service.stop()
    assert state.exists()
    assert stat.S_IMODE(state.stat().st_mode) == 0o600  # residents' routines: the owner's alone
    assert stat.S_IMODE((service.settings.state_dir / "journal").stat().st_mode) == 0o700
    assert _gone(child)


def test_a_stopped_child_is_reported_then_replaced_and_nothing_stays_unevaluated(
    quick_watchdog: Service, publisher: Callable[..., None]
) -> None:
    service = quick_watchdog
    prefix = service.settings.topic_prefix
    hung = service.evaluator.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)  # alive but answering nothing, as a rule stuck in a loop would be
    now = int(time.time() * 1000)
    for seq in range(1, 4):
        publisher(prefix + SOIL, _soil(now - 60_000 + seq, seq, 3.0))
    eventually(lambda: service.metrics.value("placesense_readings_stored_total") == 3, what="stored while hung")
    eventually(lambda: service.evaluator.health().state == "stalled", 10, "the stall reported")
    eventually(lambda: _gone(hung), 20, "the hung process ended by the watchdog")
    eventually(lambda: service.metrics.value("placesense_evaluation_restarts_total") == 1, 20, "a new process")
    eventually(lambda: _every_stored_reading_evaluated_once(service), what="the readings it never answered for")
    assert service.evaluator.health().state == "running"
    assert service.metrics.value("placesense_evaluation_stalls_total") == 1
    assert _beds_to_water(service) == ["bed-01"]


def test_a_child_that_resumes_before_the_watchdog_ends_it_clears_the_stall(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry: Registry, settings_for: Callable[..., Settings],
    publisher: Callable[..., None],
) -> None:
    settings = settings_for(mosquitto, influx, influx_db, evaluation_stall_alert_s=1.0, evaluation_stall_kill_s=600)
    service = Service.build(settings, registry=registry)
    service.start()
    try:
        assert service.pipeline.consumer.wait_connected(10)
        paused = service.evaluator.pid
        assert paused is not None
        os.kill(paused, signal.SIGSTOP)
        publisher(settings.topic_prefix + SOIL, _soil(int(time.time() * 1000) - 1000, 1, 3.0))
        eventually(lambda: service.evaluator.health().state == "stalled", 10, "the stall reported")
        os.kill(paused, signal.SIGCONT)
        eventually(lambda: service.evaluator.health().state == "running", 10, "running again")
        eventually(lambda: _every_stored_reading_evaluated_once(service), what="the reading evaluated")
        assert service.evaluator.pid == paused  # the same process carried on
        assert service.metrics.value("placesense_evaluation_restarts_total") == 0
    finally:
        service.stop()


def test_an_alert_does_not_wait_for_the_rest_of_a_large_batch(service: Service) -> None:
    # Under load ingest journals batches of thousands; the evaluation process sends findings on after each chunk.
    now = int(time.time() * 1000)
    dry = Reading("soil", "bed-01-soil", "bed-01", None, now - 600_000, {"soil_moisture_pct": 3.0}, None, 0,
                  "canonical", now)
    air = [Reading("air", "air-01-aq", "air-01", None, now - 599_000 + i, {"pm2_5_ugm3": 5.0}, None, i + 1,
                   "canonical", now) for i in range(EVALUATION_CHUNK * 3)]
    seen: list[tuple[str, float]] = []
    stop = service.alert_feed.listen(
        lambda change: seen.append(
            (change.alert.rule, service.metrics.value("placesense_readings_evaluated_total"))
        )
    )
    try:
        service.evaluator.journal.append([dry, *air])
        total = 1 + len(air)
        eventually(lambda: service.metrics.value("placesense_readings_evaluated_total") == total, what="the batch")
        watering = [evaluated for rule, evaluated in seen if rule == "needs_water"]
        assert watering, f"no watering alert among {seen}"
        assert watering[0] == 0  # published when its chunk was done, before the batch was counted as evaluated
    finally:
        stop()


def test_a_finding_heavy_burst_with_a_paused_child_neither_deadlocks_nor_loses_a_reading(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, settings_for: Callable[..., Settings],
) -> None:
    # Every reading is a help press, so findings flow back as fast as batches flow in; pausing the child lets
    # both directions' socket buffers fill, which is where the old channel deadlocked (the receiver waited for a
    # lock the sender held across a blocking send).
    registry = Registry.from_data({
        "homes": [{"id": f"h-{i:04d}"} for i in range(20)],
        "devices": [{"id": f"h-{i:04d}-help", "domain": "home", "subject": f"h-{i:04d}", "kind": "help_button",
                     "room": "living_room"}
                    for i in range(20)],
    })
    service = Service.build(settings_for(mosquitto, influx, influx_db), registry=registry)
    service.start()
    try:
        now = int(time.time() * 1000) - 3_600_000
        batches = [
            [Reading("home", f"h-{i % 20:04d}-help", f"h-{i % 20:04d}", "living_room", now + b * 5000 + i,
                     {"help_pressed": 1.0}, None, i, "canonical", now) for i in range(2000)]
            for b in range(10)
        ]
        child = service.evaluator.pid
        assert child is not None
        os.kill(child, signal.SIGSTOP)
        for batch in batches[:5]:
            service.evaluator.journal.append(batch)
        os.kill(child, signal.SIGCONT)
        for batch in batches[5:]:
            service.evaluator.journal.append(batch)
        eventually(lambda: service.metrics.value("placesense_readings_evaluated_total") == 20_000, 60,
                   "every reading of the burst evaluated")
        assert service.evaluator.health().state == "running"
        # each home's help alert is open and carries every press in its history
        alerts = service.alerts.list_alerts(audience="care", state="active")
        assert sorted(a.subject for a in alerts if a.rule == "help_button") == sorted(registry.homes)
    finally:
        service.stop()


def test_the_api_says_503_with_retry_after_while_the_evaluation_process_restarts(service: Service) -> None:
    secret = "street-" + os.urandom(8).hex()
    tokens = TokenStore([TokenEntry(name="parks-team", role="street", sha256=hash_token(secret))])
    server, url = serve(create_app(service, manage_lifecycle=False, tokens=tokens))
    try:
        path = f"{url}/api/v1/flowerbeds/watering"
        headers = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(path, headers=headers, timeout=10).status_code == 200
        child = service.evaluator.pid
        assert child is not None
        os.kill(child, signal.SIGKILL)
        eventually(lambda: _gone(child), what="the evaluation process gone")
        answer = httpx.get(path, headers=headers, timeout=10)
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["type"].endswith("/evaluation-unavailable")
        eventually(lambda: httpx.get(path, headers=headers, timeout=10).status_code == 200, what="answers again")
    finally:
        server.should_exit = True
