"""Smoke tests of ``placesense bench``: it runs end to end on a small workload and prints the contract JSON.

They check the shape of the JSON and that nothing is lost, never the speed: speed is what the bench reports.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import pytest

from placesense import bench
from placesense.bench_workload import BENCH_FORMATS, Workload, build_registry, parse_formats
from placesense.localstack import InfluxDB, Mosquitto


def _run_bench(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    bench.configure(parser)
    assert bench.run(parser.parse_args(list(argv))) == 0
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


def test_bench_starts_its_own_servers_and_prints_the_contract_json(capsys: pytest.CaptureFixture[str]) -> None:
    result = _run_bench(capsys, "--messages", "2000", "--devices", "50")
    _check_contract(result, 2000, 50)
    assert result["formats"] == list(BENCH_FORMATS)


def test_bench_against_given_servers(
    capsys: pytest.CaptureFixture[str], mosquitto: Mosquitto, influx: InfluxDB
) -> None:
    result = _run_bench(
        capsys, "--messages", "500", "--devices", "20", "--formats", "ttn,zigbee2mqtt",
        "--mqtt-url", mosquitto.url, "--influx-url", influx.url, "--live-rate", "0",
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
