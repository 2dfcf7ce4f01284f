"""Device health: offline devices, low batteries and broken soil/air sensors (stuck values, impossible jumps).

A device is offline when it has sent nothing for max(the domain's minimum, ``interval_factor`` × its usual
interval). The usual interval is the one the rules declare for the device or its subject
(``reporting.interval_minutes``: an AURN station publishes hourly), else the median gap between its recent
messages (the longest gap so far while fewer than five are known), so a device reporting hourly is not called
offline between two of its readings. Batteries warn below 20 % and
turn critical below 10 %; only a battery above 25 % (a new one) clears, since a draining battery's reading
wobbles around a threshold. A sensor is broken when a metric repeats exactly the same value for hours or moves
further between two readings than real soil or air can.

Findings are per subject (home, flowerbed, air site): one alert lists every affected device of that subject, so
"one open alert per (rule, subject)" still tells the reader which device to look at. Home devices go to the
care team; soil and air devices to street teams. This module must not touch alerts or storage.
"""

from __future__ import annotations

import statistics
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from zoneinfo import ZoneInfo

from devices.readings import DOMAINS, Domain, Reading
from devices.registry import DeviceSpec, Registry
from placesense.basics.findings import Audience, Finding, Severity
from placesense.basics.localtime import duration, hm, zone
from placesense.basics.memory import keep_last
from placesense.basics.texts import Text, text
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS
from rules.config import BatteryRule, FaultKind, OfflineRule, ReportingRule, SectionLookup, SensorFaultRule
from rules.timers import Timers

HOME_UNMONITORED = "home_unmonitored"  # placesense.health reads these ops alerts: homes it cannot see

SEVERITY_RANK: dict[Severity, int] = {"info": 0, "warning": 1, "critical": 2}
GAPS_KEPT = 25  # the usual interval is the median of this many recent gaps between messages
WATCHED_FOR_FAULTS: dict[str, tuple[str, ...]] = {
    "climate": ("temperature_c", "humidity_pct"),
    "soil": ("soil_moisture_pct",),
    "air": ("pm2_5_ugm3", "pm10_ugm3", "no2_ugm3", "o3_ugm3"),
}
# metric -> its keys in ``_Device.faults`` (built once: this runs for every soil, air and climate reading)
FAULT_KEYS = {
    metric: (f"{metric}:jump", f"{metric}:stuck") for metrics in WATCHED_FOR_FAULTS.values() for metric in metrics
}
METRIC_WORDS = {
    "soil_moisture_pct": "% soil moisture",
    "temperature_c": "°C",
    "humidity_pct": "% humidity",
    "pm2_5_ugm3": "µg/m³ PM2.5",
    "pm10_ugm3": "µg/m³ PM10",
    "no2_ugm3": "µg/m³ NO2",
    "o3_ugm3": "µg/m³ O3",
}


def audience_of(device: DeviceSpec) -> Audience:
    return "care" if device.domain == "home" else "street"


def describe(device: DeviceSpec) -> str:
    """'kitchen motion sensor (m-12)': what a carer or operative would call the device."""
    return describe_text(device).english


def describe_text(device: DeviceSpec) -> Text:
    """``describe`` as a template, so it reads in Welsh too (the words are ``placesense.basics.texts.DEVICES``)."""
    if device.room:
        return text("device_in_room", room=device.room, kind=device.kind, id=device.id)
    return text("device", kind=device.kind, id=device.id)


def _english(words: str | Text) -> str:
    return words.english if isinstance(words, Text) else words


@dataclass(frozen=True, slots=True)
class _DeviceRules:
    """One device's health settings, resolved once: the rules config cannot change after load, and looking the
    sections up on every reading was a good part of the rule engine's per-reading cost."""

    offline: OfflineRule
    battery: BatteryRule
    faults: SensorFaultRule
    watched: FaultKind | None
    offline_floor_ms: int
    declared_interval_ms: int | None  # the reporting interval the rules declare, if any
    long_gap_ms: float  # a usual interval above this makes the offline time longer than the floor
    stuck_ms: int | None  # None when no fault checks apply


# Slots on the per-device state: every device in the registry has one from start-up.
@dataclass(slots=True)
class _Metric:
    value: float | None = None
    since_ms: int = 0
    repeats: int = 0
    last_ms: int = 0
    low_since_ms: int | None = None  # soil: below the floor since (a dead probe)
    last_low_ms: int | None = None


@dataclass(slots=True)
class _Device:
    rules: _DeviceRules
    last_ms: int | None = None
    # The latest ``GAPS_KEPT`` gaps in ms, oldest first: a flat array is 8 bytes a gap, a deque of ints ~40
    # and 760 more for the deque itself.
    gaps: array[int] = field(default_factory=lambda: array("q"))
    long_gaps: int = 0  # how many of ``gaps`` are above ``rules.long_gap_ms``
    offline_since: int | None = None
    battery_level: Severity | None = None
    battery_pct: float | None = None
    metrics: dict[str, _Metric] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)  # metric -> plain reason
    last_jump_ms: int | None = None


_DEVICE_FIELDS = frozenset(spec.name for spec in fields(_Device)) - {"rules"}


@dataclass(slots=True)
class _SubjectView:
    """What was last reported for (rule, subject), so a finding goes out only when it changes."""

    reported: dict[str, tuple[Severity, str]] = field(default_factory=dict)


class DeviceHealthRules:
    """Offline, battery and broken-sensor rules for every device in the registry."""

    domains: frozenset[Domain] = frozenset(DOMAINS)

    def __init__(
        self,
        registry: Registry,
        lookup: SectionLookup,
        arrival: Callable[[int, int], int] = lambda event_ms, received_ms: event_ms,
    ) -> None:
        self._registry = registry
        self._lookup = lookup
        # When a reading was heard, on the engine's clock (receive time on the wall clock, event time on an
        # event clock): silence is measured from that, not from the device's own timestamp.
        self._arrival = arrival
        self._devices: dict[str, _Device] = {d: _Device(self._resolve(spec)) for d, spec in registry.devices.items()}
        # (subject, domain) -> its devices in registry order: the devices one finding lists.
        self._subjects: dict[tuple[str, str], list[DeviceSpec]] = {}
        for spec in registry.devices.values():
            self._subjects.setdefault((spec.subject, spec.domain), []).append(spec)
        self._timers: Timers[str] = Timers()
        self._views: dict[tuple[str, str], _SubjectView] = {}
        self._registry_subjects = {spec.subject for spec in registry.devices.values()}

    def _resolve(self, spec: DeviceSpec) -> _DeviceRules:
        offline = self._lookup.get(OfflineRule, spec.subject, spec)
        faults = self._lookup.get(SensorFaultRule, spec.subject, spec)
        watched = self._watched(spec)
        floor_ms = int(offline.after_minutes[spec.domain] * MINUTE_MS)
        declared = self._lookup.get(ReportingRule, spec.subject, spec).interval_minutes
        return _DeviceRules(
            offline=offline,
            battery=self._lookup.get(BatteryRule, spec.subject, spec),
            faults=faults,
            watched=watched,
            offline_floor_ms=floor_ms,
            declared_interval_ms=None if declared is None else int(declared * MINUTE_MS),
            long_gap_ms=floor_ms / offline.interval_factor,
            stuck_ms=None if watched is None else int(faults.stuck_hours[watched] * HOUR_MS),
        )

    # -- saved state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Each device's last heard time, gaps, battery and fault state, what was last reported per subject, and
        the offline deadlines (``placesense.evaluation_state``); the rules config is resolved again on start."""
        devices = {
            device_id: {spec.name: getattr(state, spec.name) for spec in fields(state) if spec.name != "rules"}
            for device_id, state in self._devices.items()
        }
        return {"devices": devices, "views": self._views, "timers": self._timers.deadlines()}

    def restore(self, state: Mapping[str, Any]) -> None:
        for device_id, kept in state["devices"].items():
            current = self._devices.get(device_id)
            if current is None:
                continue
            for name, value in kept.items():
                if name in _DEVICE_FIELDS:
                    setattr(current, name, value)
            current.long_gaps = sum(gap > current.rules.long_gap_ms for gap in current.gaps)
        self._views.update({key: view for key, view in state["views"].items() if key[1] in self._registry_subjects})
        self._timers.restore([(key, due) for key, due in state["timers"] if key in self._devices])

    def forget(self, subject: str) -> None:
        """Drop what is kept about one subject's devices, to save the state without it (erasure, serve stopped)."""
        for spec in self._registry.devices.values():
            if spec.subject == subject:
                self._devices.pop(spec.id, None)
                self._timers.cancel(spec.id)
        for key in [key for key in self._views if key[1] == subject]:
            del self._views[key]

    def start(self, now_ms: int) -> None:
        # A device that never reports at all must still be noticed: count its silence from start-up. (A saved
        # state's deadlines stand: a device silent since before a restart is reported offline on time.)
        for device_id in self._registry.devices:
            state = self._devices[device_id]
            if state.last_ms is None and state.rules.offline.enabled and self._timers.get(device_id) is None:
                self._timers.set(device_id, now_ms + self._offline_after_ms(state))

    # -- offline -------------------------------------------------------------------------------------

    @staticmethod
    def _add_gap(state: _Device, gap_ms: int) -> None:
        gaps, long_ms = state.gaps, state.rules.long_gap_ms
        if len(gaps) == GAPS_KEPT:  # the oldest is about to go
            state.long_gaps -= gaps[0] > long_ms
        keep_last(gaps, gap_ms, GAPS_KEPT)
        state.long_gaps += gap_ms > long_ms

    @staticmethod
    def _offline_after_ms(state: _Device) -> int:
        rules = state.rules
        floor_ms = rules.offline_floor_ms
        factor = rules.offline.interval_factor
        if rules.declared_interval_ms is not None:
            return max(floor_ms, int(factor * rules.declared_interval_ms))
        gaps = state.gaps
        if len(gaps) < 5:
            # Too few gaps for a median: the longest one seen keeps a slow reporter from looking offline
            # between its first readings (an hourly device against a 60-minute floor).
            return max(floor_ms, int(factor * max(gaps))) if state.long_gaps else floor_ms
        # The median is above ``long_gap_ms`` only when more than half the gaps are: until then the floor wins,
        # without sorting the gaps (this runs on every reading).
        if state.long_gaps > (len(gaps) - 1) // 2:
            return max(floor_ms, int(factor * statistics.median(gaps)))
        return floor_ms

    def on_time(self, now_ms: int) -> list[Finding]:
        findings: list[Finding] = []
        for due_ms, device_id in self._timers.pop_due(now_ms):
            spec = self._registry.devices[device_id]
            state = self._devices[device_id]
            state.offline_since = state.last_ms if state.last_ms is not None else due_ms
            findings += self._report_offline(spec, due_ms)
        return findings

    def _report_offline(self, spec: DeviceSpec, at_ms: int) -> list[Finding]:
        cfg = self._devices[spec.id].rules.offline
        tz = zone(self._tz_name(spec))
        reasons: dict[str, tuple[Severity, str | Text]] = {}
        for other in self._subject_devices(spec):
            state = self._devices[other.id]
            if state.offline_since is None:
                continue
            usual = (
                text("device_offline.usual", every=int(statistics.median(state.gaps)))
                if len(state.gaps) >= 5
                else text("empty")
            )
            if state.last_ms is None:
                words = text("device_offline.never", device=describe_text(other), usual=usual)
            else:
                words = text("device_offline", device=describe_text(other), time=hm(state.last_ms, tz),
                             gap=at_ms - state.last_ms, usual=usual)
            reasons[other.id] = (cfg.severity, words)
        findings = self._report("device_offline", spec, at_ms, reasons, text("device_offline.cleared"))
        if spec.domain == "home":
            findings += self._home_monitoring(spec, at_ms, tz)
        return findings

    def _home_monitoring(self, spec: DeviceSpec, at_ms: int, tz: ZoneInfo) -> list[Finding]:
        """Every sensor of a home silent: placesense cannot see her at all, which is an ops matter (the hub, the
        internet link, the power) and the reason every care alert of that home may not come."""
        devices = [d for d in self._subject_devices(spec) if self._devices[d.id].rules.offline.enabled]
        silent = [self._devices[d.id] for d in devices if self._devices[d.id].offline_since is not None]
        view = self._views.setdefault((HOME_UNMONITORED, spec.subject), _SubjectView())
        blind = bool(devices) and len(silent) == len(devices)
        if blind == bool(view.reported):
            return []
        if blind:
            last = max((s.last_ms for s in silent if s.last_ms is not None), default=None)
            heard = (
                text("home_unmonitored.since", time=hm(last, tz)) if last is not None
                else text("home_unmonitored.since_start")
            )
            view.reported = {"*": ("critical", heard.english)}
            words = text("home_unmonitored", home=spec.subject, heard=heard, devices=len(devices))
            return [Finding(HOME_UNMONITORED, "ops", spec.subject, "critical", words.english, at_ms, True,
                            {"devices": len(devices), "last_heard_ms": last}, spec.id, text=words)]
        view.reported = {}
        words = text("home_unmonitored.cleared", home=spec.subject, time=hm(at_ms, tz))
        return [Finding(HOME_UNMONITORED, "ops", spec.subject, "info", words.english, at_ms, False, {}, spec.id,
                        text=words)]

    # -- readings ------------------------------------------------------------------------------------

    def on_reading(self, reading: Reading, device: DeviceSpec) -> list[Finding]:
        state = self._devices.get(device.id)
        if state is None:
            state = self._devices[device.id] = _Device(self._resolve(device))
        rules = state.rules
        findings: list[Finding] = []
        heard_ms = self._arrival(reading.ts_ms, reading.received_ms)
        if state.last_ms is not None and heard_ms > state.last_ms:
            self._add_gap(state, heard_ms - state.last_ms)
        state.last_ms = max(state.last_ms or heard_ms, heard_ms)
        if rules.offline.enabled:
            self._timers.set(device.id, state.last_ms + self._offline_after_ms(state))
            if state.offline_since is not None:
                state.offline_since = None
                findings += self._report_offline(device, reading.ts_ms)
        if reading.battery_pct is not None:
            findings += self._battery(reading, device, state)
        if rules.watched is not None:
            findings += self._faults(reading, device, state)
        return findings

    def _battery(self, reading: Reading, device: DeviceSpec, state: _Device) -> list[Finding]:
        cfg = state.rules.battery
        if not cfg.enabled or reading.battery_pct is None:
            return []
        pct = reading.battery_pct
        state.battery_pct = pct
        level: Severity | None = state.battery_level
        if pct < cfg.critical_below_pct:
            level = "critical"
        elif pct < cfg.warning_below_pct and level != "critical":
            level = "warning"
        elif pct > cfg.clear_above_pct:
            level = None
        if level == state.battery_level:
            return []
        state.battery_level = level
        reasons: dict[str, tuple[Severity, str | Text]] = {}
        for other in self._subject_devices(device):
            other_state = self._devices[other.id]
            if other_state.battery_level is not None and other_state.battery_pct is not None:
                urgency = text("low_battery.now" if other_state.battery_level == "critical" else "low_battery.soon")
                reasons[other.id] = (
                    other_state.battery_level,
                    text("low_battery", device=describe_text(other), pct=other_state.battery_pct, urgency=urgency),
                )
        return self._report("low_battery", device, reading.ts_ms, reasons, text("low_battery.cleared"))

    def _faults(self, reading: Reading, device: DeviceSpec, state: _Device) -> list[Finding]:
        rules = state.rules
        cfg = rules.faults
        stuck_ms, watched = rules.stuck_ms, rules.watched
        if not cfg.enabled or stuck_ms is None or watched is None:
            return []
        ts_ms = reading.ts_ms
        faults = state.faults
        # A finding goes out when a fault starts or ends (not when its wording changes). Each key is set or removed
        # at most once below, so a flag tells that without copying the faults on every reading.
        started_or_ended = False
        for metric in WATCHED_FOR_FAULTS[watched]:
            value = reading.metrics.get(metric)
            if value is None:
                continue
            track = state.metrics.get(metric)
            if track is None:
                track = state.metrics[metric] = _Metric()
            jump_key, stuck_key = FAULT_KEYS[metric]
            if track.value is not None and ts_ms - track.last_ms <= HOUR_MS:
                change = value - track.value
                jump_limit = cfg.max_jump.get(metric)
                soil_drop = device.domain == "soil" and (
                    -change > cfg.max_drop_soil_pct
                    or (-change >= 5.0 and -change >= cfg.max_drop_soil_share * track.value)
                )
                if soil_drop or (jump_limit is not None and abs(change) > jump_limit):
                    state.last_jump_ms = ts_ms
                    started_or_ended = started_or_ended or jump_key not in faults
                    faults[jump_key] = (
                        f"{describe(device)} jumped from {track.value:g} to {value:g} in "
                        f"{duration(ts_ms - track.last_ms)}, which is not physically possible"
                    )
            if track.value is not None and value == track.value:
                track.repeats += 1
            else:
                track.value, track.since_ms, track.repeats = value, ts_ms, 1
            track.last_ms = ts_ms
            stuck = (
                track.repeats >= cfg.stuck_min_readings
                and ts_ms - track.since_ms >= stuck_ms
                and not (cfg.stuck_ignore_zero and value == 0)
            )
            if stuck:
                started_or_ended = started_or_ended or stuck_key not in faults
                faults[stuck_key] = (
                    f"{describe(device)} has read exactly {value:g} {METRIC_WORDS.get(metric, metric)} for "
                    f"{duration(ts_ms - track.since_ms)}: probably stuck"
                )
            elif faults.pop(stuck_key, None) is not None:
                started_or_ended = True
            if device.domain == "soil":
                started_or_ended = self._soil_floor(device, cfg, track, ts_ms, value, faults) or started_or_ended
        # A jump recorded just now is never cleared here: clear_after_hours is above zero.
        if state.last_jump_ms is not None and ts_ms - state.last_jump_ms >= cfg.clear_after_hours * HOUR_MS:
            state.last_jump_ms = None
            for key in [k for k in faults if k.endswith(":jump")]:
                del faults[key]
                started_or_ended = True
        if not started_or_ended:
            return []
        # Fault texts are kept as words in the rules' saved state: English only for now (docs/welsh.md).
        reasons: dict[str, tuple[Severity, str | Text]] = {
            f"{other.id}:{key}": (cfg.severity, words)
            for other in self._subject_devices(device)
            for key, words in sorted(self._devices[other.id].faults.items())
        }
        return self._report("sensor_fault", device, ts_ms, reasons, text("sensor_fault.cleared"))

    @staticmethod
    def _soil_floor(
        device: DeviceSpec, cfg: SensorFaultRule, track: _Metric, ts_ms: int, value: float, faults: dict[str, str]
    ) -> bool:
        """A probe reading below ``soil_floor_pct`` for hours is dead or out of the soil (no planted bed is that
        dry); the fault ends after ``clear_after_hours`` without such a reading. True when it started or ended."""
        key = "soil_moisture_pct:floor"
        if value < cfg.soil_floor_pct:
            track.low_since_ms = ts_ms if track.low_since_ms is None else track.low_since_ms
            track.last_low_ms = ts_ms
            if key not in faults and ts_ms - track.low_since_ms >= cfg.soil_floor_hours * HOUR_MS:
                faults[key] = (
                    f"{describe(device)} has read below {cfg.soil_floor_pct:g} % soil moisture since "
                    f"{hm(track.low_since_ms, zone())}: the probe is probably dead or out of the soil"
                )
                return True
            return False
        if track.last_low_ms is not None and ts_ms - track.last_low_ms >= cfg.clear_after_hours * HOUR_MS:
            track.low_since_ms = track.last_low_ms = None
            return faults.pop(key, None) is not None
        if key not in faults:
            track.low_since_ms = None  # an ordinary reading between two low ones restarts the count
        return False

    @staticmethod
    def _watched(device: DeviceSpec) -> FaultKind | None:
        """Which fault checks apply: soil and air sensors, and a home's temperature sensors."""
        if device.domain in ("soil", "air"):
            return device.domain
        return "climate" if device.kind == "climate" else None

    # -- shared --------------------------------------------------------------------------------------

    def _subject_devices(self, device: DeviceSpec) -> list[DeviceSpec]:
        return self._subjects.get((device.subject, device.domain), [])

    def _tz_name(self, device: DeviceSpec) -> str:
        home = self._registry.homes.get(device.subject) if device.domain == "home" else None
        return home.timezone if home is not None else "Europe/London"

    def _report(
        self,
        rule: str,
        device: DeviceSpec,
        at_ms: int,
        reasons: dict[str, tuple[Severity, str | Text]],
        cleared_words: Text,
    ) -> list[Finding]:
        view = self._views.setdefault((rule, device.subject), _SubjectView())
        english = {key: (severity, _english(words)) for key, (severity, words) in reasons.items()}
        if english == view.reported:
            return []
        had_any = bool(view.reported)
        view.reported = english
        evidence: dict[str, float | int | str | None] = {"devices": ", ".join(sorted(reasons)) or None}
        if device.domain != "home":
            evidence["device_count"] = len(reasons)
        if not reasons:
            if not had_any:
                return []
            return [
                Finding(
                    rule, audience_of(device), device.subject, "info", cleared_words.english, at_ms, False, evidence,
                    device.id, text=cleared_words,
                )
            ]
        severity: Severity = max((s for s, _ in reasons.values()), key=lambda s: SEVERITY_RANK[s])
        message = "; ".join(words for _, words in english.values()) + "."
        message = message[0].upper() + message[1:]
        clauses = [words for _, words in reasons.values() if isinstance(words, Text)]
        # In every language only when every clause has a template; otherwise English alone.
        words = text("device_health", reasons=clauses) if len(clauses) == len(reasons) else None
        return [Finding(rule, audience_of(device), device.subject, severity, message, at_ms, True, evidence, device.id,
                        text=words)]
