"""The evaluation core: the rule engine, the routine detector and the sensor detectors, built from one spec.

``EvaluationCore`` is what the evaluation process runs and what replays run in-process: the same objects, fed
the same readings, give the same findings. It must not talk to MQTT, InfluxDB or the alert store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from devices.readings import Reading
from devices.registry import DeviceSpec, Registry
from placesense import evaluation_state, statecodec
from placesense.basics.clock import EventClock, make_clock
from placesense.basics.errors import PlacesenseError, StorageError
from placesense.basics.term import Term
from placesense.statecodec import StateCodecError

if TYPE_CHECKING:
    from placesense.storage.influx import InfluxConfig
from rules.config import RulesConfig

if TYPE_CHECKING:
    from placesense.basics.findings import Finding
    from rules.daqi import SiteAirQuality
    from rules.watering import WateringNeed
    from rules.watering_thresholds import ThresholdSuggestion

log = logging.getLogger("placesense.evaluation")


@dataclass(frozen=True)
class EvaluationSpec:
    """What the child needs to build the rules and detectors: the same inputs the composition root has."""

    registry: Registry
    rules: RulesConfig
    clock: str
    state_dir: Path
    log_level: int
    # Where to read recent history back from when a part of the saved state is missing (DAQI windows); None in
    # replays and tools, which start from nothing on purpose.
    influx: InfluxConfig | None = None
    # With active/standby instances, this instance's term of the lease: the state is then kept in the shared
    # database (fenced by the term) instead of a file in ``state_dir`` (docs/scaling.md).
    term: Term | None = None


class EvaluationCore:
    """The rules and detectors behind one event or live clock: readings in, findings out.

    The evaluation process drives one from its loop (one thread: no lock is ever contended); replays and
    evaluations (``placesense evaluate``) drive one directly, so they judge exactly what serve judges.
    ``restore`` takes back the state ``save`` wrote (``placesense.evaluation_state``), part by part.
    """

    def __init__(self, spec: EvaluationSpec) -> None:
        from anomaly.routine import RoutineDetector
        from anomaly.sensors import SensorDetectors
        from rules.engine import RuleEngine

        self.spec = spec
        self.clock = make_clock(spec.clock)
        self.event_clock = isinstance(self.clock, EventClock)
        self.state_dir = spec.state_dir
        self.store = _store(spec)
        self.registry = spec.registry
        self.rules = RuleEngine(spec.registry, spec.rules, self.clock)
        self.routine = RoutineDetector(spec.registry, self.clock)
        self.sensors = SensorDetectors(spec.registry, self.clock)
        self._share_presence()
        self.applied_seq = 0  # the last journal batch applied to this state
        self._awaiting_resume = False  # restored: the first new reading (event clock) marks the restart's time
        self.saved_bytes = 0

    def _share_presence(self) -> None:
        """One presence per home: the care rules observe each reading, the routine detector reads what they saw
        (``rules.presence``). Again after any part is rebuilt or restored, so both hold the same objects."""
        self.routine.share_presence(self.rules.home)

    # -- state --------------------------------------------------------------------------------------------------

    def _parts(self) -> dict[str, Stateful]:
        return {
            **self.rules.families(),
            "routine": self.routine,
            "sensors": self.sensors,
        }

    def restore(self) -> list[str]:
        """Take back the saved state, part by part; returns plain lines on what was restored or not (for the
        log). A part that cannot be restored starts fresh; nothing here raises for the file's content."""
        saved = self.store.load()
        notes = list(saved.problems)
        restored: list[str] = []
        for name, part in self._parts().items():
            if name not in saved.parts:
                continue
            try:
                part.restore(saved.parts[name])
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                notes.append(f"saved state part {name!r} does not fit this release ({exc!r}); it starts fresh")
                self._reset_part(name)
            else:
                restored.append(name)
        self._share_presence()
        if "engine" in saved.parts:
            self.rules.restore(saved.parts["engine"])
        if "daqi" not in restored:
            notes += self._rebuild_air(saved.clock_ms)
        if restored:
            self.applied_seq = saved.applied_seq
            if self.event_clock and saved.clock_ms:
                self.clock.observe(saved.clock_ms)
            if self.event_clock:
                self._awaiting_resume = True
            else:
                self.rules.resumed_at_ms = self.clock.now_ms()
            notes.append(f"restored {', '.join(restored)} from {self.store.where} "
                         f"(up to journal batch {saved.applied_seq})")
            if "routine" in restored:
                self.store.retire_legacy()
        return notes

    def add_devices(self, devices: list[DeviceSpec]) -> int:
        """Devices registered while serve runs: the rules and detectors are built again around the grown registry
        and take back their state as it stands (through the state codec, as a restart would), so what was learned
        stays and the new devices are watched from now on. Returns how many were new here."""
        from anomaly.routine import RoutineDetector
        from anomaly.sensors import SensorDetectors
        from rules.engine import RuleEngine

        added = [d for d in devices if d.id not in self.registry.devices]
        if not added:
            return 0
        parts = statecodec.decode(statecodec.encode({name: part.state() for name, part in self._parts().items()}))
        engine, resumed = self.rules.state(), self.rules.resumed_at_ms
        for device in added:
            self.registry.add(device)
        self.rules = RuleEngine(self.registry, self.spec.rules, self.clock)
        self.routine = RoutineDetector(self.registry, self.clock)
        self.sensors = SensorDetectors(self.registry, self.clock)
        self._share_presence()
        for name, part in self._parts().items():
            part.restore(parts[name])
        self._share_presence()
        self.rules.restore(engine)
        self.rules.resumed_at_ms = resumed
        return len(added)

    def _rebuild_air(self, saved_clock_ms: int) -> list[str]:
        """Fill the DAQI running means from the last day InfluxDB holds, when the saved state had none: else the
        wall and street pages show "no data" for up to 24 hours after a restart, although the readings are stored.
        Findings are not raised again for that history; the next reading carries on from it."""

        from placesense.basics.errors import StorageError
        from placesense.storage.influx import InfluxClient
        from placesense.storage.readings import recent_readings
        from rules.daqi import POLLUTANTS

        registry, config = self.registry, self.spec.influx
        if config is None or not registry.air_sites:
            return []
        end_ms = self.clock.now_ms() if not self.event_clock else saved_clock_ms
        if end_ms <= 0:
            return []  # an event clock with no saved time: nothing says which day to rebuild
        hours = max(window for _, window, _ in POLLUTANTS.values())
        client = InfluxClient(config)
        try:
            readings = recent_readings(client, registry, "air", list(POLLUTANTS), end_ms - (hours + 1) * 3_600_000,
                                       end_ms)
        except StorageError as exc:
            return [f"could not rebuild the air-quality windows from InfluxDB ({exc}); bands return as readings "
                    "arrive"]
        finally:
            client.close()
        daqi = self.rules.daqi
        for reading in readings:
            daqi.on_reading(reading, registry.devices[reading.device_id])
        return [f"rebuilt the air-quality windows of {len({r.subject for r in readings})} sites from "
                f"{len(readings)} readings in InfluxDB (the saved state had none)"]

    def _reset_part(self, name: str) -> None:
        from anomaly.routine import RoutineDetector
        from anomaly.sensors import SensorDetectors

        if name == "routine":
            self.routine = RoutineDetector(self.registry, self.clock)
        elif name == "sensors":
            self.sensors = SensorDetectors(self.registry, self.clock)
        else:
            self.rules.reset_family(name)
        self._share_presence()

    def save(self) -> bool:
        """Write the state atomically with the journal position it includes; False (logged) if it failed."""
        parts: dict[str, Any] = {name: part.state() for name, part in self._parts().items()}
        parts["engine"] = self.rules.state()
        try:
            self.saved_bytes = self.store.save(parts, applied_seq=self.applied_seq, clock_ms=self.clock.now_ms())
        except (OSError, StateCodecError, PlacesenseError) as exc:
            log.error("cannot save the evaluation state to %s: %s", self.store.where, exc)
            return False
        return True

    def forget(self, subject: str) -> None:
        """Drop everything kept about one home, bed or site (erasure)."""
        devices = [d.id for d in self.registry.devices.values() if d.subject == subject]
        for part in self.rules.families().values():
            part.forget(subject)
        self.routine.forget(subject)
        self.sensors.forget(devices)

    # -- evaluation ---------------------------------------------------------------------------------------------

    def readings(self, rows: list[Any], *, replay: bool = False) -> list[Finding]:
        """Evaluate readings (``Reading`` field tuples or lists). ``replay``: they were stored before this state
        was restored (from the journal), so they say nothing about when placesense came back."""
        findings: list[Finding] = []
        rules, routine, sensors, observe = self.rules, self.routine, self.sensors, self.clock.observe
        if self._awaiting_resume and not replay and rows:
            self._awaiting_resume = False
            self.rules.resumed_at_ms = max(self.clock.now_ms(), min(int(row[4]) for row in rows))
        for row in rows:
            reading = Reading(*row)
            observe(reading.ts_ms)
            if reading.domain == "home":
                # Both sides' timers first, while the shared presence still shows the home as it was; then the
                # rules observe the reading and the detector reads what they saw.
                findings.extend(rules.advance(reading))
                findings.extend(routine.advance(reading))
                findings.extend(rules.take(reading))
                findings.extend(routine.take(reading))
            else:
                findings.extend(rules.process(reading))
            findings.extend(sensors.process(reading))
        return findings

    def tick(self) -> list[Finding]:
        now = self.clock.now_ms()
        return [*self.rules.tick(now), *self.routine.tick(now)]

    # what the API asks

    def watering_list(self, now_ms: int | None) -> list[WateringNeed]:
        return self.rules.watering_list(now_ms)

    def air_quality(self) -> list[SiteAirQuality]:
        return self.rules.air_quality()

    def threshold_suggestions(self, now_ms: int | None) -> list[ThresholdSuggestion]:
        return self.rules.threshold_suggestions(now_ms)

    def mark_watered(self, bed_id: str, at_ms: int | None) -> list[Finding]:
        """An operative watered a bed (``POST /flowerbeds/{bed}/watered``): the findings that clear its alert."""
        return self.rules.mark_watered(bed_id, at_ms)

    def routine_today(self, home_id: str) -> dict[str, Any]:
        return self.routine.routine_today(home_id)


def _store(spec: EvaluationSpec) -> evaluation_state.StateStore:
    if spec.term is None:
        return evaluation_state.FileStore(spec.state_dir)
    from placesense.basics.db import make_engine
    from placesense.evaluation_state_db import DatabaseStore

    return DatabaseStore(make_engine(spec.term.url), spec.term)


class Stateful(Protocol):
    """A part of the evaluation whose state is saved: plain objects out, the same objects back in."""

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...


# what the API may ask of a core, by name
CALLS = frozenset({"watering_list", "air_quality", "routine_today", "mark_watered", "threshold_suggestions"})
# the calls that change learned state: the process saves its state right after answering one, so what a person
# told placesense survives a restart (it is not in the journal that replays readings)
CHANGING_CALLS = frozenset({"mark_watered"})


# -- erasure and subject access (placesense privacy; serve must be stopped: the state folder's lock) ----------


def erase_saved_subject(state_dir: Path, registry: Registry, subject: str) -> dict[str, int | bool]:
    """Remove one home (bed, site) from the saved evaluation state and from the journal's waiting readings."""
    from ingest.journal import erase_subject

    core = EvaluationCore(EvaluationSpec(registry, RulesConfig(), "event", state_dir, logging.WARNING))
    saved = evaluation_state.exists(state_dir)
    if saved:
        core.restore()
        had_routine = subject in core.routine.homes()
        core.forget(subject)
        if not core.save():
            raise StorageError(f"could not write the evaluation state in {state_dir} without {subject}")
    else:
        had_routine = False
    journal = state_dir / "journal"
    return {
        "saved_state": saved,
        "learned_routine": had_routine,
        "journal_readings": erase_subject(journal, subject) if journal.is_dir() else 0,
    }


def export_saved_subject(state_dir: Path, registry: Registry, subject: str) -> dict[str, Any] | None:
    """What the saved evaluation state holds about one home: its routine against what was learned, and the
    rules' and detectors' own records of it, as JSON-ready data; None when nothing is saved for it."""
    from anomaly.routine import RoutineDetector
    from placesense.basics.clock import LiveClock
    from placesense.statecodec import encode

    saved = evaluation_state.load(state_dir)
    ids = {subject} | {d.id for d in registry.devices.values() if d.subject == subject}
    held = {name: encode(picked) for name, picked in subject_state(saved.parts, ids).items()}
    if not held:
        return None
    routine_today = None
    if subject in saved.parts.get("routine", {}).get("homes", {}):
        detector = RoutineDetector(registry, LiveClock())
        detector.restore(saved.parts["routine"])
        routine_today = detector.routine_today(subject)
    return {"routine_today": routine_today, "saved_state": held}


def subject_state(parts: Mapping[str, Any], ids: set[str]) -> dict[str, Any]:
    """Of each part's state, what belongs to one subject (its id and its devices' ``ids``), part by part."""
    held: dict[str, Any] = {}
    for name, state in parts.items():
        picked = {key: _about(value, ids) for key, value in state.items()} if isinstance(state, dict) else {}
        picked = {key: value for key, value in picked.items() if value}
        if picked:
            held[name] = picked
    return held


def _about(value: Any, ids: set[str]) -> Any:
    """The entries of a part's collection that belong to one of ``ids``: keyed by it, or a deadline naming it."""
    def names(key: Any) -> bool:
        return key in ids or (isinstance(key, tuple) and any(part in ids for part in key))

    if isinstance(value, dict):
        return {key: item for key, item in value.items() if names(key)}
    if isinstance(value, list):
        return [item for item in value if isinstance(item, tuple) and item and names(item[0])]
    return None
