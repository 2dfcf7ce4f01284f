"""The three placesense dashboards, built as typed models: care overview, flowerbeds and air quality.

Every panel reads InfluxDB with raw InfluxQL over the measurements README.md lists (``home``, ``soil``, ``air``;
tags ``device``, ``subject``, ``room``, ``source``), limited by Grafana's ``$timeFilter`` and grouped by
``$__interval`` — or by a fixed window where the number means something: activity counts per hour, and the UK
Daily Air Quality Index's averaging periods (NO2 1 h, PM2.5 and PM10 running 24 h, O3 running 8 h).

The care dashboard shows pseudonymous home ids only: residents' names live in the registry and never reach
InfluxDB or Grafana. The flowerbeds' coordinates live in the registry too, so the builder takes the registry
and embeds them as a static table that the geomap joins to the latest moisture by bed id. This module must not
talk to Grafana or InfluxDB.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from devices.registry import Registry
from grafana.datasources import INFLUX_REF, STATIC_REF
from grafana.model import (
    MIXED_REF,
    CsvTarget,
    Dashboard,
    FieldConfig,
    FieldDefaults,
    GridPos,
    InfluxQLTarget,
    Panel,
    QueryVariable,
    Templating,
    Thresholds,
    ThresholdStep,
    TimeRange,
    Transformation,
    VariableOption,
)

FOLDER_UID = "placesense"
FOLDER_TITLE = "placesense"
TAGS = ["placesense"]

CARE_UID = "placesense-care"
FLOWERBEDS_UID = "placesense-flowerbeds"
AIR_UID = "placesense-air"

# Home temperature: below 18 °C raises health risks for older people; below 16 °C is the cold-home alert.
COLD_HOME_C = 16.0
COOL_HOME_C = 18.0
# Watering defaults of the Wrexham pilot: red below 25 %, green to 70 %, yellow (over-watered) above.
DRY_BELOW_PCT = 25.0
WET_ABOVE_PCT = 70.0
# Battery colours: the rules' low-battery warning is the concern; these only draw the eye.
BATTERY_LOW_PCT = 15.0
BATTERY_OK_PCT = 30.0

# UK DAQI: (field, title, averaging hours, upper bound in whole µg/m³ of the Low, Moderate and High bands).
# The table's bands are whole µg/m³ and a mean is rounded half-up before banding (as rules/ does), so a band
# starts half a unit above the previous band's upper bound: PM2.5 Moderate is index 4, 36–41, from 35.5.
DAQI_POLLUTANTS: tuple[tuple[str, str, int, tuple[int, int, int]], ...] = (
    ("pm2_5_ugm3", "PM2.5, running 24-hour mean", 24, (35, 53, 70)),
    ("pm10_ugm3", "PM10, running 24-hour mean", 24, (50, 75, 100)),
    ("no2_ugm3", "NO2, 1-hour mean", 1, (200, 400, 600)),
    ("o3_ugm3", "O3, running 8-hour mean", 8, (100, 160, 240)),
)
DAQI_BAND_COLOURS = ("green", "orange", "red", "purple")  # Low, Moderate, High, Very High


def _steps(base: str, *steps: tuple[float, str]) -> Thresholds:
    return Thresholds(
        steps=[ThresholdStep(color=base), *(ThresholdStep(color=colour, value=value) for value, colour in steps)]
    )


def daqi_thresholds(upper_bounds: tuple[int, int, int]) -> Thresholds:
    """Steps at the Moderate, High and Very High band boundaries (half-up rounding, see above)."""
    low, moderate, high, very_high = DAQI_BAND_COLOURS
    low_upper, moderate_upper, high_upper = upper_bounds
    return _steps(low, (low_upper + 0.5, moderate), (moderate_upper + 0.5, high), (high_upper + 0.5, very_high))


def _variable(name: str, label: str, measurement: str) -> QueryVariable:
    query = f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "subject"'
    return QueryVariable(
        name=name,
        label=label,
        datasource=INFLUX_REF,
        query=query,
        definition=query,
        multi=True,
        include_all=True,
        current=VariableOption(text=["All"], value=["$__all"]),
    )


def _influx(query: str, ref_id: str = "A", alias: str | None = None, table: bool = False) -> InfluxQLTarget:
    return InfluxQLTarget(
        ref_id=ref_id,
        datasource=INFLUX_REF,
        query=" ".join(query.split()),
        result_format="table" if table else "time_series",
        alias=alias,
    )


def _timeseries(
    panel_id: int,
    title: str,
    grid: tuple[int, int, int, int],
    query: str,
    *,
    unit: str,
    alias: str,
    thresholds: Thresholds | None = None,
    description: str | None = None,
    bars: bool = False,
    minimum: float | None = None,
) -> Panel:
    custom: dict[str, Any] = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1 if bars else 2,
        "fillOpacity": 80 if bars else 10,
        "spanNulls": not bars,
        "showPoints": "never",
    }
    if thresholds is not None:
        custom["thresholdsStyle"] = {"mode": "line+area"}
    return Panel(
        id=panel_id,
        type="timeseries",
        title=title,
        description=description,
        grid_pos=_grid(grid),
        datasource=INFLUX_REF,
        targets=[_influx(query, alias=alias)],
        field_config=FieldConfig(
            defaults=FieldDefaults(
                unit=unit,
                min=minimum,
                thresholds=thresholds,
                color={"mode": "palette-classic"},
                custom=custom,
            )
        ),
        options={"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
                 "tooltip": {"mode": "multi", "sort": "desc"}},
    )


def _grid(grid: tuple[int, int, int, int]) -> GridPos:
    x, y, w, h = grid
    return GridPos(x=x, y=y, w=w, h=h)


def _battery_panel(
    panel_id: int, title: str, grid: tuple[int, int, int, int], measurement: str, subject_filter: str,
    description: str | None = None,
) -> Panel:
    """Last battery level per device of one measurement, red below the low-battery alert level."""
    return _bargauge(
        panel_id,
        title,
        grid,
        f"""SELECT last("battery_pct") AS "battery_pct" FROM "{measurement}"
            WHERE {subject_filter} AND $timeFilter GROUP BY "device" """,
        unit="percent",
        thresholds=_steps("red", (BATTERY_LOW_PCT, "orange"), (BATTERY_OK_PCT, "green")),
        label_field="device",
        description=description,
    )


def _bargauge(
    panel_id: int, title: str, grid: tuple[int, int, int, int], query: str, *, unit: str, thresholds: Thresholds,
    label_field: str, description: str | None = None,
) -> Panel:
    # A table result with one row per tag value; the bar gauge shows every row, labelled by that tag.
    return Panel(
        id=panel_id,
        type="bargauge",
        title=title,
        description=description,
        grid_pos=_grid(grid),
        datasource=INFLUX_REF,
        targets=[_influx(query, table=True)],
        field_config=FieldConfig(
            defaults=FieldDefaults(unit=unit, min=0, max=100, thresholds=thresholds, color={"mode": "thresholds"},
                                   display_name=f"${{__field.labels.{label_field}}}")
        ),
        options={
            "orientation": "horizontal",
            "displayMode": "basic",
            "showUnfilled": True,
            "reduceOptions": {"values": True, "calcs": ["lastNotNull"], "fields": ""},
        },
    )


# --- care overview -----------------------------------------------------------------------------------------

HOME_FILTER = '"subject" =~ /^$home$/'


def care_dashboard() -> Dashboard:
    """Homes by pseudonymous id: activity per hour, room temperatures against 16/18 °C, devices' batteries."""
    activity = _timeseries(
        1,
        "Activity per hour",
        (0, 0, 24, 8),
        f"""SELECT count("motion") AS "movements" FROM "home"
            WHERE {HOME_FILTER} AND "motion" = 1 AND $timeFilter
            GROUP BY time(1h), "subject" fill(0)""",
        unit="short",
        alias="$tag_subject",
        bars=True,
        minimum=0,
        description="Motion detections per hour in each home (all rooms). A quiet morning or a busy night "
        "stands out against the home's other days.",
    )
    temperature = _timeseries(
        2,
        "Room temperature",
        (0, 8, 16, 9),
        f"""SELECT mean("temperature_c") FROM "home"
            WHERE {HOME_FILTER} AND $timeFilter
            GROUP BY time($__interval), "subject", "room" fill(none)""",
        unit="celsius",
        alias="$tag_subject $tag_room",
        thresholds=_steps("red", (COLD_HOME_C, "orange"), (COOL_HOME_C, "green")),
        description="Below 18 °C raises health risks for older people (orange); below 16 °C for hours is a "
        "cold home (red).",
    )
    battery = _battery_panel(
        3, "Device battery", (16, 8, 8, 9), "home", HOME_FILTER,
        description="Last battery level each device reported in the time range; mains-powered plugs report none.",
    )
    return Dashboard(
        uid=CARE_UID,
        title="placesense · care overview",
        description="Pseudonymous homes only: residents' names stay in the device registry.",
        tags=[*TAGS, "care"],
        time=TimeRange(from_="now-24h"),
        templating=Templating(variables=[_variable("home", "Home", "home")]),
        panels=[activity, temperature, battery],
    )


# --- flowerbeds --------------------------------------------------------------------------------------------

BED_FILTER = '"subject" =~ /^$bed$/'
MOISTURE_THRESHOLDS = _steps("red", (DRY_BELOW_PCT, "green"), (WET_ABOVE_PCT, "yellow"))


def beds_csv(registry: Registry) -> str:
    """The beds' ids, names and coordinates as CSV, for the geomap's static layer."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["subject", "name", "latitude", "longitude", "dry_below_pct", "wet_above_pct"])
    for bed in sorted(registry.flowerbeds.values(), key=lambda b: b.id):
        writer.writerow([bed.id, bed.name, bed.lat, bed.lon, bed.dry_below_pct, bed.wet_above_pct])
    return out.getvalue()


def _map_view(registry: Registry) -> dict[str, Any]:
    beds = list(registry.flowerbeds.values())
    if not beds:
        return {"id": "coords", "lat": 54.0, "lon": -2.5, "zoom": 5}  # Great Britain
    return {
        "id": "coords",
        "lat": round(sum(b.lat for b in beds) / len(beds), 5),
        "lon": round(sum(b.lon for b in beds) / len(beds), 5),
        "zoom": 14,
    }


def _geomap(registry: Registry) -> Panel:
    moisture = _influx(
        f"""SELECT last("soil_moisture_pct") AS "soil_moisture_pct" FROM "soil"
            WHERE {BED_FILTER} AND $timeFilter GROUP BY "subject" """,
        table=True,
    )
    beds = CsvTarget(ref_id="B", datasource=STATIC_REF, csv_content=beds_csv(registry))
    marker_layer = {
        "type": "markers",
        "name": "Beds",
        "config": {
            "showLegend": True,
            "style": {
                "color": {"field": "soil_moisture_pct", "fixed": "dark-green"},
                "size": {"fixed": 10},
                "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                "text": {"mode": "field", "field": "name"},
                "textConfig": {"fontSize": 11, "offsetY": -14, "textAlign": "center", "textBaseline": "bottom"},
                "opacity": 0.9,
            },
        },
        "location": {"mode": "coords", "latitude": "latitude", "longitude": "longitude"},
        "tooltip": True,
    }
    return Panel(
        id=1,
        type="geomap",
        title="Beds by moisture",
        description="Each bed at its registered location, coloured by its latest soil moisture: red needs water "
        "(below 25 %), green is fine, yellow is over-watered (above 70 %). Coordinates come from the device "
        "registry as a static table joined to InfluxDB's latest reading by bed id.",
        grid_pos=GridPos(x=0, y=0, w=12, h=14),
        # Two datasources in one panel: Grafana's "mixed" pseudo-datasource sends each target to its own.
        datasource=MIXED_REF,
        targets=[moisture, beds],
        field_config=FieldConfig(
            defaults=FieldDefaults(unit="percent", min=0, max=100, thresholds=MOISTURE_THRESHOLDS,
                                   color={"mode": "thresholds"})
        ),
        transformations=[
            # Outer join keeps beds with no reading in the range on the map, uncoloured.
            Transformation(id="joinByField", options={"byField": "subject", "mode": "outer"}),
        ],
        options={
            "view": _map_view(registry),
            "controls": {"showZoom": True, "mouseWheelZoom": True, "showScale": True},
            "basemap": {"type": "default", "name": "Basemap"},
            "layers": [marker_layer],
            "tooltip": {"mode": "details"},
        },
    )


def flowerbeds_dashboard(registry: Registry) -> Dashboard:
    """Soil moisture per bed against the watering thresholds, on a map and over time."""
    moisture_now = _bargauge(
        2,
        "Moisture now",
        (12, 0, 12, 14),
        f"""SELECT last("soil_moisture_pct") AS "soil_moisture_pct" FROM "soil"
            WHERE {BED_FILTER} AND $timeFilter GROUP BY "subject" """,
        unit="percent",
        thresholds=MOISTURE_THRESHOLDS,
        label_field="subject",
        description="Latest volumetric soil moisture per bed: red needs water, yellow is over-watered.",
    )
    history = _timeseries(
        3,
        "Soil moisture per bed",
        (0, 14, 16, 9),
        f"""SELECT mean("soil_moisture_pct") FROM "soil"
            WHERE {BED_FILTER} AND $timeFilter
            GROUP BY time($__interval), "subject" fill(none)""",
        unit="percent",
        alias="$tag_subject",
        thresholds=MOISTURE_THRESHOLDS,
        minimum=0,
        description="Drying between waterings; a line that never moves may be a stuck sensor.",
    )
    battery = _battery_panel(4, "Soil sensor battery", (16, 14, 8, 9), "soil", BED_FILTER)
    return Dashboard(
        uid=FLOWERBEDS_UID,
        title="placesense · flowerbeds",
        description="Which beds need water: red below 25 % volumetric moisture, yellow above 70 %.",
        tags=[*TAGS, "street"],
        time=TimeRange(from_="now-2d"),
        templating=Templating(variables=[_variable("bed", "Bed", "soil")]),
        panels=[_geomap(registry), moisture_now, history, battery],
    )


# --- air quality -------------------------------------------------------------------------------------------

SITE_FILTER = '"subject" =~ /^$site$/'


def daqi_query(field: str, hours: int) -> str:
    """Hourly means, and for multi-hour averaging periods their running mean over ``hours`` hours.

    InfluxQL cannot look before ``$timeFilter``, so a running mean starts ``hours - 1`` hours into the range;
    the dashboard's default range (7 days) leaves the first day of PM readings blank.
    """
    select = f'mean("{field}")' if hours == 1 else f'moving_average(mean("{field}"), {hours})'
    return (
        f'SELECT {select} AS "{field}" FROM "air" WHERE {SITE_FILTER} AND $timeFilter '
        'GROUP BY time(1h), "subject"'
    )


def air_dashboard() -> Dashboard:
    """The four DAQI pollutants, each over its own averaging period, with the bands as threshold steps."""
    panels: list[Panel] = []
    for index, (field, title, hours, bounds) in enumerate(DAQI_POLLUTANTS):
        panels.append(
            _timeseries(
                index + 1,
                title,
                ((index % 2) * 12, (index // 2) * 9, 12, 9),
                daqi_query(field, hours),
                unit="conμgm3",
                alias="$tag_subject",
                thresholds=daqi_thresholds(bounds),
                minimum=0,
                description=f"UK Daily Air Quality Index bands: Low (green) up to {bounds[0]} µg/m³, Moderate "
                f"(orange) to {bounds[1]}, High (red) to {bounds[2]}, Very High (purple) above.",
            )
        )
    return Dashboard(
        uid=AIR_UID,
        title="placesense · air quality",
        description="Street air quality against the UK Daily Air Quality Index bands.",
        tags=[*TAGS, "air"],
        time=TimeRange(from_="now-7d"),
        templating=Templating(variables=[_variable("site", "Air site", "air")]),
        panels=panels,
    )


def all_dashboards(registry: Registry) -> list[Dashboard]:
    return [care_dashboard(), flowerbeds_dashboard(registry), air_dashboard()]


def influxql_targets(dashboards: Iterable[Dashboard]) -> Sequence[tuple[Dashboard, Panel, InfluxQLTarget]]:
    """Every InfluxQL query of every panel, with where it lives (for tests and ``doctor``-style checks)."""
    return [
        (d, p, t) for d in dashboards for p in d.panels for t in p.targets if isinstance(t, InfluxQLTarget)
    ]
