"""Typed models of the parts of Grafana's dashboard JSON model (schema version 39) that placesense uses.

There is no official Python package of Grafana's schema types, so these pydantic models describe the subset we
emit: the dashboard, panels with ``gridPos``, datasource references, InfluxQL and TestData targets, field
configuration with units and thresholds, transformations and template variables. They are strict
(``extra="forbid"``) and check what Grafana would otherwise accept silently and render wrongly: panels inside
the 24-column grid and not overlapping, unique panel ids and ``refId``s, threshold steps in ascending order
after a base step, and — through ``check_references`` — datasource uids and ``$variables`` that resolve.

Builders construct these models; ``dump`` turns them into the JSON Grafana reads. This module knows nothing
about placesense's measurements.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_serializer, model_validator
from pydantic.alias_generators import to_camel

SCHEMA_VERSION = 39
GRID_COLUMNS = 24

# Variables Grafana itself provides to InfluxQL queries; anything else must be a template variable.
BUILTIN_VARIABLES = frozenset(
    {"timeFilter", "__interval", "__interval_ms", "__from", "__to", "__range", "__range_s", "__range_ms"}
)
_VARIABLE_RE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")


class _Model(BaseModel):
    # Grafana's keys are camelCase; Python attributes stay snake_case.
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class DataSourceRef(_Model):
    type: str
    uid: str


# Grafana's pseudo-datasource for panels whose targets use different datasources; always resolvable.
MIXED_REF = DataSourceRef(type="datasource", uid="-- Mixed --")


class GridPos(_Model):
    x: int = Field(ge=0, lt=GRID_COLUMNS)
    y: int = Field(ge=0)
    w: int = Field(ge=1, le=GRID_COLUMNS)
    h: int = Field(ge=1)

    @model_validator(mode="after")
    def _inside_grid(self) -> GridPos:
        if self.x + self.w > GRID_COLUMNS:
            raise ValueError(f"panel spans columns {self.x}..{self.x + self.w}, past the grid's {GRID_COLUMNS}")
        return self

    def overlaps(self, other: GridPos) -> bool:
        return (
            self.x < other.x + other.w
            and other.x < self.x + self.w
            and self.y < other.y + other.h
            and other.y < self.y + self.h
        )


class InfluxQLTarget(_Model):
    """A raw InfluxQL query, as the InfluxDB datasource stores it when the query editor is in raw mode."""

    ref_id: str = Field(pattern=r"^[A-Z]$")
    datasource: DataSourceRef
    query: str = Field(min_length=1)
    raw_query: Literal[True] = True
    result_format: Literal["time_series", "table"] = "time_series"
    alias: str | None = None


class CsvTarget(_Model):
    """Static CSV content served by Grafana's built-in TestData datasource."""

    ref_id: str = Field(pattern=r"^[A-Z]$")
    datasource: DataSourceRef
    scenario_id: Literal["csv_content"] = "csv_content"
    csv_content: str = Field(min_length=1)


Target = InfluxQLTarget | CsvTarget


class ThresholdStep(_Model):
    color: str
    value: float | None = None

    @model_serializer
    def _always_value(self) -> dict[str, Any]:
        # Grafana's base step carries "value": null explicitly; dumping with exclude_none must keep it.
        return {"color": self.color, "value": self.value}


class Thresholds(_Model):
    mode: Literal["absolute", "percentage"] = "absolute"
    steps: list[ThresholdStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.steps[0].value is not None:
            raise ValueError("the first threshold step is the base and has value null")
        values = [s.value for s in self.steps[1:]]
        if any(v is None for v in values):
            raise ValueError("only the first threshold step may have value null")
        numbers = [v for v in values if v is not None]
        if numbers != sorted(set(numbers)):
            raise ValueError(f"threshold steps must be strictly ascending, got {numbers}")
        return self


class FieldDefaults(_Model):
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    decimals: int | None = Field(default=None, ge=0)
    display_name: str | None = None
    thresholds: Thresholds | None = None
    color: dict[str, Any] | None = None
    custom: dict[str, Any] = Field(default_factory=dict)


class FieldConfig(_Model):
    defaults: FieldDefaults = Field(default_factory=lambda: FieldDefaults())
    overrides: list[dict[str, Any]] = Field(default_factory=list)


class Transformation(_Model):
    id: str
    options: dict[str, Any] = Field(default_factory=dict)


PanelType = Literal["timeseries", "barchart", "bargauge", "stat", "table", "geomap", "text"]


class Panel(_Model):
    id: int = Field(ge=1)
    type: PanelType
    title: str = Field(min_length=1)
    description: str | None = None
    grid_pos: GridPos
    datasource: DataSourceRef | None = None
    targets: list[Target] = Field(default_factory=list)
    field_config: FieldConfig = Field(default_factory=FieldConfig)
    options: dict[str, Any] = Field(default_factory=dict)
    transformations: list[Transformation] = Field(default_factory=list)
    interval: str | None = None
    max_data_points: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _unique_ref_ids(self) -> Panel:
        ref_ids = [t.ref_id for t in self.targets]
        if len(ref_ids) != len(set(ref_ids)):
            raise ValueError(f"panel {self.id}: duplicate refId in {ref_ids}")
        return self


class VariableOption(_Model):
    text: str | list[str]
    value: str | list[str]
    selected: bool | None = None


class QueryVariable(_Model):
    """A ``query`` template variable whose values come from the datasource (``SHOW TAG VALUES …``)."""

    type: Literal["query"] = "query"
    name: str = Field(pattern=r"^\w+$")
    label: str | None = None
    datasource: DataSourceRef
    query: str = Field(min_length=1)
    definition: str | None = None
    refresh: Literal[1, 2] = 1  # 1: on dashboard load, 2: on time-range change
    multi: bool = False
    include_all: bool = False
    sort: int = Field(default=1, ge=0, le=8)
    regex: str = ""
    current: VariableOption | None = None
    hide: Literal[0, 1, 2] = 0


class Templating(_Model):
    variables: list[QueryVariable] = Field(
        default_factory=list, serialization_alias="list", validation_alias=AliasChoices("list", "variables")
    )


class TimeRange(_Model):
    from_: str = Field(serialization_alias="from", validation_alias=AliasChoices("from", "from_"))
    to: str = "now"


class Dashboard(_Model):
    uid: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    title: str = Field(min_length=1)
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    timezone: str = "browser"
    schema_version: int = SCHEMA_VERSION
    version: int = 1
    editable: bool = True
    graph_tooltip: Literal[0, 1, 2] = 1
    refresh: str | None = "1m"
    time: TimeRange = Field(default_factory=lambda: TimeRange(from_="now-24h"))
    templating: Templating = Field(default_factory=Templating)
    panels: Annotated[list[Panel], Field(min_length=1)]

    @model_validator(mode="after")
    def _layout(self) -> Dashboard:
        ids = [p.id for p in self.panels]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate panel ids in {ids}")
        for i, first in enumerate(self.panels):
            for second in self.panels[i + 1 :]:
                if first.grid_pos.overlaps(second.grid_pos):
                    raise ValueError(f"panels {first.id} and {second.id} overlap")
        names = [v.name for v in self.templating.variables]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate template variables in {names}")
        return self

    def variables_used(self) -> set[str]:
        """Every ``$name``, ``${name}`` and ``[[name]]`` in the queries of panels and variables."""
        texts = [t.query for p in self.panels for t in p.targets if isinstance(t, InfluxQLTarget)]
        texts += [v.query for v in self.templating.variables]
        return {next(g for g in m.groups() if g) for text in texts for m in _VARIABLE_RE.finditer(text)}

    def datasource_uids(self) -> set[str]:
        refs = [v.datasource for v in self.templating.variables]
        for panel in self.panels:
            refs += [panel.datasource] if panel.datasource else []
            refs += [t.datasource for t in panel.targets]
        return {r.uid for r in refs}


def check_references(dashboard: Dashboard, datasource_uids: set[str]) -> None:
    """Raise ``ValueError`` unless every datasource uid and every ``$variable`` in ``dashboard`` resolves."""
    missing = dashboard.datasource_uids() - datasource_uids - {MIXED_REF.uid}
    if missing:
        raise ValueError(f"dashboard {dashboard.uid}: unknown datasource uids {sorted(missing)}")
    defined = {v.name for v in dashboard.templating.variables} | BUILTIN_VARIABLES
    undefined = dashboard.variables_used() - defined
    if undefined:
        raise ValueError(f"dashboard {dashboard.uid}: undefined variables {sorted(undefined)}")


def dump(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (camelCase keys, unset optional keys left out)."""
    return dashboard.model_dump(mode="json", by_alias=True, exclude_none=True)
