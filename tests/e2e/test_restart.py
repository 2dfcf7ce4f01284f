"""A care day across two kill -9s of a real ``placesense serve`` (event clock): the wake-up check that fell while
it was down is made late and says so, a resident already up is not alerted, the air band is there at once, and
a device that went silent before the restart is reported offline when it was due.

Time comes from the readings (``--clock event``), so "09:20" is the time of the last reading published before
the kill. Every device sends an hourly check-in, as real ones do; only the changes below are activity.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from api.auth import hash_token
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually, influx_query, serve_settings

ADMIN = "admin-" + "x" * 32
STREET = "street-" + "y" * 32
REGISTRY: dict[str, Any] = {
    "homes": [{"id": "h-late"}, {"id": "h-early"}],
    "air_sites": [{"id": "air-01", "name": "High Street", "lat": 53.05, "lon": -2.99}],
    "devices": [
        {"id": "h-late-bed-pir", "domain": "home", "subject": "h-late", "kind": "motion", "room": "bedroom"},
        {"id": "h-late-kitchen-pir", "domain": "home", "subject": "h-late", "kind": "motion", "room": "kitchen"},
        {"id": "h-late-climate", "domain": "home", "subject": "h-late", "kind": "climate", "room": "living_room"},
        {"id": "h-early-kitchen-pir", "domain": "home", "subject": "h-early", "kind": "motion", "room": "kitchen"},
        {"id": "h-early-hall-pir", "domain": "home", "subject": "h-early", "kind": "motion", "room": "hallway"},
        {"id": "h-early-climate", "domain": "home", "subject": "h-early", "kind": "climate", "room": "living_room"},
        {"id": "air-01-aq", "domain": "air", "subject": "air-01", "kind": "air"},
    ],
}


class Day:
    """Publishes one simulated day's readings over MQTT, in time order, and counts them."""

    def __init__(self, publisher: Callable[..., None], prefix: str, midnight_ms: int) -> None:
        self.publish = publisher
        self.prefix = prefix
        self.midnight = midnight_ms
        self.sent = 0
        self.seq = 0
        self.hall_silent_from: int | None = None

    def at(self, hh: int, mm: int = 0, day: int = 0) -> int:
        return self.midnight + day * 86_400_000 + (hh * 60 + mm) * 60_000

    def send(self, device: str, ts: int, metrics: dict[str, float]) -> None:
        domain = "air" if device.startswith("air") else "home"
        self.seq += 1
        body = {"ts": ts, "metrics": metrics, "seq": self.seq}
        self.publish(f"{self.prefix}placesense/v1/{domain}/{device}/telemetry", orjson.dumps(body))
        self.sent += 1

    def run(self, start: int, end: int, events: dict[int, list[tuple[str, dict[str, float]]]]) -> None:
        """Every 10 minutes from ``start`` to ``end`` (inclusive): check-ins on the hour, climate and air readings,
        and the ``events`` due at that time."""
        for ts in range(start, end + 1, 600_000):
            on_the_hour = (ts - self.midnight) % 3_600_000 == 0
            for device, metrics in events.get(ts, []):
                self.send(device, ts, metrics)
            self.send("air-01-aq", ts, {"no2_ugm3": 250.0})  # Moderate (index 4) as a 1-hour mean
            self.send("h-late-climate", ts, {"temperature_c": 20.5})
            self.send("h-early-climate", ts, {"temperature_c": 21.0})
            if on_the_hour:
                for pir in ("h-late-bed-pir", "h-late-kitchen-pir", "h-early-kitchen-pir"):
                    self.send(pir, ts, {"motion": 0.0})  # a check-in: alive, not activity
                if self.hall_silent_from is None or ts < self.hall_silent_from:
                    self.send("h-early-hall-pir", ts, {"motion": 0.0})


def _settle(serve_url: str, influx: InfluxDB, db: str, day: Day) -> None:
    """Wait until everything published is stored and evaluated: the point "the clock reads this" means."""
    def stored() -> int:  # every point carries seq; count(*) would count each field apart
        return sum(int(s["values"][0][1]) for m in ("home", "air")
                   for s in influx_query(influx.url, db, f'SELECT count("seq") FROM "{m}"'))

    eventually(lambda: stored() >= day.sent, 60, f"{day.sent} readings stored")
    eventually(lambda: httpx.get(f"{serve_url}/healthz", timeout=5).json()["evaluation_backlog"] == 0, 60,
               "every stored reading evaluated")


def _alerts(serve_url: str, **params: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{serve_url}/api/v1/alerts", params=params, timeout=10,
                       headers={"Authorization": f"Bearer {ADMIN}"})
    answer.raise_for_status()
    alerts: list[dict[str, Any]] = answer.json()["alerts"]
    return alerts


def test_a_care_day_across_two_kills_of_serve(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, tmp_path: Path, unique: str,
    publisher: Callable[..., None], serve_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump(REGISTRY))
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text(yaml.safe_dump({"tokens": [
        {"name": "ops", "role": "admin", "sha256": hash_token(ADMIN)},
        {"name": "parks", "role": "street", "sha256": hash_token(STREET)},
    ]}))
    settings = serve_settings(mosquitto, influx, influx_db, registry_file, tmp_path, f"r{unique}")
    settings |= {"clock": "event", "tokens_path": str(tokens_file)}
    url = f"http://{settings['api_bind']}"
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    # London is on GMT in winter and an hour ahead in summer: place the day so that local 09:30 is where we say.
    offset_ms = int(midnight.astimezone(_london()).utcoffset().total_seconds() * 1000)  # type: ignore[union-attr]
    day = Day(publisher, settings["topic_prefix"], int(midnight.timestamp() * 1000) - offset_ms)

    serve = serve_process(settings)
    # Yesterday from 10:00 and the night: h-late moves in the bedroom at 03:10; h-early gets up at 07:10.
    day.run(day.at(10, 0, day=-1), day.at(7, 50), {
        day.at(3, 10): [("h-late-bed-pir", {"motion": 1.0})],
        day.at(7, 10): [("h-early-kitchen-pir", {"motion": 1.0})],
    })
    _settle(url, influx, influx_db, day)
    # kill -9 at 08:00, just after the 08:00 readings are stored (some may not be evaluated yet: the journal has
    # them), and start again.
    day.run(day.at(8, 0), day.at(8, 0), {})
    serve.send_signal(signal.SIGKILL)
    serve.wait(10)
    serve = serve_process(settings)
    # h-early's hall sensor goes quiet after 09:00.
    day.hall_silent_from = day.at(9, 1)
    day.run(day.at(8, 10), day.at(9, 20), {})
    _settle(url, influx, influx_db, day)
    serve.send_signal(signal.SIGKILL)
    serve.wait(10)

    serve = serve_process(settings)
    # Right after the restart, before any new reading, the air band is known: the 1-hour mean was saved.
    sites = httpx.get(f"{url}/api/v1/air/sites", headers={"Authorization": f"Bearer {STREET}"}, timeout=10)
    assert sites.status_code == 200, sites.text
    no2 = next(p for p in sites.json()["sites"][0]["pollutants"] if p["metric"] == "no2_ugm3")
    assert (no2["band"], no2["index"], no2["complete"]) == ("Moderate", 4, True)

    # The first readings after the restart are stamped 09:40: the 09:30 wake-up check fell while it was down.
    day.run(day.at(9, 40), day.at(9, 40), {})
    not_up = eventually(lambda: [a for a in _alerts(url, audience="care") if a["rule"] == "not_up"], 60,
                        "the late wake-up check")
    assert [a["subject"] for a in not_up] == ["h-late"]  # h-early got up at 07:10, before the first kill
    assert "Checked at 09:40, late: placesense was restarting when this was due." in not_up[0]["message"]
    assert not_up[0]["opened_at"] == _rfc3339(day.at(9, 30))  # raised as of when it was due

    # The hall sensor's last check-in was 09:00; with hourly check-ins it is offline four hours later, at 13:00,
    # whatever the restarts did to the timers.
    day.run(day.at(9, 50), day.at(13, 10), {})
    _settle(url, influx, influx_db, day)
    offline = [a for a in _alerts(url, audience="care") if a["rule"] == "device_offline"]
    assert [a["subject"] for a in offline] == ["h-early"], offline
    assert offline[0]["opened_at"] == _rfc3339(day.at(13, 0))
    assert "Hallway motion sensor (h-early-hall-pir) has sent nothing since 09:00" in offline[0]["message"]
    serve.terminate()
    serve.wait(30)


def _london() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/London")


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

