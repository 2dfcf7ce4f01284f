"""The rule engine: every stored ``Reading`` goes through ``process``; a timer calls ``tick``.

It routes each reading to the rule families (home care, watering, DAQI, device health) and fires their timers.
Time comes from the clock: with the live clock, ``tick`` (called by the service's timer) fires absence-of-events
rules as wall time passes; with the event clock, ``process`` first moves the clock to the reading's time and
fires every timer due up to then — before applying the reading — so a replay gives the same findings at the
same simulated times on every run. Findings produced by a timer carry the timer's due time, not the time
it was noticed.

The engine is thread-safe (ingest and the timer call it from different threads). It must not store alerts,
publish anything or read settings: the composition root passes the registry, the rules config and the clock,
and hands the findings to ``AlertService.apply``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from operator import attrgetter
from typing import Any, Protocol

from devices.readings import DOMAINS, Domain, Reading
from devices.registry import DeviceSpec, Registry
from placesense.basics.clock import Clock
from placesense.basics.findings import Finding
from placesense.basics.localtime import DEFAULT_TZ, hm, zone
from rules.config import RulesConfig, SectionLookup
from rules.daqi import DaqiRules, SiteAirQuality
from rules.devices_health import DeviceHealthRules
from rules.home import HomeRules
from rules.watering import ThresholdSuggestion, WateringNeed, WateringRules


class RuleFamily(Protocol):
    # The domains whose readings the family looks at: the engine gives it no others, so ``on_reading`` need not
    # check the device's domain.
    domains: frozenset[Domain]

    def start(self, now_ms: int) -> None: ...

    def on_reading(self, reading: Reading, device: DeviceSpec) -> list[Finding]: ...

    def on_time(self, now_ms: int) -> list[Finding]: ...

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...

    def forget(self, subject: str) -> None: ...


_AT_MS = attrgetter("at_ms")


class RuleEngine:
    """Deterministic rules over readings and time.

    >>> from placesense.basics.clock import EventClock
    >>> engine = RuleEngine(Registry.from_data({}), RulesConfig(), EventClock())
    >>> engine.tick(0)
    []
    """

    def __init__(self, registry: Registry, config: RulesConfig, clock: Clock) -> None:
        config.check_registry(registry)
        self.registry = registry
        self.config = config
        self.clock = clock
        self._lookup = SectionLookup(config)
        self.home = HomeRules(registry, self._lookup)
        self.watering = WateringRules(registry, self._lookup)
        self.daqi = DaqiRules(registry, self._lookup)
        self.health = DeviceHealthRules(registry, self._lookup, clock.arrival_ms)
        self._route()
        self._lock = threading.RLock()
        self._started = False
        self._time_ms = 0
        # After a restart from saved state: deadlines due before this time fell while placesense was not
        # running, and their findings say they were checked late. None once those have fired.
        self.resumed_at_ms: int | None = None

    # -- saved state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Whether the rules have started and the time they have reached (``placesense.evaluation_state``)."""
        return {"started": self._started, "time_ms": self._time_ms}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back the time reached; call after the families are restored. Families then schedule what the
        saved state did not hold (homes and devices added to the registry since)."""
        with self._lock:
            self._started = bool(state["started"])
            self._time_ms = int(state["time_ms"])
            if self._started:
                for family in self._families:
                    family.start(self._time_ms)

    def families(self) -> dict[str, RuleFamily]:
        return {"home": self.home, "watering": self.watering, "daqi": self.daqi, "health": self.health}

    def reset_family(self, name: str) -> None:
        """Start one family afresh (its saved state could not be restored); the others keep theirs."""
        if name == "home":
            self.home = HomeRules(self.registry, self._lookup)
        elif name == "watering":
            self.watering = WateringRules(self.registry, self._lookup)
        elif name == "daqi":
            self.daqi = DaqiRules(self.registry, self._lookup)
        elif name == "health":
            self.health = DeviceHealthRules(self.registry, self._lookup, self.clock.arrival_ms)
        else:
            raise ValueError(f"no rule family {name!r}")
        self._route()

    def _route(self) -> None:
        self._families: tuple[RuleFamily, ...] = (self.health, self.home, self.watering, self.daqi)
        self._by_domain: dict[str, tuple[RuleFamily, ...]] = {
            domain: tuple(family for family in self._families if domain in family.domains) for domain in DOMAINS
        }

    def process(self, reading: Reading) -> list[Finding]:
        """Evaluate one stored reading; returns the findings it (and any timer now due) produced, in time order."""
        with self._lock:
            return self.advance(reading) + self.take(reading)

    def advance(self, reading: Reading) -> list[Finding]:
        """``process``'s first half: the timers due up to the reading's time, fired before it is taken."""
        with self._lock:
            self.clock.observe(reading.ts_ms)
            # Up to this reading's time, never past it: the first readings of a backlog arrive before the live
            # clock knows they are one, and moving to the wall clock then would fire deadlines (not up by 09:30)
            # that the backlog's later readings answer. Ticks bring the rules up to the clock's time.
            return self._advance(min(self.clock.now_ms(), reading.ts_ms))

    def take(self, reading: Reading) -> list[Finding]:
        """``process``'s second half: the reading itself, read by the families of its domain."""
        device = self.registry.devices.get(reading.device_id)
        if device is None:
            return []
        with self._lock:
            self._ensure_started(reading.ts_ms)
            findings: list[Finding] = []
            for family in self._by_domain[device.domain]:
                findings.extend(family.on_reading(reading, device))
            return findings

    def tick(self, now_ms: int | None = None) -> list[Finding]:
        """Fire the timers due up to ``now_ms`` (default: the clock's time). Call it every few seconds."""
        with self._lock:
            return self._advance(self.clock.now_ms() if now_ms is None else now_ms)

    def _ensure_started(self, now_ms: int) -> None:
        if not self._started and now_ms > 0:
            self._started = True
            self._time_ms = now_ms
            for family in self._families:
                family.start(now_ms)

    def _advance(self, now_ms: int) -> list[Finding]:
        self._ensure_started(now_ms)
        if not self._started or now_ms < self._time_ms:
            return []
        self._time_ms = now_ms
        fired: list[Finding] = []
        for family in self._families:
            fired.extend(family.on_time(now_ms))
        # Timers of different families interleave; keep the order time gives them. (Usually nothing fired.)
        if len(fired) > 1:
            fired.sort(key=_AT_MS)
        resumed_at = self.resumed_at_ms
        if resumed_at is not None and now_ms >= resumed_at:
            self.resumed_at_ms = None
            fired = [self._checked_late(f, max(now_ms, resumed_at)) if f.at_ms < resumed_at else f for f in fired]
        return fired

    def _checked_late(self, finding: Finding, checked_ms: int) -> Finding:
        """A deadline that fell while placesense was not running, fired now: say so, and when it was checked."""
        home = self.registry.homes.get(finding.subject)
        tz = zone(home.timezone if home is not None else DEFAULT_TZ)
        note = f" Checked at {hm(checked_ms, tz)}, late: placesense was restarting when this was due."
        return replace(finding, message=finding.message + note,
                       evidence={**finding.evidence, "checked_late_at_ms": checked_ms})

    # -- what the API reads ---------------------------------------------------------------------------

    def watering_list(self, now_ms: int | None = None) -> list[WateringNeed]:
        """Beds that need water now or within a day, most urgent first (for ``GET /flowerbeds/watering``)."""
        with self._lock:
            return self.watering.watering_list(self.clock.now_ms() if now_ms is None else now_ms)

    def mark_watered(self, bed_id: str, at_ms: int | None = None) -> list[Finding]:
        """An operative watered ``bed_id``: it leaves the watering list (for the API to call; apply the findings)."""
        with self._lock:
            return self.watering.mark_watered(bed_id, self.clock.now_ms() if at_ms is None else at_ms)

    def threshold_suggestions(self, now_ms: int | None = None) -> list[ThresholdSuggestion]:
        """Each bed's own dry_below_pct learned from its record, with the reason."""
        with self._lock:
            return self.watering.threshold_suggestions(self.clock.now_ms() if now_ms is None else now_ms)

    def air_quality(self) -> list[SiteAirQuality]:
        """Latest DAQI band per site and pollutant (for ``GET /air/sites``)."""
        with self._lock:
            return self.daqi.air_quality()
