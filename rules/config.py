"""The rules configuration: per-rule-type defaults, per-subject and per-device overrides, validated at start.

Every rule type has one pydantic section with built-in defaults, so no file is needed. A rules file (YAML) may
change a default for everyone, and ``subjects:`` may override any section for one home, flowerbed or air site.
Devices in the registry may carry ``rules:`` overrides too (for example a longer offline time for a sensor that
reports rarely). Lookups merge defaults ← subject ← device. Every override is validated when the config is
loaded (subjects) or bound to a registry (devices), so a typo fails at start with the place named.

This module only describes and validates settings: it must not evaluate readings or touch alerts.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from devices.registry import DeviceSpec, Registry
from placesense.basics.errors import ConfigError
from placesense.basics.findings import Audience, Severity
from rules.rota import NotificationsConfig


def _parse_clock_time(value: object) -> object:
    # YAML 1.1 reads an unquoted 11:00 as the sexagesimal number 660; say so instead of a vague type error.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("write times of day in quotes, e.g. '11:00' (YAML reads an unquoted 11:00 as a number)")
    return value


ClockTime = Annotated[time, BeforeValidator(_parse_clock_time)]
DomainName = Literal["home", "soil", "air"]
FaultKind = Literal["soil", "air", "climate"]  # the devices sensor_fault watches
AlertBand = Literal["Moderate", "High", "Very High"]

# Home sensors check in about hourly even when nothing happens; soil and air sensors report every few minutes.
OFFLINE_MINUTES: dict[DomainName, float] = {"home": 180.0, "soil": 120.0, "air": 60.0}
STUCK_HOURS: dict[FaultKind, float] = {"soil": 12.0, "air": 6.0, "climate": 6.0}
BAND_SEVERITY: dict[AlertBand, Severity] = {"Moderate": "info", "High": "warning", "Very High": "critical"}
ESCALATE_MINUTES: dict[Audience, float] = {"care": 30.0, "street": 24 * 60.0, "ops": 4 * 60.0}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    severity: Severity = "warning"
    escalate_after_minutes: float | None = Field(
        default=None, gt=0, description="raise severity and notify again when unacknowledged this long"
    )


class Window(BaseModel):
    """A daily local-time window; ``start`` after ``end`` means it spans midnight (23:00–06:00)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise ValueError("start and end are equal: the window would be empty")
        return self

    def contains(self, t: time) -> bool:
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def label(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


# ---- flowerbeds -------------------------------------------------------------------------------------------


class WateringRule(_Section):
    """Needs water now (below the bed's ``dry_below_pct``) or within ``predict_hours`` by the drying forecast
    (``rules.watering``)."""

    hysteresis_pct: float = Field(
        default=1.0, ge=0, le=20, description="a dry bed must rise this far above dry (or twice its noise) to clear"
    )
    predict_hours: float = Field(default=24.0, gt=0, le=168, description="announce beds due within this many hours")
    # A whole day of readings averages out the daily cycle (soil dries in daylight, hardly at night).
    slope_window_hours: float = Field(default=24.0, gt=0, le=72, description="recent hours the drying rate uses")
    min_slope_hours: float = Field(default=12.0, gt=0, le=48, description="need this much dry-spell data to predict")
    settle_hours: float = Field(
        default=12.0, ge=0, le=48, description="after rain or watering, excess water drains this long: not drying"
    )
    rise_pct: float = Field(
        default=1.0, gt=0, le=100, description="a rise this big (and six times the probe's noise) is rain or watering"
    )
    min_drying_pct_per_hour: float = Field(default=0.02, ge=0, description="slower than this is not drying")
    stale_hours: float = Field(default=6.0, gt=0, le=168, description="a bed's newest reading older: not listed")
    calibration_days: int = Field(default=14, ge=3, le=60, description="record needed before suggesting a threshold")


class OverWateredRule(_Section):
    severity: Severity = "info"
    hysteresis_pct: float = Field(default=2.0, ge=0, le=20)


# ---- air --------------------------------------------------------------------------------------------------


class DaqiRule(_Section):
    """Alert when a site's index rises to ``alert_from_index`` (4 = Moderate); resolve when back to Low."""

    alert_from_index: int = Field(default=4, ge=2, le=10)
    clear_after_minutes: float = Field(default=60.0, ge=0, description="Low this long before resolving")
    min_coverage: float = Field(
        default=0.75, gt=0, le=1,
        description="share of the averaging period its readings cover, each covering its reporting interval "
        "(DEFRA's data capture: 75 %, e.g. 18 of the 24 hourly means)",
    )
    severity_by_band: dict[AlertBand, Severity] = Field(default_factory=lambda: dict(BAND_SEVERITY))


# ---- device health (every domain) -------------------------------------------------------------------------


class ReportingRule(_Section):
    """How often a device (or every device of a subject) reports, when it is known: an AURN station publishes
    hourly means, a LoRaWAN probe every 15 minutes. Left unset, the interval is inferred from the gaps between
    readings. The offline limit and the DAQI's data coverage follow it."""

    interval_minutes: float | None = Field(default=None, gt=0, le=7 * 24 * 60)


class OfflineRule(_Section):
    """Offline after max(``after_minutes`` for the domain, ``interval_factor`` × the usual interval)."""

    after_minutes: dict[DomainName, float] = Field(default_factory=lambda: dict(OFFLINE_MINUTES))
    interval_factor: float = Field(default=4.0, ge=1)

    @field_validator("after_minutes")
    @classmethod
    def _positive(cls, value: dict[DomainName, float]) -> dict[DomainName, float]:
        if any(v <= 0 for v in value.values()):
            raise ValueError("minutes must be positive")
        return {**OFFLINE_MINUTES, **value}


class BatteryRule(_Section):
    warning_below_pct: float = Field(default=20.0, gt=0, le=100)
    critical_below_pct: float = Field(default=10.0, ge=0, le=100)
    clear_above_pct: float = Field(default=25.0, gt=0, le=100, description="hysteresis: a new battery clears")

    @model_validator(mode="after")
    def _order(self) -> BatteryRule:
        if not self.critical_below_pct < self.warning_below_pct <= self.clear_above_pct:
            raise ValueError("need critical_below_pct < warning_below_pct <= clear_above_pct")
        return self


class SensorFaultRule(_Section):
    """A soil or air sensor is broken: the same value for hours, or a jump no real soil or air makes."""

    stuck_hours: dict[FaultKind, float] = Field(default_factory=lambda: dict(STUCK_HOURS))
    stuck_min_readings: int = Field(default=6, ge=2)
    stuck_ignore_zero: bool = Field(default=True, description="clean air legitimately reads 0 for hours")
    max_jump: dict[str, float] = Field(
        default_factory=lambda: {
            "pm2_5_ugm3": 400.0,
            "pm10_ugm3": 600.0,
            "no2_ugm3": 500.0,
            "o3_ugm3": 300.0,
        },
        description="air metric -> largest believable change between consecutive readings within an hour",
    )
    max_drop_soil_pct: float = Field(
        default=20.0, gt=0, description="soil never dries this much between readings (a rise is rain or watering)"
    )
    max_drop_soil_share: float = Field(
        default=0.5, gt=0, le=1,
        description="nor loses this share of its reading within an hour (with at least 5 points): a probe dropping "
        "from 19 % to 0.1 % has come out of the ground",
    )
    soil_floor_pct: float = Field(
        default=1.0, ge=0, le=10, description="a planted bed never reads below this for hours: a dead probe does"
    )
    soil_floor_hours: float = Field(default=6.0, gt=0, le=72)
    clear_after_hours: float = Field(
        default=24.0, gt=0, description="no further jump this long ends the fault (one alert per fault episode)"
    )

    @field_validator("stuck_hours")
    @classmethod
    def _with_defaults(cls, value: dict[FaultKind, float]) -> dict[FaultKind, float]:
        return {**STUCK_HOURS, **value}  # a kind left out keeps its default, as in offline.after_minutes


# ---- homes ------------------------------------------------------------------------------------------------


class WakeRule(_Section):
    """Not up by the deadline: ``deadline`` until the home's usual getting-up time is learned (``min_history_days``
    mornings at home), then the usual latest (90th percentile of recent mornings) plus a margin that follows the
    spread of her mornings (at least ``margin_minutes``, or the 10th–90th percentile range if wider), never later
    than ``latest_deadline``. No alert while she is out."""

    deadline: ClockTime = Field(default=time(9, 30))
    learn: bool = True
    margin_minutes: float = Field(default=60.0, ge=0, le=360)
    min_history_days: int = Field(default=7, ge=3)
    latest_deadline: ClockTime = Field(default=time(14, 0))
    day_starts: ClockTime = Field(default=time(5, 0), description="activity before this is still night")
    history_days: int = Field(default=14, ge=3, le=60)


class InactivityRule(_Section):
    """No change from any sensor for ``hours`` in waking hours, while she is up, at home and not in bed (only a bed
    excuses stillness), at an hour she is usually active. Once ``min_history_days`` are learned the time follows
    her own quiet spells (the longest of the last ``history_days`` days plus a margin: ``margin_minutes``, or
    ``margin_spread_share`` of the way from her median day's longest spell to that longest, whichever is more),
    never under ``hours`` nor over ``max_hours``."""

    hours: float = Field(default=3.0, gt=0, le=24)
    waking: Window = Field(default_factory=lambda: Window(start=time(8, 0), end=time(21, 0)))
    usually_active_share: float = Field(
        default=0.5, ge=0, le=1, description="fire only if active in the gap's hours on this share of recent days"
    )
    history_days: int = Field(default=14, ge=1, le=60)
    min_history_days: int = Field(default=5, ge=0)
    learn: bool = True
    margin_minutes: float = Field(default=30.0, ge=0, le=360)
    margin_spread_share: float = Field(
        default=0.5, ge=0, le=2, description="margin as a share of (longest - median) of her daily longest spells"
    )
    max_hours: float = Field(default=6.0, gt=0, le=24)


class NightDoorRule(_Section):
    """The front door opened in the ``night`` window, going out (coming home, and the door again within 15 minutes
    of coming home, are not): an alert at once when she had settled (at most two activities outside the bedroom in
    the ``settled_minutes`` before the last ten); when she was up and going out at night is not her habit (out
    of the front door, or coming home through it, on fewer than two of the last fourteen nights), an alert once
    nothing has moved at home for ``still_out_minutes`` after the door (0: at once)."""

    night: Window = Field(default_factory=lambda: Window(start=time(23, 0), end=time(6, 0)))
    settled_minutes: float = Field(default=80.0, ge=0, le=24 * 60)
    still_out_minutes: float = Field(
        default=15.0, ge=0, le=120, description="awake and not her habit: alert if nothing moves at home this long"
    )


class BathroomStayRule(_Section):
    minutes: float = Field(default=60.0, gt=0, le=24 * 60)


class BathroomVisitsRule(_Section):
    night: Window = Field(default_factory=lambda: Window(start=time(22, 0), end=time(7, 0)))
    history_nights: int = Field(default=14, ge=3, le=60)
    min_history_nights: int = Field(default=7, ge=3)
    min_extra_visits: int = Field(default=2, ge=1, description="above the usual by at least this many visits")
    separate_minutes: float = Field(default=10.0, gt=0, description="bathroom motion this far apart is a new visit")
    # Visits are counts: a night or day is unusual when the home's own average makes it this improbable.
    improbability: float = Field(default=0.001, gt=0, lt=0.5, description="Poisson tail probability to alert")


class ColdHomeRule(_Section):
    """Below ``below_c`` for ``for_minutes`` counted within ``counted`` hours: heating is commonly timed off at
    night while the resident is in bed, so a cool small hours is not a cold home."""

    below_c: float = Field(default=16.0, ge=-10, le=30)
    for_minutes: float = Field(default=120.0, gt=0)
    clear_above_c: float = Field(default=17.0, ge=-10, le=30)
    counted: Window = Field(default_factory=lambda: Window(start=time(7, 0), end=time(23, 0)))

    @model_validator(mode="after")
    def _hysteresis(self) -> ColdHomeRule:
        if self.clear_above_c < self.below_c:
            raise ValueError("clear_above_c must not be below below_c")
        return self


class KitchenRule(_Section):
    """No kitchen use (fridge, kettle, kitchen cupboards and appliances) by ``deadline`` until her usual first use is
    learned, then by the usual latest plus a margin that follows the spread (as ``wake``), never later than
    ``latest_deadline``. Not while she is out or not yet up."""

    deadline: ClockTime = Field(default=time(11, 0))
    day_starts: ClockTime = Field(default=time(5, 0))
    kettle_on_w: float = Field(default=300.0, gt=0, description="power above this means the kettle is on")
    learn: bool = True
    margin_minutes: float = Field(default=60.0, ge=0, le=360)
    min_history_days_deadline: int = Field(default=7, ge=3, description="first uses learned before the deadline is")
    latest_deadline: ClockTime = Field(default=time(15, 0))
    # Reduced use over a whole day (kettle boils + fridge openings) against the home's own recent days.
    history_days: int = Field(default=14, ge=3, le=60)
    min_history_days: int = Field(default=7, ge=3)
    improbability: float = Field(default=0.0005, gt=0, lt=0.5, description="Poisson tail probability to alert")
    max_share_of_usual: float = Field(default=0.5, gt=0, le=1, description="and at most this share of usual")


class HelpButtonRule(_Section):
    severity: Severity = "critical"


class EscalationConfig(BaseModel):
    """Reminders: an open, unacknowledged alert is raised one severity step and notified again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_minutes: dict[Audience, float] = Field(default_factory=lambda: dict(ESCALATE_MINUTES))
    max_reminders: int = Field(default=3, ge=0, description="stop reminding after this many")

    @field_validator("after_minutes")
    @classmethod
    def _complete(cls, value: dict[Audience, float]) -> dict[Audience, float]:
        if any(v <= 0 for v in value.values()):
            raise ValueError("minutes must be positive")
        return {**ESCALATE_MINUTES, **value}


def _default_quiet_windows() -> dict[Audience, Window]:
    return {"street": Window(start=time(20, 0), end=time(7, 0))}


class QuietHoursConfig(BaseModel):
    """Hours in which an audience is not sent non-critical alerts by MQTT or webhook (nobody is on shift to act).

    Alerts are still raised, stored and shown on the live pages; escalation waits. When the quiet hours end,
    every alert still open and unacknowledged that was raised during them is sent as one ``reminder``.
    Critical alerts always go out at once.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: dict[Audience, Window] = Field(
        default_factory=lambda: _default_quiet_windows(),
        description="audience -> local-time window; care has none by default: a care alert is never held",
    )
    timezone: str = "Europe/London"


SECTIONS: dict[str, type[_Section]] = {
    "watering": WateringRule,
    "over_watered": OverWateredRule,
    "daqi": DaqiRule,
    "offline": OfflineRule,
    "reporting": ReportingRule,
    "battery": BatteryRule,
    "sensor_fault": SensorFaultRule,
    "wake": WakeRule,
    "inactivity": InactivityRule,
    "night_door": NightDoorRule,
    "bathroom_stay": BathroomStayRule,
    "bathroom_visits": BathroomVisitsRule,
    "cold_home": ColdHomeRule,
    "kitchen": KitchenRule,
    "help_button": HelpButtonRule,
}
# The alert rule names each section raises (used to find a rule's escalation time).
RULE_SECTION: dict[str, str] = {
    "needs_water": "watering",
    "over_watered": "over_watered",
    "daqi": "daqi",
    "device_offline": "offline",
    "low_battery": "battery",
    "sensor_fault": "sensor_fault",
    "not_up": "wake",
    "inactivity": "inactivity",
    "night_door": "night_door",
    "bathroom_stay": "bathroom_stay",
    "bathroom_visits": "bathroom_visits",
    "cold_home": "cold_home",
    "no_kitchen_use": "kitchen",
    "reduced_kitchen_use": "kitchen",
    "help_button": "help_button",
}

S = TypeVar("S", bound=_Section)


class RulesConfig(BaseModel):
    """The whole rules file. ``RulesConfig()`` is the built-in defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    watering: WateringRule = Field(default_factory=WateringRule)
    over_watered: OverWateredRule = Field(default_factory=OverWateredRule)
    daqi: DaqiRule = Field(default_factory=DaqiRule)
    offline: OfflineRule = Field(default_factory=OfflineRule)
    reporting: ReportingRule = Field(default_factory=ReportingRule)
    battery: BatteryRule = Field(default_factory=BatteryRule)
    sensor_fault: SensorFaultRule = Field(default_factory=SensorFaultRule)
    wake: WakeRule = Field(default_factory=WakeRule)
    inactivity: InactivityRule = Field(default_factory=InactivityRule)
    night_door: NightDoorRule = Field(default_factory=NightDoorRule)
    bathroom_stay: BathroomStayRule = Field(default_factory=BathroomStayRule)
    bathroom_visits: BathroomVisitsRule = Field(default_factory=BathroomVisitsRule)
    cold_home: ColdHomeRule = Field(default_factory=ColdHomeRule)
    kitchen: KitchenRule = Field(default_factory=KitchenRule)
    help_button: HelpButtonRule = Field(default_factory=HelpButtonRule)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    quiet_hours: QuietHoursConfig = Field(default_factory=QuietHoursConfig)
    notifications: NotificationsConfig = Field(
        default_factory=NotificationsConfig, description="people, on-call rotas and chats (rules.rota)"
    )
    subjects: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict, description="subject id -> section -> overridden fields"
    )

    @model_validator(mode="after")
    def _check_subjects(self) -> RulesConfig:
        for subject, sections in self.subjects.items():
            for name, fields in sections.items():
                _merge(self, name, fields, f"subjects.{subject}.{name}")
        return self

    def section(self, cls: type[S], subject: str | None = None, device_rules: dict[str, Any] | None = None) -> S:
        """The settings of one rule type for ``subject`` (and a device's own ``rules:``), merged and validated."""
        name = _section_name(cls)
        base: _Section = getattr(self, name)
        subject_fields = self.subjects.get(subject or "", {}).get(name)
        device_fields = (device_rules or {}).get(name)
        if not subject_fields and not device_fields:
            return base  # type: ignore[return-value]
        merged = _merge(self, name, {**(subject_fields or {}), **(device_fields or {})}, name)
        assert isinstance(merged, cls)
        return merged

    def escalation_after_ms(self, rule: str, audience: str, subject: str) -> int | None:
        """How long an alert of ``rule`` may stay unacknowledged before a reminder; ``None``: never."""
        section_name = RULE_SECTION.get(rule)
        if section_name is not None:
            section = self.section(SECTIONS[section_name], subject)
            if section.escalate_after_minutes is not None:
                return int(section.escalate_after_minutes * 60_000)
        minutes = self.escalation.after_minutes.get(audience)  # type: ignore[call-overload]
        return None if minutes is None else int(minutes * 60_000)

    def check_registry(self, registry: Registry) -> None:
        """Validate every device's ``rules:`` overrides now, so a typo fails at start, naming the device."""
        problems: list[str] = []
        for device in registry.devices.values():
            for name, fields in device.rules.items():
                try:
                    if not isinstance(fields, dict):
                        raise ConfigError(f"{name}: expected a mapping of settings")
                    _merge(self, name, fields, name)
                except (ConfigError, ValueError) as exc:
                    problems.append(f"device {device.id!r} rules.{exc}")
        if problems:
            raise ConfigError("invalid rules overrides in the device registry:\n  " + "\n  ".join(problems))


def _section_name(cls: type[_Section]) -> str:
    for name, section_cls in SECTIONS.items():
        if section_cls is cls:
            return name
    raise KeyError(cls.__name__)


def _merge(config: RulesConfig, name: str, fields: dict[str, Any], where: str) -> _Section:
    cls = SECTIONS.get(name)
    if cls is None:
        raise ValueError(f"{where}: unknown rule {name!r}; known: {', '.join(sorted(SECTIONS))}")
    base: _Section = getattr(config, name)
    try:
        return cls.model_validate({**base.model_dump(), **fields})
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ValueError(f"{where}: {details}") from exc


def load_rules(path: Path | None) -> RulesConfig:
    """Read and validate the rules file; ``None`` gives the built-in defaults. Errors say what and where."""
    if path is None:
        return RulesConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the rules file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of rule sections")
    return rules_from_data(data, source=str(path))


def rules_from_data(data: dict[str, Any], source: str = "rules") -> RulesConfig:
    """Validate an already-parsed rules mapping (for tests and for settings embedded elsewhere)."""
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors()]
        raise ConfigError(f"invalid rules in {source}:\n  " + "\n  ".join(problems)) from exc


def _describe(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


class SectionLookup:
    """Memoised ``RulesConfig.section`` look-ups, so a rule on the hot path does not re-validate overrides."""

    def __init__(self, config: RulesConfig) -> None:
        self.config = config
        self._cache: dict[tuple[type[_Section], str | None, str | None], _Section] = {}

    def get(self, cls: type[S], subject: str | None = None, device: DeviceSpec | None = None) -> S:
        # Called several times per reading: one dict look-up, no validation, on the way through. A device without
        # its own ``rules:`` shares its subject's entry (one entry a device was ~300 bytes a device of a fleet).
        key = (cls, subject, device.id if device is not None and device.rules else None)
        try:
            return self._cache[key]  # type: ignore[return-value]
        except KeyError:
            found = self.config.section(cls, subject, device.rules if device is not None else None)
            self._cache[key] = found
            return found
