"""``placesense simulate`` end to end: registry only, help, and a short run against mosquitto with ground truth."""

from __future__ import annotations

from pathlib import Path

import pytest
from firmware_sim.anomalies import read_ground_truth

from devices.registry import load_registry
from placesense.cli import build_parser, main
from placesense.tools.localstack.mosquitto import Mosquitto


def test_registry_only_writes_a_loadable_registry(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    code = main(["simulate", "--homes", "2", "--beds", "3", "--air-sites", "1", "--formats", "canonical",
                 "--write-registry", str(path), "--registry-only"])
    assert code == 0
    registry = load_registry(path)
    assert len(registry.homes) == 2 and len(registry.flowerbeds) == 3 and len(registry.air_sites) == 1


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "--help"])
    text = capsys.readouterr().out
    for option in ("--homes", "--beds", "--air-sites", "--days", "--start", "--seed", "--speed", "--formats",
                   "--anomaly", "--anomalies", "--truth", "--write-registry", "--mqtt-url", "--topic-prefix"):
        assert option in text
    assert "PLACESENSE_MQTT_PASSWORD" in text


def test_bad_speed_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "--speed", "fast"])
    assert "3600" in capsys.readouterr().err


def test_short_run_publishes_and_writes_ground_truth(
    mosquitto: Mosquitto, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PLACESENSE_CONFIG", raising=False)
    truth = tmp_path / "truth.jsonl"
    registry_path = tmp_path / "registry.yaml"
    code = main(["simulate", "--homes", "1", "--beds", "1", "--air-sites", "1", "--days", "2", "--seed", "3",
                 "--start", "2024-05-06T00:00:00Z", "--speed", "max",
                 "--anomaly", "cold_home@0", "--anomaly", "stuck_sensor:bed-001-soil@1", "--truth", str(truth),
                 "--write-registry", str(registry_path), "--mqtt-url", mosquitto.url,
                 "--topic-prefix", f"cli-{unique}", "--client-id", f"sim-{unique}"])
    assert code == 0
    assert "published" in capsys.readouterr().out
    records = read_ground_truth(truth)
    assert [r["type"] for r in records] == ["cold_home", "stuck_sensor"]
    assert records[1]["device"] == "bed-001-soil" and records[1]["start"].startswith("2024-05-07")
    assert registry_path.exists()


def test_anomaly_that_does_not_fit_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--days", "1", "--anomaly", "late_wakeup@9", "--mqtt-url", "mqtt://127.0.0.1:1"])
    assert code == 1
    assert "no day 9" in capsys.readouterr().err
