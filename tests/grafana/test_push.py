"""``placesense grafana push`` against a stand-in for Grafana's HTTP API (tests/grafana/fake_grafana.py).

No Grafana server can run here (it is not in Debian's archive and nothing beyond PyPI, Debian and npm is
reachable), so these tests check what we own: which requests push sends through grafana-client, that a second
push updates instead of duplicating, that secrets go only to the API, and that errors become clear messages.
They do not prove that a real Grafana renders the dashboards.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from firmware_sim.fleet import write_registry

from grafana.dashboards import CARE_UID, FOLDER_UID, all_dashboards
from grafana.datasources import INFLUX_UID, STATIC_UID, InfluxSource, all_datasources
from grafana.push import GrafanaPushError, connect, push
from placesense.cli import main
from tests.grafana.conftest import grafana_fleet
from tests.grafana.fake_grafana import GrafanaState, fake_grafana

TOKEN = "glsa_test_token_0123456789"


def _push(url: str, token: str = TOKEN, source: InfluxSource | None = None) -> list[str]:
    source = source or InfluxSource(url="http://influx:8086", database="placesense", token="influx-secret-42")
    report = push(
        connect(url, token, timeout_s=5),
        folder_uid=FOLDER_UID,
        folder_title="placesense",
        datasources=all_datasources(source, secrets="values"),
        dashboards=all_dashboards(grafana_fleet()),
    )
    return report.lines()


def _contents(state: GrafanaState) -> tuple[object, ...]:
    dashboards = {uid: entry["dashboard"] for uid, entry in state.dashboards.items()}
    return dict(state.folders), dict(state.datasources), dashboards


def test_first_push_creates_and_second_updates() -> None:
    with fake_grafana(TOKEN) as (url, state):
        first = _push(url)
        snapshot = _contents(state)
        second = _push(url)
        again = _contents(state)
    assert first == [
        "created folder placesense",
        f"created datasource {INFLUX_UID}",
        f"created datasource {STATIC_UID}",
        "created dashboard placesense-care",
        "created dashboard placesense-flowerbeds",
        "created dashboard placesense-air",
    ]
    assert second == [line.replace("created", "updated") for line in first]
    assert again == snapshot
    assert set(state.dashboards) == {"placesense-care", "placesense-flowerbeds", "placesense-air"}
    assert all(entry["folderUid"] == FOLDER_UID and entry["version"] == 2 for entry in state.dashboards.values())
    creates = [(m, p) for m, p, _ in state.requests if m == "POST" and p in ("/api/folders", "/api/datasources")]
    assert len(creates) == 3  # folder and two datasources, first push only


def test_datasource_carries_the_token_header_to_the_api() -> None:
    with fake_grafana(TOKEN) as (url, state):
        _push(url)
    influx = state.datasources[INFLUX_UID]
    assert influx["type"] == "influxdb" and influx["jsonData"]["version"] == "InfluxQL"
    assert influx["jsonData"]["httpHeaderName1"] == "Authorization"
    assert influx["secureJsonData"]["httpHeaderValue1"] == "Token influx-secret-42"
    dashboard = state.dashboards[CARE_UID]["dashboard"]
    assert dashboard["id"] is None and dashboard["uid"] == CARE_UID


def test_wrong_token_is_a_clear_error() -> None:
    with fake_grafana(TOKEN) as (url, _), pytest.raises(GrafanaPushError, match="PLACESENSE_GRAFANA_TOKEN"):
        _push(url, token="wrong")


def test_unreachable_grafana_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GrafanaPushError, match="cannot reach Grafana"):
        _push(f"http://127.0.0.1:{port}")


def test_cli_push_reads_the_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "registry.yaml"
    write_registry(grafana_fleet(), registry)
    monkeypatch.setenv("PLACESENSE_INFLUX_USERNAME", "grafana_reader")
    monkeypatch.setenv("PLACESENSE_INFLUX_PASSWORD", "reader-pass-9")
    monkeypatch.delenv("PLACESENSE_INFLUX_TOKEN", raising=False)
    monkeypatch.delenv("PLACESENSE_GRAFANA_TOKEN", raising=False)
    with fake_grafana(TOKEN) as (url, state):
        argv = ["grafana", "push", "--url", url, "--registry", str(registry), "--influx-url", "http://influx:8086"]
        assert main(argv) == 1
        assert "PLACESENSE_GRAFANA_TOKEN" in capsys.readouterr().err
        monkeypatch.setenv("PLACESENSE_GRAFANA_TOKEN", TOKEN)
        assert main(argv) == 0
    assert "created dashboard placesense-air" in capsys.readouterr().out
    influx = state.datasources[INFLUX_UID]
    assert influx["url"] == "http://influx:8086"
    assert influx["user"] == "grafana_reader" and influx["secureJsonData"]["password"] == "reader-pass-9"
