"""A flowerbed's own dry threshold over the API: a real park probe's record (SIMPaCT, tests/data/simpact_soil) sent
through the broker to a running service, and ``GET /api/v1/flowerbeds`` then offers the threshold that record
suggests, with why, as the rule engine works it out from the same readings."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from devices.readings import Reading
from devices.registry import Registry
from placesense.basics.clock import EventClock
from placesense.basics.timeunits import DAY_MS, HOUR_MS
from placesense.service import Service
from placesense.tools.evaluate.street_replay import load_soil
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from rules.config import RulesConfig
from rules.engine import RuleEngine
from tests.api.conftest import make_tokens, now_ms, serve, telemetry
from tests.helpers import eventually, stack_settings

SOIL = Path(__file__).resolve().parents[1] / "data" / "simpact_soil"
PROBE = "SENS0012"  # reads 12.8–26.3 % in its first weeks: far from the default 25 % threshold's idea of dry
DAYS = 17  # past the 14 days of record a bed needs before it suggests its own
REGISTRY = {
    "flowerbeds": [{"id": "bed-park", "name": "Park bed", "lat": -33.84, "lon": 151.07}],
    "devices": [{"id": "bed-park-soil", "domain": "soil", "subject": "bed-park", "kind": "soil"}],
}


@pytest.fixture(scope="module")
def park(
    mosquitto: Mosquitto, influx: InfluxDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, httpx.Client, dict[str, str]]]:
    unique = uuid.uuid4().hex[:10]
    db = f"t_beds_{unique}"
    settings = stack_settings(mosquitto, influx, db, tmp_path_factory.mktemp("beds"), f"beds-{unique}")
    service = Service.build(settings, registry=Registry.from_data(REGISTRY))
    service.start()
    assert service.pipeline.consumer.wait_connected(10), "ingest did not connect to the broker"
    secrets, store = make_tokens()
    server, base_url = serve(create_app(service, manage_lifecycle=False, tokens=store))
    with httpx.Client(base_url=base_url, timeout=20) as client:
        yield service, client, secrets
    server.should_exit = True
    service.stop()
    httpx.post(f"{influx.url}/query", data={"q": f'DROP DATABASE "{db}"'}, timeout=30)


def _bed(client: httpx.Client, token: str) -> dict[str, object]:
    response = client.get("/api/v1/flowerbeds", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    beds: list[dict[str, object]] = response.json()["beds"]
    return beds[0]


def test_a_beds_own_record_suggests_its_dry_threshold_and_says_why(
    park: tuple[Service, httpx.Client, dict[str, str]], publish: Callable[[str, bytes], None]
) -> None:
    service, client, tokens = park
    before = _bed(client, tokens["street"])
    assert before["dry_below_pct"] == 25.0
    assert before["suggested_dry_below_pct"] is None and before["suggestion_reason"] is None  # no record yet

    record = load_soil(SOIL)
    values = [v for v in record.probes[PROBE][: DAYS * 24] if v is not None]
    end = now_ms() - HOUR_MS
    stamps = [end - (len(values) - 1 - i) * HOUR_MS for i in range(len(values))]
    assert stamps[-1] - stamps[0] > 16 * DAY_MS
    topic = f"{service.settings.topic_prefix}placesense/v1/soil/bed-park-soil/telemetry"
    for seq, (ts, value) in enumerate(zip(stamps, values, strict=True)):
        publish(topic, telemetry(ts, seq, soil_moisture_pct=value))

    # The same readings through the rule engine in-process: what the running service must offer.
    engine = RuleEngine(Registry.from_data(REGISTRY), RulesConfig(), EventClock(stamps[0]))
    for ts, value in zip(stamps, values, strict=True):
        engine.process(Reading("soil", "bed-park-soil", "bed-park", None, ts, {"soil_moisture_pct": value}))
    [expected] = engine.threshold_suggestions(now_ms())
    assert min(values) <= expected.suggested_pct <= max(values) < 27.0

    shown = eventually(
        lambda: (bed := _bed(client, tokens["street"]))["suggested_dry_below_pct"] is not None and bed,
        what="the park bed's own threshold offered",
        timeout_s=60,
    )
    assert shown["suggested_dry_below_pct"] == expected.suggested_pct
    assert shown["suggestion_reason"] == expected.reason
    assert expected.days == DAYS and f"over the last {DAYS} days" in expected.reason
    assert shown["dry_below_pct"] == 25.0  # only a suggestion: the registry's threshold stands
    assert _bed(client, tokens["display"])["suggested_dry_below_pct"] == expected.suggested_pct  # the wall reads it
