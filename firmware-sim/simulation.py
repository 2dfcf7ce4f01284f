"""The simulation: a fleet's messages over a time window, as a pure, deterministic, time-ordered stream.

``Simulation(registry, start_ms, end_ms, seed, anomalies, quirks)`` resolves the requested anomalies into
labelled ``Injection``s (``.ground_truth``) at once; iterating ``.events()`` then runs the home, flowerbed and
street-air models day by day, passes their readings through each device's firmware and yields ``SimEvent``s in
the order the broker would receive them (``send_ms``; buffered bursts after an outage come later than their
timestamps). Same arguments, same stream, every time. Memory stays bounded by about one simulated day.
Nothing here touches the network: ``publisher.publish`` does that.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from firmware_sim.anomalies import (
    HOME_ANOMALIES,
    AnomalyRequest,
    AnomalyType,
    Injection,
    parse_anomaly,
)
from firmware_sim.encoders import SimMeasurement
from firmware_sim.firmware import DeviceFirmware, Metrics, SimEvent
from firmware_sim.flowerbeds import BedModel
from firmware_sim.residents import HomeModel
from firmware_sim.street_air import AirSiteModel, RegionalParticles
from firmware_sim.timebase import Day, local_days
from firmware_sim.weather import Weather

from devices.registry import DeviceSpec, Registry
from placesense.basics.timeunits import DAY_MS, HOUR_MS

AnomalyInput = AnomalyRequest | Injection | str
# Devices whose values can freeze in a way a detector should notice (numbers that normally vary).
STUCK_KINDS = frozenset({"climate", "soil", "air"})
# Home anomalies that need the days after them to be simulated too.
MULTI_DAY = {"more_bathroom_visits": 5, "reduced_kitchen_use": 5, "bed_drying_out": 7, "gradual_decline": 14}


@dataclass(frozen=True, slots=True)
class Quirks:
    """Imperfections of real devices, all deterministic for the seed.

    ``clock_skew_max_s``: devices with their own clock (canonical firmware) run up to this many seconds
    ahead or behind, constantly. ``offline_per_device_month``: radio outages per device per 30 days (each
    1-8 h; recorded in the ground truth as ``device_offline``). ``report_every_s``: the periodic sensors (room
    climate, soil, air) report this often instead of at their own interval (0: their own; a demo sets a minute so
    something visibly happens while people watch).
    """

    clock_skew_max_s: float = 2.0
    offline_per_device_month: float = 0.0
    report_every_s: float = 0.0


class Simulation:
    """See the module docstring. ``anomalies`` are requests (or ``TYPE[:SUBJECT][@DAY]`` strings) or
    already resolved ``Injection``s."""

    def __init__(
        self,
        registry: Registry,
        start_ms: int,
        end_ms: int,
        seed: int = 1,
        anomalies: Iterable[AnomalyInput] = (),
        quirks: Quirks | None = None,
    ) -> None:
        if end_ms <= start_ms:
            raise ValueError("the simulation must end after it starts")
        self.registry = registry
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.seed = seed
        self.quirks = quirks or Quirks()
        self.days: list[Day] = local_days(start_ms, end_ms)
        self.weather = Weather(self.days, seed)
        self._by_subject: dict[str, list[DeviceSpec]] = defaultdict(list)
        for device in registry.devices.values():
            self._by_subject[device.subject].append(device)
        self._planner = self._models(())
        self.ground_truth: list[Injection] = sorted(
            self._resolve(anomalies) + self._outages(), key=lambda i: (i.start_ms, i.subject, i.type)
        )
        self.waterings: list[tuple[str, int]] = []  # (flowerbed, time), filled while events() runs

    def home_model(self, home_id: str) -> HomeModel:
        """The model of one home, for its resident's habits (``.resident``, ``.usual_wake_h(day)``)."""
        model = self._planner[home_id]
        if not isinstance(model, HomeModel):
            raise KeyError(f"{home_id!r} is not a home")
        return model

    def day(self, index: int) -> Day:
        """The local day ``index`` (0 = the day containing the start)."""
        found = self._day(index)
        if found is None:
            raise KeyError(f"the simulation has no day {index}")
        return found

    # --- planning

    def _models(self, injections: Sequence[Injection]) -> dict[str, HomeModel | BedModel | AirSiteModel]:
        for_subject: dict[str, list[Injection]] = defaultdict(list)
        for injection in injections:
            for_subject[injection.subject].append(injection)
        models: dict[str, HomeModel | BedModel | AirSiteModel] = {}
        every_ms = round(self.quirks.report_every_s * 1000) or None
        for home in self.registry.homes.values():
            models[home.id] = HomeModel(home, self._by_subject[home.id], self.weather, self.days, self.seed,
                                        for_subject[home.id], report_every_ms=every_ms)
        for bed in self.registry.flowerbeds.values():
            device = next(iter(self._by_subject[bed.id]), None)
            models[bed.id] = BedModel(bed, device, self.weather, self.seed, for_subject[bed.id],
                                      report_every_ms=every_ms)
        regional = RegionalParticles(self.days, self.seed)
        for index, site in enumerate(self.registry.air_sites.values()):
            device = next(iter(self._by_subject[site.id]), None)
            models[site.id] = AirSiteModel(site, device, self.weather, regional, self.seed, index,
                                           for_subject[site.id], report_every_ms=every_ms)
        return models

    def _day(self, index: int) -> Day | None:
        return next((day for day in self.days if day.index == index), None)

    def _resolve(self, anomalies: Iterable[AnomalyInput]) -> list[Injection]:
        resolved: list[Injection] = []
        for number, item in enumerate(anomalies):
            if isinstance(item, Injection):
                resolved.append(item)
                continue
            request = parse_anomaly(item) if isinstance(item, str) else item
            rng = random.Random(f"{self.seed}:anomaly:{number}:{request.type}")
            resolved.append(self._place(request, rng))
        return resolved

    def _subjects_for(self, request: AnomalyRequest) -> list[tuple[str, str | None]]:
        """(subject, device) pairs the request may apply to."""
        kind = request.type
        candidates: list[tuple[str, str | None]]
        if kind in HOME_ANOMALIES:
            candidates = [(h, None) for h in self.registry.homes]
        elif kind == "bed_drying_out":
            candidates = [(b, None) for b in self.registry.flowerbeds]
        elif kind == "pollution_episode":
            candidates = [(s, None) for s in self.registry.air_sites]
        else:
            kinds = STUCK_KINDS if kind == "stuck_sensor" else None
            candidates = [(d.subject, d.id) for d in self.registry.devices.values()
                          if kinds is None or d.kind in kinds]
        if request.subject is not None:
            candidates = [(s, d) for s, d in candidates if request.subject in (s, d)]
        if not candidates:
            what = f" {request.subject!r}" if request.subject else ""
            raise ValueError(f"no subject{what} in the registry fits anomaly {kind}")
        return candidates

    def _place(self, request: AnomalyRequest, rng: random.Random) -> Injection:
        candidates = self._subjects_for(request)
        full_days = [d for d in self.days if d.base_ms >= self.start_ms - DAY_MS and d.base_ms < self.end_ms]
        if request.day is not None:
            day = self._day(request.day)
            if day is None:
                raise ValueError(f"anomaly {request.type}@{request.day}: the simulation has no day {request.day}")
            choices = [day]
        else:
            # Leave the detectors a week (or half the window) of normal life to learn from first.
            earliest = min(7, len(full_days) // 2)
            choices = [d for d in full_days if d.index >= earliest]
            if request.type == "gradual_decline":
                choices = [d for d in full_days if 0 <= d.index <= max(0, len(full_days) // 3)]
        for _ in range(40):
            subject, device = rng.choice(candidates)
            day = rng.choice(choices)
            injection = self._plan(request.type, subject, device, day, rng)
            if self.start_ms <= injection.start_ms and injection.end_ms <= self.end_ms:
                return injection
        raise ValueError(
            f"anomaly {request.type}{'@' + str(request.day) if request.day is not None else ''} does not fit "
            f"between the simulation's start and end; simulate more days or choose another day"
        )

    def _plan(self, kind: AnomalyType, subject: str, device: str | None, day: Day, rng: random.Random) -> Injection:
        if kind in ("stuck_sensor", "device_offline"):
            assert device is not None
            if kind == "stuck_sensor":
                start = day.at(rng.uniform(8, 16))
                hours = rng.uniform(8, 36)
                details: dict[str, object] = {"frozen": "every metric keeps its first value", "hours": round(hours, 2)}
            else:
                start = day.at(rng.uniform(0, 22))
                hours = rng.uniform(1.5, 8)
                details = {"hours": round(hours, 2), **self._outage_behaviour(device)}
            return Injection(kind, subject, start, start + round(hours * HOUR_MS), device=device, details=details)
        model = self._planner[subject]
        injection = model.plan_injection(kind, day, rng)
        if kind == "gradual_decline":
            injection = dataclasses.replace(injection, end_ms=self.end_ms)
        return injection

    def _outage_behaviour(self, device_id: str) -> dict[str, object]:
        zigbee = self.registry.devices[device_id].format == "zigbee2mqtt"
        return {"readings": "lost (Zigbee has no buffer)" if zigbee else "buffered and sent on return"}

    def _outages(self) -> list[Injection]:
        rate = self.quirks.offline_per_device_month
        if rate <= 0:
            return []
        outages: list[Injection] = []
        span_ms = self.end_ms - self.start_ms
        expected = rate * span_ms / (30 * DAY_MS)
        for device in self.registry.devices.values():
            rng = random.Random(f"{self.seed}:outages:{device.id}")
            count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
            for _ in range(count):
                hours = rng.uniform(1, 8)
                start = self.start_ms + round(rng.uniform(0, max(0, span_ms - hours * HOUR_MS)))
                outages.append(Injection("device_offline", device.subject, start, start + round(hours * HOUR_MS),
                                         device=device.id,
                                         details={"hours": round(hours, 2), **self._outage_behaviour(device.id)}))
        return outages

    # --- running

    def _firmware(self, models: dict[str, HomeModel | BedModel | AirSiteModel]) -> dict[str, DeviceFirmware]:
        by_device: dict[str, list[Injection]] = defaultdict(list)
        for injection in self.ground_truth:
            if injection.device is not None and injection.type in ("stuck_sensor", "device_offline"):
                by_device[injection.device].append(injection)
        firmware: dict[str, DeviceFirmware] = {}
        max_skew_ms = round(self.quirks.clock_skew_max_s * 1000)
        for device in self.registry.devices.values():
            rng = random.Random(f"{self.seed}:skew:{device.id}")
            # Only our own firmware stamps its own time; other sources take the gateway's or broker's.
            skew_ms = rng.randint(-max_skew_ms, max_skew_ms) if device.format == "canonical" and max_skew_ms else 0
            model = models.get(device.subject)
            initial: Metrics | None = model.initial_metrics(device) if isinstance(model, HomeModel) else None
            firmware[device.id] = DeviceFirmware(device, self.seed, self.start_ms, self.end_ms,
                                                 by_device[device.id], skew_ms, initial)
        return firmware

    def events(self) -> Iterator[SimEvent]:
        """Every message of the window in broker-arrival order (ties broken deterministically)."""
        self.waterings = []
        models = self._models(self.ground_truth)
        firmware = self._firmware(models)
        pending: list[tuple[int, int, SimEvent]] = []
        order = 0
        out: list[SimEvent] = []
        for day in self.days:
            if day.base_ms >= self.end_ms:
                break
            for model in models.values():
                for ts_ms, device_id, metrics in sorted(model.events_for_day(day), key=lambda e: e[0]):
                    unit = firmware.get(device_id)
                    if unit is not None:
                        unit.feed(ts_ms, metrics, out)
            # Every later event is at or after the next local midnight, so all before it can go out now.
            horizon_ms = min(day.next_base_ms, self.end_ms)
            for unit in firmware.values():
                unit.advance(horizon_ms, out)
            for event in out:
                heapq.heappush(pending, (event.send_ms, order, event))
                order += 1
            out.clear()
            while pending and pending[0][0] < horizon_ms:
                yield heapq.heappop(pending)[2]
        for model in models.values():
            if isinstance(model, BedModel):
                self.waterings.extend((model.bed.id, ts) for ts in model.waterings)
        while pending:
            yield heapq.heappop(pending)[2]

    def __iter__(self) -> Iterator[tuple[DeviceSpec, SimMeasurement]]:
        for event in self.events():
            yield event.device, event.measurement


def generate(
    registry: Registry,
    start_ms: int,
    end_ms: int,
    seed: int = 1,
    anomalies: Iterable[AnomalyInput] = (),
    quirks: Quirks | None = None,
) -> Iterator[tuple[DeviceSpec, SimMeasurement]]:
    """The fleet's messages in ``[start_ms, end_ms)`` in publish order, as (device, measurement) pairs."""
    return iter(Simulation(registry, start_ms, end_ms, seed, anomalies, quirks))


def ground_truth(
    registry: Registry,
    start_ms: int,
    end_ms: int,
    seed: int = 1,
    anomalies: Iterable[AnomalyInput] = (),
    quirks: Quirks | None = None,
) -> list[Injection]:
    """What ``generate`` with the same arguments injects, with subjects, devices and windows resolved."""
    return Simulation(registry, start_ms, end_ms, seed, anomalies, quirks).ground_truth

