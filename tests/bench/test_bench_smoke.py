"""Smoke tests of ``placesense bench``: it runs end to end on a small workload and prints the contract JSON.

They check the shape of the JSON and that nothing is lost, never the speed: speed is what the bench reports.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

from placesense.tools.bench import cli as bench_cli
from placesense.tools.bench.workload import BENCH_FORMATS, Workload, build_registry, parse_formats
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto


def _run_bench(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    bench_cli.configure(parser)
    assert bench_cli.run(parser.parse_args(list(argv))) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result: dict[str, Any] = orjson.loads(lines[-1])
    return result


def _check_contract(result: dict[str, Any], messages: int, devices: int) -> None:
    assert result["messages"] == messages
    assert result["devices"] == devices
    assert isinstance(result["throughput_msgs_per_s"], float)
    for key in ("publish_to_stored_ms", "event_to_alert_ms"):
        assert isinstance(result[key]["p50"], float)
        assert isinstance(result[key]["p99"], float)
    assert isinstance(result["peak_rss_mb"], float)
    assert isinstance(result["lost"], int)
    assert isinstance(result["raw"]["mqtt_receive_msgs_per_s"], float)
    assert isinstance(result["raw"]["influx_write_points_per_s"], float)
    assert isinstance(result["ratio"], float)
    assert result["lost"] == 0
    assert result["dead_letters"] == 0
    assert result["throughput_msgs_per_s"] > 0
    assert result["raw"]["mqtt_receive_msgs_per_s"] > 0
    assert result["raw"]["ingest_receive_msgs_per_s"] > 0  # ingest's consumer drained the whole backlog
    assert result["raw"]["influx_write_points_per_s"] > 0
    assert result["peak_rss_mb"] > 0
    # both of the service's processes are counted: ingest with the API, and the rules' evaluation process
    parts = result["peak_rss_mb_by_process"]
    assert set(parts) == {"ingest_api", "evaluation"} and all(v > 0 for v in parts.values())
    assert result["peak_rss_mb"] >= max(parts.values())
    assert result["drain_cpu_us_per_msg"]["ingest_api"] > 0
    assert result["drain_cpu_us_per_msg"]["evaluation"] > 0  # the rules did work on the drained readings
    assert 0 < result["publish_to_stored_ms"]["p50"] <= result["publish_to_stored_ms"]["p99"]
    # the saved evaluation state: per home, bed and site after a simulated life, and per device of the live fleet
    assert set(result["state_bytes_per"]) == {"home", "bed", "site"}
    assert all(v > 0 for v in result["state_bytes_per"].values())
    assert result["state_bytes_per_device"] > 0


def test_bench_starts_its_own_servers_and_prints_the_contract_json(capsys: pytest.CaptureFixture[str]) -> None:
    result = _run_bench(capsys, "--messages", "2000", "--devices", "50", "--state-days", "2")
    _check_contract(result, 2000, 50)
    assert result["formats"] == list(BENCH_FORMATS)


def test_bench_against_given_servers(
    capsys: pytest.CaptureFixture[str], mosquitto: Mosquitto, influx: InfluxDB
) -> None:
    result = _run_bench(
        capsys, "--messages", "500", "--devices", "20", "--formats", "ttn,zigbee2mqtt",
        "--mqtt-url", mosquitto.url, "--influx-url", influx.url, "--live-rate", "0", "--state-days", "1",
    )  # fmt: skip
    _check_contract(result, 500, 20)
    assert result["formats"] == ["ttn", "zigbee2mqtt"]


def test_workload_timestamps_map_back_to_messages() -> None:
    registry = build_registry(12, BENCH_FORMATS)
    workload = Workload(registry, 30, base_ms=1_700_000_000_000)
    topics = [topic for topic, _ in workload.encoded("p/")]
    assert len(topics) == 30
    assert len(set(topics[:12])) == 12  # round-robin: the first D messages come from D different devices
    assert workload.message_index(1_700_000_000_029) == 29


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown source format"):
        parse_formats("canonical,lorawan")


def _bench_process(tmp_path: Path, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "placesense.cli", "bench", "--workdir", str(tmp_path / "bench"), *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def _started_by(bench: subprocess.Popen[str], tmp_path: Path) -> list[psutil.Process]:
    """The servers and the rules process this bench run started (its servers run in sessions of their own)."""
    mine = []
    for process in psutil.process_iter(["cmdline", "ppid"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(tmp_path / "bench") in cmdline or (
            "placesense.evaluation_process" in cmdline and process.info["ppid"] == bench.pid
        ):
            mine.append(process)
    return mine


def _wait_for_line(stream: Any, needle: str, timeout_s: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    for line in stream:
        seen.append(line)
        if needle in line:
            return seen
        assert time.monotonic() < deadline, f"no {needle!r} in {seen[-5:]}"
    raise AssertionError(f"the bench ended before {needle!r}: {seen[-10:]}")


def test_a_stalled_stage_ends_the_bench_with_its_name_and_every_server_stopped(tmp_path: Path) -> None:
    bench_run = _bench_process(tmp_path, "--messages", "30000", "--devices", "50", "--stall-timeout", "5",
                               "--state-days", "1")
    try:
        assert bench_run.stderr is not None
        # once the rules process has said it is ready (the line is logged after its handshake), stop it: the
        # backlog is still draining, so it stops owing answers for stored readings
        _wait_for_line(bench_run.stderr, "pipeline capacity: service started", 300)
        _wait_for_line(bench_run.stderr, "evaluation process", 60)
        children = [p for p in psutil.Process(bench_run.pid).children()
                    if "placesense.evaluation_process" in " ".join(p.cmdline())]
        children[0].send_signal(signal.SIGSTOP)  # it answers nothing from now on
        _out, err = bench_run.communicate(timeout=240)
        assert bench_run.returncode == 1
        assert re.search(r"pipeline capacity: evaluation stopped at [\d,]+ of 30,000 stored readings \(the rules "
                         r"process answers nothing\); nothing moved for \d+ s", err), err[-2000:]
        assert not _started_by(bench_run, tmp_path), "the bench left servers or its rules process running"
    finally:
        if bench_run.poll() is None:
            os.killpg(bench_run.pid, signal.SIGKILL)


def test_sigterm_stops_the_bench_and_every_server_it_started(tmp_path: Path) -> None:
    bench_run = _bench_process(tmp_path, "--messages", "5000", "--devices", "50", "--state-days", "1")
    try:
        assert bench_run.stderr is not None
        _wait_for_line(bench_run.stderr, "raw MQTT", 240)
        assert _started_by(bench_run, tmp_path), "the bench's servers should be running now"
        bench_run.send_signal(signal.SIGTERM)
        bench_run.communicate(timeout=120)
        assert bench_run.returncode == 130
        assert not _started_by(bench_run, tmp_path), "the bench left servers running after SIGTERM"
    finally:
        if bench_run.poll() is None:
            os.killpg(bench_run.pid, signal.SIGKILL)
