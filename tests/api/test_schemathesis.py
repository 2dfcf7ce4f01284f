"""Schemathesis, a schema-driven fuzzer, against the API's own OpenAPI schema on a live uvicorn: every operation,
with inputs that fit the schema and inputs that do not, and an admin token (which may call every path), never
gets a server error.

The fuzzer gets its own Service (its own InfluxDB database, SQLite file and topic prefix) so its
acknowledgements, resolutions and pushed readings never reach the other API tests' stack. Real alerts and
readings are there first, so the ids and devices the fuzzer tries can exist. The event stream is left out: it
answers forever by design (tests/api/test_alerts.py covers it).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from api.app import create_app
from devices.registry import Registry
from placesense.basics.findings import Finding
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.api.conftest import REGISTRY, make_tokens, now_ms, serve, telemetry
from tests.helpers import eventually

# Per operation and mode: about 20 operations × 2 modes in about 20 s. PLACESENSE_FUZZ_EXAMPLES=1000 digs deeper.
MAX_EXAMPLES = int(os.environ.get("PLACESENSE_FUZZ_EXAMPLES", "80"))
SKIPPED_PATHS = ("/api/v1/alerts/stream",)


@dataclass(frozen=True)
class Target:
    base_url: str
    admin: str


@pytest.fixture(scope="module")
def fuzz_target(
    mosquitto: Mosquitto, influx: InfluxDB, publish: Callable[[str, bytes], None],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    unique = uuid.uuid4().hex[:10]
    tmp = tmp_path_factory.mktemp("fuzz")
    db = f"t_fuzz_{unique}"
    prefix = f"t{unique}/"
    fuzz_settings = Settings(
        mqtt_url=mosquitto.url, mqtt_client_id=f"ingest-fuzz-{unique}", topic_prefix=prefix,
        influx_url=influx.url, influx_db=db, database_url=f"sqlite:///{tmp / 'placesense.db'}",
        spool_dir=tmp / "spool", state_dir=tmp / "state", batch_max_ms=50, influx_timeout_s=5.0,
    )
    service = Service.build(fuzz_settings, registry=Registry.from_data(REGISTRY))
    service.start()
    server = None
    try:
        assert service.pipeline.consumer.wait_connected(10), "ingest did not connect to the broker"
        for rule, audience, subject in (("help_button", "care", "h-0001"), ("needs_water", "street", "bed-01"),
                                        ("device_offline", "ops", "air-01")):
            assert service.alerts.apply(Finding(rule, audience, subject, "warning", f"{rule} to fuzz", now_ms()))
        sent = {
            ("soil", "bed-01-soil"): {"soil_moisture_pct": 30.0},
            ("home", "h-0001-kitchen-pir"): {"motion": 1.0},
            ("air", "air-01-aq"): {"pm2_5_ugm3": 12.0, "no2_ugm3": 20.0},
        }
        for seq, ((domain, device), metrics) in enumerate(sent.items(), start=1):
            publish(f"{prefix}placesense/v1/{domain}/{device}/telemetry", telemetry(now_ms(), seq, **metrics))
        eventually(lambda: service.metrics.value("placesense_readings_stored_total") >= len(sent),
                   what="the fuzz stack's readings stored")
        secrets, store = make_tokens()
        server, base_url = serve(create_app(service, manage_lifecycle=False, tokens=store))
        yield Target(base_url, secrets["admin"])
    finally:
        if server is not None:
            server.should_exit = True
        service.stop()
        httpx.post(f"{influx.url}/query", data={"q": f'DROP DATABASE "{db}"'}, timeout=30)


def _has_inputs(operation: schemathesis.APIOperation) -> bool:
    return any(True for _ in operation.iter_parameters()) or bool(operation.get_request_payload_content_types())


def test_no_operation_answers_with_a_server_error(fuzz_target: Target) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_target.base_url}/openapi.json")
    auth = {"Authorization": f"Bearer {fuzz_target.admin}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [op for op in operations if op.path not in SKIPPED_PATHS]
    assert len(fuzzed) >= 15 and len(fuzzed) == len(operations) - len(SKIPPED_PATHS), [o.label for o in operations]
    calls: dict[int, int] = {}
    failures: list[str] = []
    started = time.monotonic()
    # Requests sent with requests itself: schemathesis's own ``case.call`` inspects urllib3's connection pools,
    # which the urllib3-future that grafana-client's niquests installs over urllib3 does not have.
    with requests.Session() as session:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for operation in fuzzed:
                if mode == GenerationMode.NEGATIVE and not _has_inputs(operation):
                    continue  # nothing in the request to get wrong

                @given(case=operation.as_strategy(mode))
                @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
                def fuzz(case: schemathesis.Case) -> None:
                    response = session.request(**case.as_transport_kwargs(fuzz_target.base_url, auth), timeout=30)
                    calls[response.status_code // 100 * 100] = calls.get(response.status_code // 100 * 100, 0) + 1
                    case.validate_response(response, checks=[not_a_server_error])

                try:
                    fuzz()
                except Exception as exc:  # one operation's failure must not hide the others'
                    failures.append(f"{mode} {operation.label}: {exc}")
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures)
    # The fuzzer really called the API: successes and refusals of bad input, and not one server error.
    assert calls.get(200, 0) > 50 and calls.get(400, 0) > 50 and 500 not in calls, calls
    assert elapsed < 120 * MAX_EXAMPLES / 80, f"the fuzzing took {elapsed:.0f} s"
    print(f"fuzzed {len(fuzzed)} operations in {elapsed:.1f} s: responses by class {sorted(calls.items())}")


def test_what_the_fuzzer_found_stays_fixed(fuzz_target: Target) -> None:
    """Ids beyond SQLite's 64-bit integers were a 500 (OverflowError in the driver); now a clear 422."""
    auth = {"Authorization": f"Bearer {fuzz_target.admin}"}
    for path in ("/api/v1/audit?before_id=14720896780572148367360", f"/api/v1/alerts/{2**63}/ack"):
        method = "POST" if path.endswith("/ack") else "GET"
        resp = httpx.request(method, f"{fuzz_target.base_url}{path}", headers=auth, timeout=10)
        assert resp.status_code == 422, (path, resp.status_code, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
    resp = httpx.get(f"{fuzz_target.base_url}/api/v1/audit?before_id={2**63 - 1}", headers=auth, timeout=10)
    assert resp.status_code == 200, resp.text
