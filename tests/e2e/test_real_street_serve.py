"""Real street data through a real ``placesense serve --clock event``: MQTT in, the API's answers out.

Twenty-four days of SIMPaCT's 13 park probes (hourly) and of Marylebone Road's hourly means (July 2003, ending
four days into the NO2 analyser's 18-day stop) are moved to end two hours ago and published over mosquitto in
time order; a missing channel is left out of its message. serve stores them in InfluxDB and its evaluation
process judges them on the event clock. The API's watering list must be exactly the one the same readings give
in-process through ``EvaluationCore`` (what the evaluation process runs), and the air site must show NO2 as
"no data since" its last hourly mean, never as a current band, with the site index that DEFRA's method gives.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
import yaml

from devices.readings import Reading
from devices.registry import Registry
from placesense.basics.timeunits import HOUR_MS
from placesense.tools.evaluate.air import DEFRA_TABLE, defra_index
from placesense.tools.evaluate.street import DRY_PERCENTILE, percentile
from placesense.tools.evaluate.street_replay import StreetReplay, epoch_ms, load_air, load_soil, reading, soil_registry
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.process import free_port
from tests.helpers import eventually, influx_count

DATA = Path(__file__).resolve().parents[1] / "data"
HOURS = 24 * 24
AIR_FROM = "2003-07-01T00:00:00Z"
SITE, AIR_DEVICE = "marylebone-road", "aurn-my1"


def _readings() -> tuple[list[Reading], Registry, dict[str, Any]]:
    soil = load_soil(DATA / "simpact_soil")
    air = load_air(DATA / "openair_marylebone")
    first_air = air.times.index(epoch_ms(AIR_FROM))
    end = (int(time.time() * 1000) // HOUR_MS - 2) * HOUR_MS
    soil_shift = end - soil.times[-1]
    air_shift = end - (air.times[first_air + HOURS - 1] + HOUR_MS)
    dry = {p: percentile([v for v in vs if v is not None], DRY_PERCENTILE) for p, vs in soil.probes.items()}
    beds = soil_registry(soil.probes, dry).to_data()
    beds["air_sites"] = [{"id": SITE, "name": "Marylebone Road", "lat": 51.5225, "lon": -0.1546}]
    beds["devices"].append({"id": AIR_DEVICE, "domain": "air", "subject": SITE, "kind": "air"})
    registry = Registry.from_data(beds)
    out: list[Reading] = []
    for index in range(len(soil.times) - HOURS, len(soil.times)):
        for probe, values in soil.probes.items():
            value = values[index]
            if value is not None:
                ts = soil.times[index] + soil_shift
                out.append(reading("soil", f"soil-{probe.lower()}", f"bed-{probe.lower()}", ts,
                                   {"soil_moisture_pct": value}))
    for index in range(first_air, first_air + HOURS):
        metrics = {m: v for m, vs in air.metrics.items() if (v := vs[index]) is not None}
        if metrics:
            out.append(reading("air", AIR_DEVICE, SITE, air.times[index] + HOUR_MS + air_shift, metrics))
    out.sort(key=lambda r: (r.ts_ms, r.device_id))
    # DEFRA's method at the last hour, from the hourly means as published.
    last = first_air + HOURS - 1
    expected: dict[str, Any] = {}
    for metric, (hours, needed, _) in DEFRA_TABLE.items():
        window = [v for v in air.metrics[metric][last - hours + 1 : last + 1] if v is not None]
        if len(window) >= needed:
            expected[metric] = defra_index(metric, sum(window) / len(window))
    last_no2 = max(i for i in range(first_air, last + 1) if air.metrics["no2_ugm3"][i] is not None)
    expected["no2_last_ms"] = air.times[last_no2] + HOUR_MS + air_shift
    return out, registry, expected


def _serve(settings: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACESENSE_")}
    env.update({f"PLACESENSE_{k.upper()}": v for k, v in settings.items()})
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "placesense.cli", "serve"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)


@pytest.mark.timeout(300)
def test_real_street_data_through_serve_gives_the_watering_list_and_air_bands(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, tmp_path: Path, unique: str
) -> None:
    readings, registry, expected = _readings()
    registry_path = tmp_path / "registry.yaml"
    registry_path.write_text(yaml.safe_dump(registry.to_data()))
    token = f"street-{uuid.uuid4().hex}"
    tokens_path = tmp_path / "tokens.yaml"
    tokens_path.write_text(yaml.safe_dump({"tokens": [
        {"name": "parks-team", "role": "street", "sha256": hashlib.sha256(token.encode()).hexdigest()}
    ]}))
    api = f"127.0.0.1:{free_port()}"
    settings = {
        "mqtt_url": mosquitto.url, "mqtt_client_id": f"ingest-{unique}", "topic_prefix": f"t{unique}/",
        "influx_url": influx.url, "influx_db": influx_db, "database_url": f"sqlite:///{tmp_path}/ps.db",
        "spool_dir": str(tmp_path / "spool"), "registry_path": str(registry_path), "api_bind": api,
        "state_dir": str(tmp_path / "state"), "tokens_path": str(tokens_path), "clock": "event",
    }
    proc = _serve(settings, tmp_path / "serve.log")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                return bool(httpx.get(f"http://{api}/healthz", timeout=1).json()["mqtt_connected"])
            except httpx.HTTPError:
                return False

        eventually(ready, 60, "placesense serve to connect")
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"replay-{unique}",
                             protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(200)
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        last = None
        for seq, r in enumerate(readings):
            body = {"ts": r.ts_ms, "metrics": dict(r.metrics), "seq": seq}
            topic = f"t{unique}/placesense/v1/{r.domain}/{r.device_id}/telemetry"
            last = client.publish(topic, orjson.dumps(body), qos=1)
        assert last is not None
        last.wait_for_publish(120)
        client.disconnect()
        client.loop_stop()
        stored = lambda: influx_count(influx.url, influx_db, "soil") + influx_count(influx.url, influx_db, "air")  # noqa: E731
        eventually(lambda: stored() == len(readings), 180, "every real reading stored")

        end = readings[-1].ts_ms

        def watering() -> dict[str, Any] | None:
            body: dict[str, Any] = httpx.get(f"http://{api}/api/v1/flowerbeds/watering", headers=headers,
                                             timeout=5).json()
            return body if body["generated_at"] == _rfc3339(end) else None

        listing = eventually(watering, 120, "the watering list at the last reading's time")
        sites = httpx.get(f"http://{api}/api/v1/air/sites", headers=headers, timeout=5).json()["sites"]
    finally:
        proc.terminate()
        proc.wait(60)

    # The same readings through EvaluationCore in-process: the same beds, in the same order, with the same status.
    with StreetReplay(registry) as replay:
        for r in readings:
            replay.batch([r])
        own = replay.core.watering_list(end)
    assert [(b["bed_id"], b["status"]) for b in listing["beds"]] == [(n.bed_id, n.status) for n in own]
    assert listing["beds"], "some of the real beds are dry or drying at the end of the replay"

    [site] = [s for s in sites if s["site_id"] == SITE]
    pollutants = {p["metric"]: p for p in site["pollutants"]}
    no2 = pollutants["no2_ugm3"]
    assert no2["status"] == "no data" and no2["band"] is None and no2["index"] is None
    assert no2["no_data_since"] == _rfc3339(expected["no2_last_ms"])
    shown = {m: p["index"] for m, p in pollutants.items() if p["status"] == "current"}
    assert shown == {m: expected[m] for m in DEFRA_TABLE if m in expected}
    assert site["index"] == max(shown.values())


def _rfc3339(ts_ms: int) -> str:
    from api.timefmt import rfc3339

    text = rfc3339(ts_ms)
    assert text is not None
    return text
