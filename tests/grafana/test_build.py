"""``placesense grafana build``: dashboards and provisioning files a Grafana reads from disk, with no secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from firmware_sim.fleet import write_registry

from devices.registry import load_registry
from grafana.dashboards import FOLDER_UID
from grafana.datasources import DATASOURCE_UIDS
from grafana.model import Dashboard, check_references
from placesense.cli import main
from tests.grafana.conftest import grafana_fleet

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("CONFIG", "INFLUX_URL", "INFLUX_DB", "INFLUX_TOKEN", "INFLUX_USERNAME", "INFLUX_PASSWORD"):
        monkeypatch.delenv(f"PLACESENSE_{name}", raising=False)
    return monkeypatch


def _build(tmp_path: Path, *extra: str) -> Path:
    registry = tmp_path / "registry.yaml"
    write_registry(grafana_fleet(), registry)
    out = tmp_path / "out"
    assert main(["grafana", "build", "--out", str(out), "--registry", str(registry), *extra]) == 0
    return out


def test_build_writes_dashboards_and_provisioning(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    out = _build(tmp_path, "--dashboards-path", "/srv/dash")
    names = sorted(p.name for p in (out / "dashboards").iterdir())
    assert names == ["placesense-air.json", "placesense-care.json", "placesense-flowerbeds.json"]
    for path in (out / "dashboards").iterdir():
        check_references(Dashboard.model_validate(json.loads(path.read_text())), set(DATASOURCE_UIDS))
    provider = yaml.safe_load((out / "provisioning/dashboards/placesense.yaml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["folderUid"] == FOLDER_UID
    assert provider["options"]["path"] == "/srv/dash"
    datasources = yaml.safe_load((out / "provisioning/datasources/placesense.yaml").read_text())["datasources"]
    assert {d["uid"] for d in datasources} == set(DATASOURCE_UIDS)


def test_token_is_an_environment_reference_never_a_value(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PLACESENSE_INFLUX_TOKEN", "s3cr3t-influx-token")
    out = _build(tmp_path, "--influx-url", "http://influxdb:8086")
    for path in out.rglob("*"):
        if path.is_file():
            assert "s3cr3t" not in path.read_text()
    influx = yaml.safe_load((out / "provisioning/datasources/placesense.yaml").read_text())["datasources"][0]
    assert influx["url"] == "http://influxdb:8086"
    assert influx["jsonData"]["httpHeaderName1"] == "Authorization"
    assert influx["secureJsonData"] == {"httpHeaderValue1": "Token ${PLACESENSE_INFLUX_TOKEN}"}


def test_password_is_an_environment_reference(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PLACESENSE_INFLUX_USERNAME", "reader")
    clean_env.setenv("PLACESENSE_INFLUX_PASSWORD", "s3cr3t-password")
    out = _build(tmp_path)
    text = (out / "provisioning/datasources/placesense.yaml").read_text()
    assert "s3cr3t" not in text
    influx = yaml.safe_load(text)["datasources"][0]
    assert influx["user"] == "reader" and influx["secureJsonData"] == {"password": "${PLACESENSE_INFLUX_PASSWORD}"}


def test_committed_provisioning_files_are_current(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    """grafana/provisioning/ is what 'placesense grafana build' writes with default settings."""
    assert load_registry(REPO / "config/registry.example.yaml")
    out = _build(tmp_path)
    for name in ("datasources/placesense.yaml", "dashboards/placesense.yaml"):
        committed = (REPO / "grafana/provisioning" / name).read_text()
        assert (out / "provisioning" / name).read_text() == committed, f"rebuild grafana/provisioning/{name}"
