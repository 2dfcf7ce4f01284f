"""The rules and detectors run in a child process: it answers the API, survives being killed, and saves at stop."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import httpx
import orjson
import psutil
import pytest

from api.app import create_app
from api.auth import TokenEntry, TokenStore, hash_token
from devices.readings import Reading
from devices.registry import Registry
from placesense.errors import EvaluationUnavailable
from placesense.evaluation import EVALUATION_CHUNK
from placesense.localstack import InfluxDB, Mosquitto
from placesense.service import Service
from placesense.settings import Settings
from tests.api.conftest import serve
from tests.helpers import eventually

SOIL = "placesense/v1/soil/bed-01-soil/telemetry"


def _soil(ts_ms: int, seq: int, moisture: float) -> bytes:
    return orjson.dumps({"ts": ts_ms, "metrics": {"soil_moisture_pct": moisture}, "seq": seq})


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _beds_to_water(service: Service) -> list[str]:
    return [need.bed_id for need in service.rules.watering_list()]


def test_rules_run_in_their_own_process_and_answer_the_api(service: Service, publisher: Callable[..., None]) -> None:
    child = service.evaluator.pid
    assert child is not None and child != os.getpid()
    assert psutil.Process(child).ppid() == os.getpid()
    now = int(time.time() * 1000)
    publisher(service.settings.topic_prefix + SOIL, _soil(now - 60_000, 1, 4.0))  # bone dry
    eventually(lambda: _beds_to_water(service) == ["bed-01"], what="the dry bed on the watering list")
    assert service.metrics.value("placesense_readings_evaluated_total") == 1


def test_killed_evaluation_process_is_restarted_and_ingest_never_stops(
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
    # Ingest carries on meanwhile: this reading is stored whatever the rules are doing.
    publisher(prefix + SOIL, _soil(now - 60_000, 2, 3.0))
    eventually(lambda: service.metrics.value("placesense_readings_stored_total") == 2, what="stored while down")
    eventually(lambda: service.metrics.value("placesense_evaluation_restarts_total") == 1, what="a restart")
    assert service.evaluator.pid not in (None, first)
    # Readings after the restart are evaluated by the new process.
    publisher(prefix + SOIL, _soil(now - 30_000, 3, 2.0))
    eventually(lambda: _beds_to_water(service) == ["bed-01"], what="the dry bed seen by the new process")
    stored = service.metrics.value("placesense_readings_stored_total")
    judged = service.metrics.value("placesense_readings_evaluated_total") + service.metrics.value(
        "placesense_readings_unevaluated_total"
    )
    assert stored == judged == 3  # every stored reading is either evaluated or counted as not


def test_stop_saves_learned_routines_and_ends_the_child(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry: Registry, settings_for: Callable[..., Settings]
) -> None:
    service = Service.build(settings_for(mosquitto, influx, influx_db), registry=registry)
    service.start()
    child = service.evaluator.pid
    assert child is not None
    state = service.settings.state_dir / "routine.pkl"
    assert not state.exists()
    service.stop()
    assert state.exists()
    assert _gone(child)


def test_a_hung_evaluation_process_is_replaced_and_ingest_carries_on(
    service: Service, publisher: Callable[..., None]
) -> None:
    prefix = service.settings.topic_prefix
    service.evaluator.stall_timeout_s = 2.0  # an attribute of the real evaluator; the default is a minute
    hung = service.evaluator.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)  # alive but answering nothing, as a rule stuck in a loop would be
    now = int(time.time() * 1000)
    for seq in range(1, 4):
        publisher(prefix + SOIL, _soil(now - 60_000 + seq, seq, 3.0))
    eventually(lambda: service.metrics.value("placesense_readings_stored_total") == 3, what="stored while hung")
    eventually(lambda: _gone(hung), 20, "the hung process ended by the watchdog")
    eventually(lambda: service.metrics.value("placesense_evaluation_restarts_total") == 1, 20, "a new process")
    publisher(prefix + SOIL, _soil(now - 30_000, 4, 2.0))
    eventually(lambda: _beds_to_water(service) == ["bed-01"], what="the new process evaluating again")
    assert service.metrics.value("placesense_readings_unevaluated_total") == 3  # counted, not silently lost


def test_an_alert_does_not_wait_for_the_rest_of_a_large_batch(service: Service) -> None:
    # Under load ingest hands on batches of thousands; the evaluation process sends findings on after each chunk.
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
        service.evaluator([dry, *air])
        total = 1 + len(air)
        eventually(lambda: service.metrics.value("placesense_readings_evaluated_total") == total, what="the batch")
        watering = [evaluated for rule, evaluated in seen if rule == "needs_water"]
        assert watering, f"no watering alert among {seen}"
        assert watering[0] <= EVALUATION_CHUNK  # published when its chunk was done, not the whole batch
    finally:
        stop()


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
