"""The generated dashboards validate against our typed model of Grafana's dashboard schema (version 39).

The model (``grafana.model``) is strict about keys and types, and checks what Grafana accepts silently but
renders wrongly: panels outside the 24-column grid or overlapping, duplicate panel ids, threshold steps out of
order, datasource uids and ``$variables`` that resolve to nothing. Each rule is also shown to reject a bad
dashboard, so the validation is not a rubber stamp.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from devices.registry import Registry
from grafana.dashboards import DAQI_POLLUTANTS, all_dashboards, care_dashboard, flowerbeds_dashboard
from grafana.datasources import DATASOURCE_UIDS
from grafana.model import SCHEMA_VERSION, Dashboard, check_references, dump
from tests.grafana.conftest import grafana_fleet

# The DESIGN.md table: upper bound of index 3 (Low), 6 (Moderate) and 9 (High) in µg/m³.
DESIGN_DAQI = {"no2_ugm3": (200, 400, 600), "pm2_5_ugm3": (35, 53, 70), "pm10_ugm3": (50, 75, 100),
               "o3_ugm3": (100, 160, 240)}


def _json(dashboard: Dashboard) -> dict[str, Any]:
    return json.loads(json.dumps(dump(dashboard)))


@pytest.mark.parametrize("dashboard", all_dashboards(grafana_fleet()), ids=lambda d: d.uid)
def test_generated_dashboard_validates(dashboard: Dashboard) -> None:
    data = _json(dashboard)
    parsed = Dashboard.model_validate(data)
    check_references(parsed, set(DATASOURCE_UIDS))
    assert data["schemaVersion"] == SCHEMA_VERSION
    assert "id" not in data
    assert _json(parsed) == data
    for panel in data["panels"]:
        assert panel["gridPos"]["x"] >= 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel["targets"]:
            if target["datasource"]["type"] == "influxdb":
                assert target["rawQuery"] is True and "$timeFilter" in target["query"]


def test_titles() -> None:
    titles = [d.title for d in all_dashboards(grafana_fleet())]
    assert titles == ["placesense · care overview", "placesense · flowerbeds", "placesense · air quality"]


def test_daqi_thresholds_are_the_band_boundaries() -> None:
    air = all_dashboards(grafana_fleet())[2]
    for (field, _, _, _), panel in zip(DAQI_POLLUTANTS, air.panels, strict=True):
        thresholds = panel.field_config.defaults.thresholds
        assert thresholds is not None
        values = [s.value for s in thresholds.steps[1:]]
        assert values == [b + 0.5 for b in DESIGN_DAQI[field]], field
        assert [s.color for s in thresholds.steps] == ["green", "orange", "red", "purple"]


def test_daqi_boundaries_agree_with_the_rules_when_present() -> None:
    daqi = pytest.importorskip("rules.daqi")
    for field, *_ in DAQI_POLLUTANTS:
        bounds = daqi.POLLUTANTS[field][2]
        assert DESIGN_DAQI[field] == (bounds[2], bounds[5], bounds[8])


def test_care_and_watering_thresholds() -> None:
    temperature = care_dashboard().panels[1].field_config.defaults.thresholds
    assert temperature is not None and [s.value for s in temperature.steps] == [None, 16, 18]
    moisture = flowerbeds_dashboard(grafana_fleet()).panels[2].field_config.defaults.thresholds
    assert moisture is not None and [(s.value, s.color) for s in moisture.steps] == [
        (None, "red"), (25, "green"), (70, "yellow")]


def test_residents_names_never_reach_a_dashboard() -> None:
    data = grafana_fleet().to_data()
    data["homes"][0]["name"] = "Mrs Example Resident"
    registry = Registry.from_data(data)
    for dashboard in all_dashboards(registry):
        assert "Example Resident" not in json.dumps(dump(dashboard))


def _care() -> dict[str, Any]:
    return _json(care_dashboard())


def _broken(change: str) -> dict[str, Any]:
    data = _care()
    panels = data["panels"]
    if change == "past-grid":
        panels[2]["gridPos"]["x"] = 20
    elif change == "overlap":
        panels[1]["gridPos"]["y"] = 4
    elif change == "duplicate-id":
        panels[1]["id"] = panels[0]["id"]
    elif change == "thresholds-order":
        panels[1]["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] = 30
    elif change == "base-step":
        panels[1]["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["value"] = 0
    elif change == "not-raw":
        panels[0]["targets"][0]["rawQuery"] = False
    elif change == "unknown-key":
        panels[0]["gridpos"] = panels[0]["gridPos"]
    elif change == "bad-type":
        panels[0]["type"] = "graph-old"
    return data


@pytest.mark.parametrize(
    "change",
    ["past-grid", "overlap", "duplicate-id", "thresholds-order", "base-step", "not-raw", "unknown-key", "bad-type"],
)
def test_schema_rejects(change: str) -> None:
    with pytest.raises(ValidationError):
        Dashboard.model_validate(_broken(change))


def test_unknown_datasource_and_undefined_variable_are_rejected() -> None:
    data = _care()
    data["panels"][0]["targets"][0]["datasource"]["uid"] = "nowhere"
    with pytest.raises(ValueError, match="unknown datasource uids"):
        check_references(Dashboard.model_validate(data), set(DATASOURCE_UIDS))
    data = _care()
    data["panels"][0]["targets"][0]["query"] += " AND $resident"
    with pytest.raises(ValueError, match="undefined variables"):
        check_references(Dashboard.model_validate(data), set(DATASOURCE_UIDS))
