"""The device registry: the YAML file an admin edits to say which devices exist and whom or what they watch.

It maps each device to its domain, its subject (a pseudonymous home id, a flowerbed id or an air site id), its
room or location, its source format and model. Residents' names may be written here for the care team's
convenience; they never leave the registry (InfluxDB, alerts and logs carry only the pseudonymous home id).

Loading validates everything with pydantic. An unknown field or a bad value is reported with the file's line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devices.readings import Domain
from devices.topics import DEVICE_ID_RE, SourceFormat
from placesense.basics.errors import ConfigError

Identifier = Annotated[str, Field(pattern=DEVICE_ID_RE.pattern)]
# contact: a contact or switch on anything else the resident opens or uses (cupboard, drawer, window, tap, light
# switch), reporting ``door_open``; flush: a toilet-flush sensor (a contact on the cistern), also ``door_open``.
DeviceKind = Literal[
    "motion", "front_door", "fridge_door", "door", "bed", "chair", "kettle", "plug", "climate", "help_button",
    "contact", "flush", "soil", "air",
]
HOME_KINDS = frozenset(
    {"motion", "front_door", "fridge_door", "door", "bed", "chair", "kettle", "plug", "climate", "help_button",
     "contact", "flush"}
)
Room = Literal["bedroom", "bathroom", "kitchen", "living_room", "hallway", "other"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Home(_Strict):
    """A resident's home, known to InfluxDB and alerts only by its pseudonymous ``id``."""

    id: Identifier
    name: str | None = Field(None, description="resident's name; stays in the registry")
    care_team: str | None = None
    timezone: str = "Europe/London"


class Flowerbed(_Strict):
    """A planted bed or planter with a soil sensor."""

    id: Identifier
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    dry_below_pct: float = Field(25.0, ge=0, le=100, description="needs water below this moisture")
    wet_above_pct: float = Field(70.0, ge=0, le=100, description="over-watered above this moisture")

    @model_validator(mode="after")
    def _thresholds(self) -> Flowerbed:
        if self.dry_below_pct >= self.wet_above_pct:
            raise ValueError("dry_below_pct must be below wet_above_pct")
        return self


class AirSite(_Strict):
    """A street location with an air-quality sensor."""

    id: Identifier
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class DeviceSpec(_Strict):
    """One physical device and how to read it."""

    id: Identifier
    domain: Domain
    subject: Identifier
    kind: DeviceKind
    format: SourceFormat = "canonical"
    source_id: str | None = Field(
        None,
        description="the device's name in its source format: Zigbee2MQTT friendly name, TTN device id, "
        "ChirpStack DevEUI, Sensor.Community chip id; defaults to id",
    )
    model: str | None = Field(None, description="vendor model; selects the payload codec for raw LoRaWAN bytes")
    room: Room | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    rules: dict[str, Any] = Field(default_factory=dict, description="per-device rule overrides")

    @model_validator(mode="after")
    def _consistent(self) -> DeviceSpec:
        if self.domain == "home":
            if self.kind not in HOME_KINDS:
                raise ValueError(f"kind {self.kind!r} is not a home device")
            if self.room is None:
                raise ValueError("home devices need a room")
        elif self.kind != self.domain:
            raise ValueError(f"a {self.domain} device has kind {self.domain!r}")
        if self.format == "canonical" and self.source_id not in (None, self.id):
            raise ValueError("canonical devices publish under their own id; drop source_id")
        return self

    @property
    def source_key(self) -> str:
        key = self.source_id or self.id
        return key.lower() if self.format == "chirpstack" else key


class RegistryFile(_Strict):
    homes: list[Home] = Field(default_factory=list)
    flowerbeds: list[Flowerbed] = Field(default_factory=list)
    air_sites: list[AirSite] = Field(default_factory=list)
    devices: list[DeviceSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> RegistryFile:
        subjects: dict[str, set[str]] = {
            "home": {h.id for h in self.homes},
            "soil": {b.id for b in self.flowerbeds},
            "air": {s.id for s in self.air_sites},
        }
        # One namespace for all subjects: alerts, dead letters, the audit log and erasure know a subject by its id
        # alone, so a flowerbed sharing a home's id would be read, scoped and erased as that home.
        _unique("home, flowerbed or air site id", (
            *(h.id for h in self.homes), *(b.id for b in self.flowerbeds), *(s.id for s in self.air_sites)))
        _unique("device", (d.id for d in self.devices))
        _unique("source id", (f"{d.format}:{d.source_key}" for d in self.devices))
        for device in self.devices:
            if device.subject not in subjects[device.domain]:
                listing = {"home": "homes", "soil": "flowerbeds", "air": "air_sites"}[device.domain]
                raise ValueError(f"device {device.id!r}: subject {device.subject!r} is not listed under {listing}")
        return self


def _unique(what: str, ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise ValueError(f"{what} {ident!r} is listed twice")
        seen.add(ident)


@dataclass(frozen=True)
class Registry:
    """The validated registry with the look-ups ingest and the rules need."""

    homes: dict[str, Home]
    flowerbeds: dict[str, Flowerbed]
    air_sites: dict[str, AirSite]
    devices: dict[str, DeviceSpec]
    by_source: dict[tuple[str, str], DeviceSpec]

    @classmethod
    def from_model(cls, model: RegistryFile) -> Registry:
        _share_repeats(model.devices)
        return cls(
            homes={h.id: h for h in model.homes},
            flowerbeds={b.id: b for b in model.flowerbeds},
            air_sites={s.id: s for s in model.air_sites},
            devices={d.id: d for d in model.devices},
            by_source={(d.format, d.source_key): d for d in model.devices},
        )

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Registry:
        return cls.from_model(RegistryFile.model_validate(data))

    def add(self, device: DeviceSpec) -> None:
        """Register one more device while running (``POST /api/v1/devices``); checks what the file's validation
        checks for one device: a known subject of its domain, a new id and a new source id."""
        subjects: set[str] = {"home": set(self.homes), "soil": set(self.flowerbeds),
                              "air": set(self.air_sites)}[device.domain]
        if device.subject not in subjects:
            raise ValueError(f"device {device.id}: no {device.domain} subject {device.subject!r} in the registry")
        if device.id in self.devices:
            raise ValueError(f"device {device.id} is already registered")
        key = (device.format, device.source_key)
        if key in self.by_source:
            owner = self.by_source[key].id
            raise ValueError(f"device {device.id}: source id {device.source_key!r} is already {owner}'s")
        self.devices[device.id] = device
        self.by_source[key] = device

    def lookup(self, source_format: str, source_id: str) -> DeviceSpec | None:
        key = source_id.lower() if source_format == "chirpstack" else source_id
        return self.by_source.get((source_format, key))

    def to_data(self) -> dict[str, Any]:
        return RegistryFile(
            homes=list(self.homes.values()),
            flowerbeds=list(self.flowerbeds.values()),
            air_sites=list(self.air_sites.values()),
            devices=list(self.devices.values()),
        ).model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def _share_repeats(devices: Iterable[DeviceSpec]) -> None:
    """Make equal values of different devices one object: the registry lives in both of serve's processes, and a
    fleet of 10,000 devices took about 2 KB a device, mostly repeats.

    Validation gives each device its own copy of every string (its domain, kind, room, home) and its own set of
    the fields given in the file (728 bytes for six names). The models are frozen and nothing mutates these, so
    devices with equal ones can share them; equality, hashing and ``model_dump`` see the same values.
    """
    strings: dict[str, str] = {}
    field_sets: dict[frozenset[str], set[str]] = {}
    for device in devices:
        values = device.__dict__
        for name in _REPEATED_FIELDS:
            value = values[name]
            if isinstance(value, str):
                values[name] = strings.setdefault(value, value)
        given = device.__pydantic_fields_set__
        object.__setattr__(device, "__pydantic_fields_set__", field_sets.setdefault(frozenset(given), given))


_REPEATED_FIELDS = ("domain", "subject", "kind", "format", "model", "room")


def load_registry(path: Path) -> Registry:
    """Read and validate the registry file; errors name the line that is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the device registry {path}: {exc.strerror}. "
            "Set PLACESENSE_REGISTRY_PATH or copy config/registry.example.yaml."
        ) from exc
    try:
        data = yaml.safe_load(text) or {}
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with homes, flowerbeds, air_sites, devices")
    try:
        return Registry.from_data(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(root, loc)
            where = ".".join(str(p) for p in loc) or "registry"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{path}:{line}: {where}: {msg}" if line else f"{path}: {where}: {msg}")
        raise ConfigError("invalid device registry:\n  " + "\n  ".join(problems)) from exc


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc``, or of the deepest ancestor that exists."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
