"""``placesense demo`` as a user runs it: real mosquitto, InfluxDB, ``placesense serve`` and the simulated fleet as
separate processes under a folder of their own, on free ports. A small fleet with a short history and sensors
reporting every few seconds keeps it quick; what is checked is what ``make demo`` promises:

- the live fleet carries on from the history (one simulation), so its first readings raise no sensor alert;
- the live fleet publishes steadily (messages counted at the service, polled with a deadline), and its log stays
  quiet (no warning about its own future readings, no progress line every few seconds);
- ``placesense doctor`` passes against the running demo with the settings file the demo wrote, which is private
  and keeps the broker passwords out of serve's environment;
- ``make stop && make demo`` keeps the tokens (old links keep working) and the registry, and carries on where the
  simulator stopped: no past alert is raised a second time.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from placesense.tools.localstack.process import free_port
from tests.helpers import eventually

PLACESENSE = [sys.executable, "-m", "placesense.cli"]
LIVE_MESSAGES = 20  # at least this many live messages within the deadline: about 15 s at 6 sensors every 4 s


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 180) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PLACESENSE_")}
    done = subprocess.run([*PLACESENSE, *argv], cwd=cwd, env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout_s, check=False)
    assert done.returncode == 0, f"placesense {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class Demo:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.api_port = free_port()
        self.argv = ["demo", "--homes", "2", "--beds", "2", "--air-sites", "2", "--history-days", "0.5",
                     "--report-every", "4", "--mqtt-port", str(free_port()), "--influx-port", str(free_port()),
                     "--api-port", str(self.api_port)]

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> str:
        return _run(self.argv, self.folder)

    def stop(self) -> None:
        _run(["demo", "--stop"], self.folder)

    def tokens(self) -> dict[str, str]:
        text = (self.folder / "var/demo/tokens.txt").read_text()
        return dict(line.split("\t", 1) for line in text.splitlines())

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        token = token or self.tokens()["admin"]
        return httpx.get(f"{self.api}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def metric(self, name: str) -> float:
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"no metric {name}")

    def alerts(self) -> list[dict[str, Any]]:
        body = self.get("/api/v1/alerts").json()
        return list(body if isinstance(body, list) else body["alerts"])

    def simulator_log(self) -> str:
        return (self.folder / "var/log/simulate.log").read_text()

    def settled(self) -> bool:
        """Everything received is stored and evaluated."""
        received = self.metric("placesense_readings_stored_total")
        return self.metric("placesense_evaluation_backlog") == 0 and (
            self.metric("placesense_readings_evaluated_total") >= received)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _opened(alert: dict[str, Any]) -> float:
    return datetime.fromisoformat(alert["opened_at"].replace("Z", "+00:00")).timestamp()


def _caught_up(demo: Demo, count: int) -> bool:
    return demo.simulator_log().count("caught up with the present") >= count


@pytest.mark.timeout(420)
def test_the_demo_runs_live_without_false_alerts_and_restarts_where_it_stopped(demo: Demo) -> None:
    printed = demo.start()
    tokens = demo.tokens()
    assert tokens["display"] in printed and tokens["care"] in printed

    # The settings file: private, and what serve runs on, so its environment holds no password.
    settings_file = demo.folder / "var/demo/placesense.toml"
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o600
    assert "mqtt_password" in settings_file.read_text()
    serve_pid = int((demo.folder / "var/run/serve.pid").read_text())
    environ = Path(f"/proc/{serve_pid}/environ").read_bytes().split(b"\0")
    assert not [v for v in environ if v.startswith(b"PLACESENSE_") and b"PASSWORD" in v.split(b"=")[0]]
    doctor = _run(["doctor"], demo.folder, {"PLACESENSE_CONFIG": "var/demo/placesense.toml"}, timeout_s=60)
    assert "checks passed" in doctor and "FAIL" not in doctor, doctor

    # The history goes out at full speed, then the same simulation carries on live.
    eventually(lambda: _caught_up(demo, 1), 150, "the simulator to catch up with the present")
    live_from = time.time()
    eventually(demo.settled, 120, "the history stored and evaluated")
    received = demo.metric("placesense_messages_received_total")
    eventually(lambda: demo.metric("placesense_messages_received_total") - received >= LIVE_MESSAGES, 120,
               f"{LIVE_MESSAGES} live messages")
    eventually(demo.settled, 60, "the live readings evaluated")
    first_run = demo.alerts()
    # The simulator does not warn about its own future readings, nor log its progress every few seconds.
    log = demo.simulator_log()
    assert "will be refused" not in log and "simulated time" not in log, log
    false_alarms = [a for a in first_run if a["rule"].startswith("sensor_") and _opened(a) >= live_from - 60]
    assert false_alarms == [], "the first live readings raised sensor alerts"
    registry = demo.folder / "var/demo/registry.yaml"
    registry_written = registry.stat().st_mtime_ns

    # make stop && make demo: same tokens, same registry, and the simulator carries on where it stopped.
    demo.stop()
    stopped_at = time.time()
    printed = demo.start()
    assert demo.tokens() == tokens and tokens["display"] in printed
    assert registry.stat().st_mtime_ns == registry_written
    assert demo.get("/api/v1/alerts", tokens["care"]).status_code == 200  # a link handed out still works
    eventually(lambda: _caught_up(demo, 2), 120, "the restarted simulator to catch up")
    assert "resumed after" in demo.simulator_log()
    received = demo.metric("placesense_messages_received_total")
    eventually(lambda: demo.metric("placesense_messages_received_total") - received >= LIVE_MESSAGES // 2, 120,
               "live messages after the restart")
    eventually(demo.settled, 60, "the readings after the restart evaluated")
    before = {a["id"] for a in first_run}
    resolved = {(a["rule"], a["subject"]) for a in first_run if a["state"] == "resolved"}
    raised_again = [a for a in demo.alerts() if a["id"] not in before
                    and (_opened(a) < stopped_at - 60 or (a["rule"], a["subject"]) in resolved)]
    assert raised_again == [], "alerts of the past raised a second time after the restart"
