"""Every panel's InfluxQL, interpolated as Grafana would, run against the real test InfluxDB and returning data.

The database holds two days of the firmware simulator's readings for a small fleet (three homes, four beds, two
air sites, one home going cold) written as line protocol, the same encoding ingest uses. Template variables
take their "All" values from running the variable's own ``SHOW TAG VALUES`` query, as Grafana does.
"""

from __future__ import annotations

import csv
import io
import itertools

import pytest

from grafana.dashboards import all_dashboards, influxql_targets
from grafana.model import CsvTarget, Dashboard, InfluxQLTarget
from tests.grafana.conftest import FilledInflux, grafana_fleet
from tests.grafana.support import interpolate
from tests.helpers import influx_query

DASHBOARDS = all_dashboards(grafana_fleet())
TARGETS = influxql_targets(DASHBOARDS)


def _variable_values(filled: FilledInflux, dashboard: Dashboard) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for variable in dashboard.templating.variables:
        series = influx_query(filled.url, filled.db, variable.query)
        values[variable.name] = sorted(row[1] for s in series for row in s["values"])
    return values


def _run(filled: FilledInflux, query: str, variables: dict[str, list[str]]) -> list[dict[str, object]]:
    sent = interpolate(query, start_ms=filled.start_ms, end_ms=filled.end_ms, variables=variables)
    return influx_query(filled.url, filled.db, sent)


def _non_null(series: list[dict[str, object]]) -> int:
    return sum(
        1 for s in series for row in s["values"] for v in row[1:] if v is not None  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize(
    ("dashboard", "panel", "target"), TARGETS, ids=[f"{d.uid}-{p.id}-{t.ref_id}" for d, p, t in TARGETS]
)
def test_panel_query_returns_data(
    filled_influx: FilledInflux, dashboard: Dashboard, panel: object, target: InfluxQLTarget
) -> None:
    series = _run(filled_influx, target.query, _variable_values(filled_influx, dashboard))
    assert series, f"no series for {target.query}"
    assert _non_null(series) > 0, f"only nulls for {target.query}"


def test_variables_list_every_subject(filled_influx: FilledInflux) -> None:
    registry = filled_influx.registry
    expected = {"home": set(registry.homes), "bed": set(registry.flowerbeds), "site": set(registry.air_sites)}
    for dashboard in DASHBOARDS:
        for name, values in _variable_values(filled_influx, dashboard).items():
            assert set(values) == expected[name]


def test_selecting_one_home_shows_only_that_home(filled_influx: FilledInflux) -> None:
    care = DASHBOARDS[0]
    one = sorted(filled_influx.registry.homes)[1]
    for panel in care.panels:
        target = panel.targets[0]
        assert isinstance(target, InfluxQLTarget)
        series = _run(filled_influx, target.query, {"home": [one]})
        tags = [s.get("tags", {}) for s in series]
        devices = {t["device"] for t in tags if "device" in t}
        subjects = {t["subject"] for t in tags if "subject" in t}
        assert subjects <= {one} and all(d.startswith(one) for d in devices), (panel.title, tags)
        assert series


def test_activity_is_counted_per_hour(filled_influx: FilledInflux) -> None:
    activity = DASHBOARDS[0].panels[0].targets[0]
    assert isinstance(activity, InfluxQLTarget)
    series = _run(filled_influx, activity.query, {"home": sorted(filled_influx.registry.homes)})
    for s in series:
        times = [row[0] for row in s["values"]]
        assert all(b - a == 3_600_000 for a, b in itertools.pairwise(times))
        assert max(row[1] for row in s["values"]) > 0


def test_cold_home_is_below_the_threshold(filled_influx: FilledInflux) -> None:
    temperature = DASHBOARDS[0].panels[1].targets[0]
    assert isinstance(temperature, InfluxQLTarget)
    series = _run(filled_influx, temperature.query, {"home": [filled_influx.cold_home]})
    lowest = min(v for s in series for _, v in s["values"] if v is not None)
    assert lowest < 16


def test_running_means_cover_their_window(filled_influx: FilledInflux) -> None:
    """A 24-hour running mean over three days of hourly means yields values for the last two days only."""
    air = DASHBOARDS[2]
    pm25 = air.panels[0].targets[0]
    assert isinstance(pm25, InfluxQLTarget)
    series = _run(filled_influx, pm25.query, {"site": sorted(filled_influx.registry.air_sites)})
    for s in series:
        assert 44 <= len(s["values"]) <= 50, len(s["values"])


def test_geomap_joins_every_bed_with_a_reading_to_its_coordinates(filled_influx: FilledInflux) -> None:
    registry = filled_influx.registry
    geomap = DASHBOARDS[1].panels[0]
    assert geomap.type == "geomap"
    moisture, beds = geomap.targets
    assert isinstance(moisture, InfluxQLTarget) and isinstance(beds, CsvTarget)
    assert moisture.result_format == "table"
    rows = list(csv.DictReader(io.StringIO(beds.csv_content)))
    by_bed = {row["subject"]: row for row in rows}
    for bed in registry.flowerbeds.values():
        assert float(by_bed[bed.id]["latitude"]) == bed.lat
        assert float(by_bed[bed.id]["longitude"]) == bed.lon
    series = _run(filled_influx, moisture.query, {"bed": sorted(registry.flowerbeds)})
    assert {s["tags"]["subject"] for s in series} == set(by_bed)
    join = geomap.transformations[0]
    assert join.id == "joinByField" and join.options["byField"] == "subject"
    layer = geomap.options["layers"][0]
    assert layer["location"] == {"mode": "coords", "latitude": "latitude", "longitude": "longitude"}
    assert layer["config"]["style"]["color"]["field"] == "soil_moisture_pct"
