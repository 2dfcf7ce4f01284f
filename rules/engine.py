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
from operator import attrgetter
from typing import Protocol

from devices.readings import DOMAINS, Domain, Reading
from devices.registry import DeviceSpec, Registry
from placesense.clock import Clock
from rules.config import RulesConfig, SectionLookup
from rules.daqi import DaqiRules, SiteAirQuality
from rules.devices_health import DeviceHealthRules
from rules.findings import Finding
from rules.home import HomeRules
from rules.watering import ThresholdSuggestion, WateringNeed, WateringRules


class RuleFamily(Protocol):
    # The domains whose readings the family looks at: the engine gives it no others, so ``on_reading`` need not
    # check the device's domain.
    domains: frozenset[Domain]

    def start(self, now_ms: int) -> None: ...

    def on_reading(self, reading: Reading, device: DeviceSpec) -> list[Finding]: ...

    def on_time(self, now_ms: int) -> list[Finding]: ...


_AT_MS = attrgetter("at_ms")


class RuleEngine:
    """Deterministic rules over readings and time.

    >>> from placesense.clock import EventClock
    >>> engine = RuleEngine(Registry.from_data({}), RulesConfig(), EventClock())
    >>> engine.tick(0)
    []
    """

    def __init__(self, registry: Registry, config: RulesConfig, clock: Clock) -> None:
        config.check_registry(registry)
        self.registry = registry
        self.config = config
        self.clock = clock
        lookup = SectionLookup(config)
        self.home = HomeRules(registry, lookup)
        self.watering = WateringRules(registry, lookup)
        self.daqi = DaqiRules(registry, lookup)
        self.health = DeviceHealthRules(registry, lookup, clock.arrival_ms)
        self._families: tuple[RuleFamily, ...] = (self.health, self.home, self.watering, self.daqi)
        self._by_domain: dict[str, tuple[RuleFamily, ...]] = {
            domain: tuple(family for family in self._families if domain in family.domains) for domain in DOMAINS
        }
        self._lock = threading.RLock()
        self._started = False
        self._time_ms = 0

    def process(self, reading: Reading) -> list[Finding]:
        """Evaluate one stored reading; returns the findings it (and any timer now due) produced, in time order."""
        device = self.registry.devices.get(reading.device_id)
        with self._lock:
            self.clock.observe(reading.ts_ms)
            findings = self._advance(self.clock.now_ms())
            if device is None:
                return findings
            self._ensure_started(reading.ts_ms)
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
        return fired

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
