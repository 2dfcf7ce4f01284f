"""Two ``placesense serve`` instances on one PostgreSQL (active/standby, docs/scaling.md), real processes on the
event clock: the leader is killed just before a resident's wake-up deadline and the standby carries on with
nothing lost, doubled or missed; a leader paused past its lease finds itself fenced and writes nothing.
"""

from __future__ import annotations

import http.server
import itertools
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from sqlalchemy import create_engine, text

from api.auth import hash_token
from devices.readings import Reading
from devices.registry import Registry
from placesense.cli import main as doctor
from placesense.evaluation_core import EvaluationCore, EvaluationSpec
from placesense.evaluation_state import parse_state
from placesense.statecodec import encode
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from rules.config import RulesConfig
from tests.helpers import eventually, http_server, influx_query, serve_env, serve_settings, sim_readings

ADMIN = "admin-" + "z" * 32
LEASE_S = 3.0


def _fleet() -> Registry:
    from firmware_sim.fleet import build_fleet

    return build_fleet(homes=1, beds=0, air_sites=0, seed=4, formats="canonical")


def _registry() -> dict[str, Any]:
    fleet = _fleet()
    data: dict[str, Any] = {
        "homes": [{"id": h} for h in fleet.homes] + [{"id": "h-late"}],
        "devices": [d.model_dump(mode="json", exclude_none=True) for d in fleet.devices.values()] + [
            {"id": "h-late-bed-pir", "domain": "home", "subject": "h-late", "kind": "motion", "room": "bedroom"},
            {"id": "h-late-kitchen-pir", "domain": "home", "subject": "h-late", "kind": "motion", "room": "kitchen"},
            {"id": "h-late-climate", "domain": "home", "subject": "h-late", "kind": "climate",
             "room": "living_room"},
        ],
    }
    for device in data["devices"]:
        device.pop("rules", None)
    return data


def _stream(registry: Registry, start_ms: int, end_ms: int) -> list[Reading]:
    """The simulated home's life, and h-late's: up at 08:00 on the first two days, in bed all the third morning
    (her sensors check in every 20 minutes; only a change is activity)."""
    readings = list(sim_readings(_fleet(), start_ms, end_ms, seed=4))
    for seq, ts in enumerate(range(start_ms + 7_000, end_ms, 20 * 60_000), start=1):
        readings.append(Reading("home", "h-late-climate", "h-late", "living_room", ts,
                                {"temperature_c": 20.0 + (seq % 7) / 10}, None, seq))
        readings.append(Reading("home", "h-late-bed-pir", "h-late", "bedroom", ts + 1, {"motion": 0.0}, None, seq))
        readings.append(Reading("home", "h-late-kitchen-pir", "h-late", "kitchen", ts + 2, {"motion": 0.0}, None,
                                seq))
    for day in range(3):
        night = start_ms + day * 86_400_000 + 3 * 3_600_000 + 11_000
        readings.append(Reading("home", "h-late-bed-pir", "h-late", "bedroom", night, {"motion": 1.0}, None, 0))
        if day < 2:
            for minute in (0, 5, 30):
                at = start_ms + day * 86_400_000 + (8 * 60 + minute) * 60_000 + 13_000
                readings.append(Reading("home", "h-late-kitchen-pir", "h-late", "kitchen", at, {"motion": 1.0},
                                        None, 0))
    readings.sort(key=lambda r: r.ts_ms)
    return [r for r in readings if start_ms <= r.ts_ms < end_ms]


def _publish(publisher: Callable[..., None], prefix: str, readings: list[Reading]) -> None:
    for r in readings:
        body = {"ts": r.ts_ms, "metrics": dict(r.metrics), "seq": r.seq}
        if r.battery_pct is not None:
            body["battery_pct"] = r.battery_pct
        publisher(f"{prefix}placesense/v1/{r.domain}/{r.device_id}/telemetry", orjson.dumps(body))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _health(url: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{url}/healthz", timeout=5).json()
    return answer


def _stored(influx: InfluxDB, db: str) -> int:
    series = influx_query(influx.url, db, 'SELECT count("seq") FROM "home"')
    return int(series[0]["values"][0][1]) if series else 0


def _alerts(url: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/alerts", params={"limit": "1000"}, timeout=10,
                       headers={"Authorization": f"Bearer {ADMIN}"})
    answer.raise_for_status()
    alerts: list[dict[str, Any]] = answer.json()["alerts"]
    return alerts


class _Hooks(http.server.BaseHTTPRequestHandler):
    """Keeps every webhook delivery as (webhook-id, body)."""

    received: list[tuple[str, dict[str, Any]]]
    lock: threading.Lock

    def do_POST(self) -> None:
        body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.received.append((self.headers["webhook-id"], body))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def hooks() -> Iterator[tuple[str, type[_Hooks]]]:
    handler = type("Hooks", (_Hooks,), {"received": [], "lock": threading.Lock()})
    with http_server(handler) as url:
        yield f"{url}/hook", handler


@pytest.fixture
def pair(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, postgres_url: str, tmp_path: Path, unique: str,
    hooks: tuple[str, type[_Hooks]],
) -> tuple[dict[str, str], dict[str, str], Registry]:
    data = _registry()
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump(data))
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [{"name": "ops", "role": "admin", "sha256": hash_token(ADMIN)}]}))
    settings = []
    for name in ("alpha", "beta"):
        folder = tmp_path / name
        folder.mkdir()
        one = serve_settings(mosquitto, influx, influx_db, registry_file, folder, f"f{unique}")
        one |= {"clock": "event", "tokens_path": str(tokens), "database_url": postgres_url, "ha": "true",
                "instance_name": name, "ha_lease_s": str(LEASE_S),
                "webhook_urls": orjson.dumps([hooks[0]]).decode(), "webhook_secret": "s" * 32}
        settings.append(one)
    return settings[0], settings[1], Registry.from_data(data)


def test_the_standby_takes_over_from_a_killed_leader_before_the_wake_up_deadline(
    pair: tuple[dict[str, str], dict[str, str], Registry], influx: InfluxDB, influx_db: str, postgres_url: str,
    publisher: Callable[..., None], serve_process: Callable[..., subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], hooks: tuple[str, type[_Hooks]],
) -> None:
    alpha, beta, registry = pair
    url_a, url_b = f"http://{alpha['api_bind']}", f"http://{beta['api_bind']}"
    for key, value in beta.items():  # `placesense doctor` as run on beta's machine
        monkeypatch.setenv(f"PLACESENSE_{key.upper()}", value)
    midnight = int((datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
                    - timedelta(days=3)).timestamp() * 1000)
    kill_at = midnight + 2 * 86_400_000 + (9 * 60 + 20) * 60_000  # 09:20 UTC (GMT in winter) on the third day
    end = kill_at + 60 * 60_000
    stream = _stream(registry, midnight, end)
    before, after = [r for r in stream if r.ts_ms <= kill_at], [r for r in stream if r.ts_ms > kill_at]

    leader = serve_process(alpha)
    assert _health(url_a)["role"] == "leader"
    standby = serve_process(beta)
    assert (_health(url_b)["role"], _health(url_b)["leader"]) == ("standby", "alpha")
    assert httpx.get(f"{url_b}/healthz/leader", timeout=5).status_code == 503
    assert doctor(["doctor", "--timeout", "5"]) == 0
    assert "alpha leads evaluation (epoch 1)" in capsys.readouterr().out

    _publish(publisher, alpha["topic_prefix"], before)
    eventually(lambda: _stored(influx, influx_db) >= len(before), 120, "the first days stored")
    leader.send_signal(signal.SIGKILL)  # just before h-late's 09:30 wake-up deadline
    leader.wait(10)
    eventually(lambda: _health(url_b)["role"] == "leader", 30, "the standby to take over")
    assert doctor(["doctor", "--timeout", "5"]) == 0
    assert "beta (this instance) leads evaluation (epoch 2)" in capsys.readouterr().out
    _publish(publisher, alpha["topic_prefix"], after)
    eventually(lambda: _stored(influx, influx_db) >= len(stream), 120, "every reading stored")
    eventually(lambda: _health(url_b)["evaluation_backlog"] == 0, 60, "every reading evaluated")

    assert _stored(influx, influx_db) == len(stream)  # each once: nothing lost, nothing doubled
    alerts = _alerts(url_b)
    not_up = [a for a in alerts if a["rule"] == "not_up" and a["subject"] == "h-late"]
    assert len(not_up) == 1, not_up  # raised once, by the instance that took over, at the deadline
    assert not_up[0]["opened_at"].endswith("T09:30:00.000Z") and not_up[0]["opened_at"] > _iso(kill_at - 3_600_000)
    keys = Counter((a["rule"], a["subject"], a["opened_at"]) for a in alerts if a["audience"] != "ops")
    assert all(n == 1 for n in keys.values()), keys  # no alert doubled across the two leaders
    takeover = [a for a in alerts if a["rule"] == "leader_changed"]
    assert len(takeover) == 1 and "beta took over evaluation from alpha" in takeover[0]["message"]

    # Every alert change was notified at least once, whichever instance made it, and a change sent twice (the
    # old leader died before marking it sent) carries the same id both times.
    changes = {(a["id"], h["action"], h["at"]) for a in alerts for h in a["history"]}
    assert any(at < _iso(kill_at) for _, _, at in changes), "no change before the kill: nothing to carry over"
    def notified() -> set[tuple[str, str, str]]:
        with hooks[1].lock:
            return {(b["id"], b["action"], b["updated_at"]) for _, b in hooks[1].received}
    try:
        eventually(lambda: changes <= notified(), 60, "every alert change notified")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; not notified: {sorted(changes - notified())}; "
                             f"received: {sorted(notified())}") from None
    ids: dict[tuple[str, str, str], set[str]] = {}
    with hooks[1].lock:
        for message_id, body in hooks[1].received:
            ids.setdefault((body["id"], body["action"], body["updated_at"]), set()).add(message_id)
    assert all(len(one) == 1 for one in ids.values()), ids

    # The learned routines equal a single instance's fed the same stream.
    standby.terminate()
    standby.wait(30)
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        body = conn.execute(text("SELECT body FROM evaluation_state WHERE name = 'evaluation'")).scalar_one()
    engine.dispose()
    saved = parse_state(bytes(body), "the shared database")
    single = EvaluationCore(EvaluationSpec(registry, RulesConfig(), "event", Path(alpha["state_dir"]) / "x", 30))
    for start in range(0, len(stream), 200):
        single.readings([tuple(r) for r in stream[start:start + 200]])
        single.tick()
    learned = {home: model for home, model in single.routine.state()["homes"].items() if model.days_learned}
    assert learned, "the single run learned no day: the comparison would prove nothing"
    for home, model in learned.items():
        failed_over = saved.parts["routine"]["homes"][home]
        assert failed_over.days_learned == model.days_learned
        assert orjson.dumps(encode(failed_over.baselines)) == orjson.dumps(encode(model.baselines))


def test_a_leader_paused_past_its_lease_is_fenced_and_writes_nothing(
    pair: tuple[dict[str, str], dict[str, str], Registry], influx: InfluxDB, influx_db: str, postgres_url: str,
    publisher: Callable[..., None], serve_process: Callable[..., subprocess.Popen[bytes]], tmp_path: Path,
) -> None:
    alpha, beta, registry = pair
    url_a, url_b = f"http://{alpha['api_bind']}", f"http://{beta['api_bind']}"
    start = int(time.time() * 1000) - 86_400_000
    stream = _stream(registry, start, start + 3 * 3_600_000)
    leader = serve_process(alpha)
    serve_process(beta)
    _publish(publisher, alpha["topic_prefix"], stream[: len(stream) // 2])
    eventually(lambda: _health(url_a)["evaluation_backlog"] == 0 and _stored(influx, influx_db) > 0, 60, "evaluated")
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    leader.send_signal(signal.SIGSTOP)  # a frozen VM, a stuck GC: silent, but not dead
    try:
        eventually(lambda: _health(url_b)["role"] == "leader", 30, "the standby to take over")
        _publish(publisher, alpha["topic_prefix"], stream[len(stream) // 2:])
        eventually(lambda: _stored(influx, influx_db) >= len(stream), 60, "the rest stored by the new leader")
    finally:
        leader.send_signal(signal.SIGCONT)
    # Woken, the old leader's next renewal finds the lease taken: it steps down without writing anything.
    eventually(lambda: _health(url_a)["role"] == "standby", 30, "the old leader to step down")
    with engine.connect() as conn:
        holder, epoch = conn.execute(text("SELECT holder, epoch FROM leadership")).one()
    assert holder.startswith("beta/") and epoch == 2
    log = (tmp_path / "serve-0.log").read_text()
    assert "is no longer the leader" in log
    eventually(lambda: _health(url_b)["evaluation_backlog"] == 0, 60, "the new leader caught up")
    assert _stored(influx, influx_db) == len(stream)
    keys = Counter((a["rule"], a["subject"], a["opened_at"]) for a in _alerts(url_b) if a["audience"] != "ops")
    assert all(n == 1 for n in keys.values()), keys
    engine.dispose()


def test_with_two_instances_each_reminder_is_sent_once(
    pair: tuple[dict[str, str], dict[str, str], Registry], influx: InfluxDB, influx_db: str,
    publisher: Callable[..., None], serve_process: Callable[..., subprocess.Popen[bytes]],
    hooks: tuple[str, type[_Hooks]],
) -> None:
    alpha, beta, _ = pair
    url_a = f"http://{alpha['api_bind']}"
    serve_process(alpha)
    serve_process(beta)
    prefix = alpha["topic_prefix"]
    # yesterday 10:00 UTC: the cold home rule counts 07:00–23:00 local time, whatever hour the test runs at
    start = int((datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
                 - timedelta(days=1)).timestamp() * 1000)
    publisher(f"{prefix}placesense/v1/home/h-late-climate/telemetry",
              orjson.dumps({"ts": start, "metrics": {"temperature_c": 20.0}, "seq": 1}))
    # a care alert nobody acknowledges: the cold home rule, two hours below 16 °C
    for step in range(1, 20):
        body = {"ts": start + step * 10 * 60_000, "metrics": {"temperature_c": 14.0 + (step % 3) / 10}, "seq": step}
        publisher(f"{prefix}placesense/v1/home/h-late-climate/telemetry", orjson.dumps(body))
    cold = eventually(lambda: [a for a in _alerts(url_a) if a["rule"] == "cold_home"], 60, "the cold-home alert")
    opened = datetime.fromisoformat(cold[0]["opened_at"].replace("Z", "+00:00")).timestamp() * 1000
    # event time moves on 75 minutes past the opening: care alerts are re-sent every 30 minutes until acknowledged
    for step in range(20, 40):
        ts = start + step * 10 * 60_000
        body = {"ts": ts, "metrics": {"temperature_c": 14.0}, "seq": step}
        publisher(f"{prefix}placesense/v1/home/h-late-climate/telemetry", orjson.dumps(body))
        if ts > opened + 75 * 60_000:
            break
    eventually(lambda: _health(url_a)["evaluation_backlog"] == 0 and _stored(influx, influx_db) >= step, 60,
               "evaluated")
    history = next(a for a in _alerts(url_a) if a["rule"] == "cold_home")["history"]
    reminders = [datetime.fromisoformat(h["at"].replace("Z", "+00:00")) for h in history if h["action"] == "escalated"]
    assert reminders, history
    # each reminder once, although two instances run: never two at one time, never closer than the 30 minutes
    assert len(set(reminders)) == len(reminders)
    assert all(b - a >= timedelta(minutes=30) for a, b in itertools.pairwise(reminders))
    # and each reminder reached the webhook exactly once (no takeover here, so no resend either)
    alert_id = cold[0]["id"]

    def sent() -> Counter[str]:
        with hooks[1].lock:
            return Counter(b["updated_at"] for _, b in hooks[1].received
                           if b["id"] == alert_id and b["action"] == "escalated")
    eventually(lambda: len(sent()) >= len(reminders), 60, "every reminder sent")
    escalated_at = [h["at"] for h in history if h["action"] == "escalated"]
    assert sorted(sent()) == sorted(escalated_at) and set(sent().values()) == {1}, (sent(), escalated_at)


def test_active_standby_on_sqlite_is_refused_with_a_reason(
    pair: tuple[dict[str, str], dict[str, str], Registry], tmp_path: Path,
) -> None:
    """Two instances cannot share a SQLite file across machines: serve refuses at start and says what to set."""
    alpha = pair[0] | {"database_url": f"sqlite:///{tmp_path / 'placesense.db'}"}
    done = subprocess.run([sys.executable, "-m", "placesense.cli", "serve"], env=serve_env(alpha),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "PLACESENSE_HA needs PLACESENSE_DATABASE_URL to be PostgreSQL" in done.stdout + done.stderr
