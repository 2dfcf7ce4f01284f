"""Residents' daily routines and what the sensors in their homes see of them.

Each home has one resident with their own habits (usual wake time, bedtime, how often they use the bathroom or
boil the kettle, whether they go out). Every day is planned from waking up to waking up the next day: getting
dressed, washing, breakfast, lunch, tea, dinner, bathroom visits, maybe an outing, the evening in the living
room, bedtime and a few night-time bathroom trips. The plan becomes sensor events: PIR detections (reported as
``motion`` true on detection and false after 60-90 s of quiet, like Aqara/Zigbee PIRs), door contacts, bed
occupancy, the kettle's power and the living-room climate sensor, whose temperature follows the heating
schedule. Home anomalies change the plan (a late morning, a night-time walk out of the front door, a fall).

This module decides what happens in a home; it must not number messages, drain batteries or publish.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from firmware_sim.anomalies import AnomalyType, Injection
from firmware_sim.firmware import Metrics
from firmware_sim.timebase import Day, local_clock
from firmware_sim.weather import Weather

from devices.registry import DeviceSpec, Home
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS, SECOND_MS

RawEvent = tuple[int, str, Metrics]  # true time, device id, metrics

# Mean seconds between PIR detections while someone is in the room, by what they are doing there.
BUSY_GAP_S = 40.0  # cooking, washing, dressing
SITTING_GAP_S = 240.0  # reading or watching television


@dataclass(frozen=True, slots=True)
class Resident:
    """One resident's habits, in local hours and counts per day."""

    wake_h: float
    wake_sd_h: float
    weekend_delay_h: float
    bedtime_h: float
    night_bathroom_visits: float
    day_bathroom_visits: float
    kettle_liking: float  # chance of boiling the kettle on each kitchen visit
    outing_chance: float
    heating_setpoint_c: float

    @classmethod
    def draw(cls, rng: random.Random) -> Resident:
        return cls(
            wake_h=rng.uniform(6.5, 8.25),
            wake_sd_h=rng.uniform(0.15, 0.3),
            weekend_delay_h=rng.uniform(0.3, 1.0),
            bedtime_h=rng.uniform(21.75, 23.25),
            night_bathroom_visits=rng.uniform(0.4, 1.4),
            day_bathroom_visits=rng.uniform(4.0, 6.0),
            kettle_liking=rng.uniform(0.55, 0.9),
            outing_chance=rng.uniform(0.4, 0.8),
            heating_setpoint_c=rng.uniform(19.5, 21.0),
        )


@dataclass(slots=True)
class _Plan:
    """A day's plan: where the resident is (room or None when out) and what they do, in absolute ms."""

    segments: list[tuple[int, int, str | None, float | None]] = field(default_factory=list)
    actions: list[tuple[int, str, float | bool]] = field(default_factory=list)

    def stay(self, start_ms: int, end_ms: int, room: str | None, gap_s: float | None) -> int:
        if end_ms > start_ms:
            self.segments.append((start_ms, end_ms, room, gap_s))
        return max(start_ms, end_ms)


class HomeModel:
    """One home: its resident, their days, and the readings of the home's devices."""

    def __init__(
        self,
        home: Home,
        devices: Sequence[DeviceSpec],
        weather: Weather,
        days: Sequence[Day],
        seed: int,
        injections: Sequence[Injection] = (),
        report_every_ms: int | None = None,
    ) -> None:
        self.home = home
        self._seed = seed
        self._weather = weather
        self._days = {day.index: day for day in days}
        self.resident = Resident.draw(random.Random(f"{seed}:resident:{home.id}"))
        self.injections = list(injections)
        self._pir: dict[str, str] = {}
        self._pir_timeout_ms: dict[str, int] = {}
        self._device: dict[str, str] = {}
        for device in devices:
            device_rng = random.Random(f"{seed}:device:{device.id}")
            if device.kind == "motion" and device.room is not None:
                self._pir[device.room] = device.id
                self._pir_timeout_ms[device.id] = round(device_rng.uniform(60, 90) * SECOND_MS)
            else:
                self._device.setdefault(device.kind, device.id)
        kettle_rng = random.Random(f"{seed}:kettle:{home.id}")
        self._kettle_w = kettle_rng.uniform(2000, 3000)
        climate_rng = random.Random(f"{seed}:climate:{home.id}")
        self._climate_interval_ms = round(climate_rng.uniform(10, 15) * MINUTE_MS)
        if report_every_ms:
            self._climate_interval_ms = report_every_ms
        self._indoor_c = self.resident.heating_setpoint_c - 1.0
        self._next_climate_ms: int | None = None
        self._climate_last_ms = 0
        self._climate_rng = climate_rng

    # --- what devices report before anything happens (for their hourly check-ins)

    def initial_metrics(self, device: DeviceSpec) -> Metrics | None:
        initial: dict[str, Metrics] = {
            "motion": {"motion": False},
            "front_door": {"door_open": False},
            "fridge_door": {"door_open": False},
            "door": {"door_open": False},
            "bed": {"occupied": True},
            "chair": {"occupied": False},
            "kettle": {"power_w": 0.0},
            "plug": {"power_w": 0.0},
            "help_button": {"help_pressed": False},
        }
        return initial.get(device.kind)

    # --- the resident's schedule

    def _active(self, kind: AnomalyType, ts_ms: int) -> Injection | None:
        for injection in self.injections:
            if injection.type == kind and injection.covers(ts_ms):
                return injection
        return None

    def decline(self, day: Day) -> float:
        """How far a gradual decline has progressed on ``day``: 0 (none) to 1 (its end)."""
        for injection in self.injections:
            if injection.type == "gradual_decline" and day.base_ms >= injection.start_ms:
                span = max(1, injection.end_ms - injection.start_ms)
                return min(1.0, (day.base_ms - injection.start_ms) / span)
        return 0.0

    def usual_wake_h(self, day: Day) -> float:
        """The wake time this day would have had without any anomaly (hours after local midnight)."""
        rng = random.Random(f"{self._seed}:wake:{self.home.id}:{day.index}")
        wake_h = self.resident.wake_h + rng.gauss(0, self.resident.wake_sd_h)
        if day.is_weekend:
            wake_h += self.resident.weekend_delay_h
        return max(5.5, wake_h)

    def wake_ms(self, day: Day) -> int:
        late = next(
            (i for i in self.injections if i.type == "late_wakeup" and day.base_ms <= i.start_ms < day.next_base_ms),
            None,
        )
        if late is not None:
            return late.end_ms
        return day.at(self.usual_wake_h(day) + 1.0 * self.decline(day))

    # --- planning injections (the ground truth depends on this resident's habits)

    def plan_injection(self, kind: AnomalyType, day: Day, rng: random.Random) -> Injection:
        subject = self.home.id
        if kind == "late_wakeup":
            usual_h = self.usual_wake_h(day)
            delay_h = rng.uniform(2.5, 4.0)
            start, end = day.at(usual_h), day.at(usual_h + delay_h)
            return Injection(kind, subject, start, end, details={
                "usual_wake": local_clock(start), "actual_wake": local_clock(end), "delay_min": round(delay_h * 60)})
        if kind == "night_wandering":
            start_h = rng.uniform(1.0, 3.0)
            start, end = day.at(start_h), day.at(start_h + rng.uniform(0.5, 1.25))
            return Injection(kind, subject, start, end, device=self._device.get("front_door"),
                             details={"door_openings": rng.randint(1, 3)})
        if kind in ("more_bathroom_visits", "reduced_kitchen_use"):
            span_days = rng.randint(3, 5)
            end_day = self._days.get(day.index + span_days)
            end = end_day.base_ms if end_day else day.next_base_ms + (span_days - 1) * 86_400_000
            details: dict[str, object] = {"days": span_days}
            if kind == "more_bathroom_visits":
                details |= {"day_visits_factor": 2.5, "extra_night_visits": 2}
            else:
                details |= {"kitchen_visits_kept_pct": 35, "kettle_use_kept_pct": 30}
            return Injection(kind, subject, day.base_ms, end, details=details)
        if kind == "no_movement":
            start_h = rng.uniform(10.5, 13.5)
            hours = rng.uniform(3.0, 5.0)
            return Injection(kind, subject, day.at(start_h), day.at(start_h + hours),
                             details={"hours": round(hours, 2), "cause": "possible fall"})
        if kind == "cold_home":
            start_h = rng.uniform(14.0, 20.0)
            hours = rng.uniform(12.0, 18.0)
            return Injection(kind, subject, day.at(start_h), day.at(start_h + hours),
                             device=self._device.get("climate"),
                             details={"cause": "heating failure", "hours": round(hours, 2)})
        if kind == "gradual_decline":
            return Injection(kind, subject, day.base_ms, day.base_ms, details={"final_activity_pct": 45})
        raise ValueError(f"{kind} is not a home anomaly")

    # --- one day

    def events_for_day(self, day: Day) -> list[RawEvent]:
        """Sensor events of the resident's day from waking on ``day`` to waking the next day, and the climate
        sensor's readings during ``day``. Never earlier than ``day``'s local midnight."""
        next_day = self._days.get(day.index + 1)
        events = self._climate(day)
        if next_day is not None:
            events.extend(self._routine(day, next_day))
        return events

    def _routine(self, day: Day, next_day: Day) -> list[RawEvent]:
        rng = random.Random(f"{self._seed}:day:{self.home.id}:{day.index}")
        resident = self.resident
        decline = self.decline(day)
        noon = day.at(12)
        bathroom_boost = self._active("more_bathroom_visits", noon)
        kitchen_cut = self._active("reduced_kitchen_use", noon)
        fall = next((i for i in self.injections if i.type == "no_movement"
                     and day.base_ms <= i.start_ms < day.next_base_ms), None)
        minutes = MINUTE_MS

        plan = _Plan()
        wake = self.wake_ms(day)
        next_wake = self.wake_ms(next_day)
        busy = BUSY_GAP_S * (1 + 0.8 * decline)
        sitting = SITTING_GAP_S * (1 + 1.5 * decline)
        plan.actions.append((wake, "bed", False))
        t = plan.stay(wake, wake + round(rng.uniform(5, 12) * minutes), "bedroom", busy)
        t = plan.stay(t, t + round(rng.uniform(6, 15) * minutes), "bathroom", busy)
        kettle_liking = resident.kettle_liking * (1 - 0.6 * decline) * (0.3 if kitchen_cut else 1.0)
        skip_meal = (0.65 if kitchen_cut else 0.0) + 0.4 * decline
        if rng.random() >= skip_meal * 0.5:  # breakfast is the meal people skip least
            t = self._kitchen_visit(plan, rng, t, rng.uniform(15, 30), kettle_liking, busy, fridge_opens=2)

        bedtime = day.at(resident.bedtime_h + rng.gauss(0, 0.25) + (0.3 if day.is_weekend else 0.0))
        # Anchors: (start, duration in minutes, what).
        anchors: list[tuple[int, float, str]] = []
        for start_h, end_h, duration_min, what in (
            (12.0, 13.0, rng.uniform(20, 40), "lunch"),
            (15.0, 16.0, rng.uniform(5, 10), "tea"),
            (17.25, 18.5, rng.uniform(30, 50), "dinner"),
            (20.0, 21.0, rng.uniform(4, 8), "drink"),
        ):
            if rng.random() >= skip_meal:
                anchors.append((day.at(rng.uniform(start_h, end_h)), duration_min, what))
        visits = _poisson(rng, resident.day_bathroom_visits * (2.5 if bathroom_boost else 1.0))
        for _ in range(visits):
            start_ms = rng.uniform(t + HOUR_MS, bedtime - HOUR_MS // 2)
            if start_ms > t:
                anchors.append((round(start_ms), rng.uniform(3, 8), "bathroom"))
        if fall is None and rng.random() < resident.outing_chance * (1 - 0.8 * decline):
            out_start = day.at(rng.uniform(9.5, 14.5))
            anchors.append((out_start, rng.uniform(60, 210), "out"))
        anchors.sort()

        for start_ms, duration_min, what in anchors:
            start_ms = max(start_ms, t)
            end_ms = start_ms + round(duration_min * minutes)
            if end_ms > bedtime - 20 * minutes:
                continue
            t = plan.stay(t, start_ms, "living_room", sitting)
            if what == "out":
                plan.actions.append((start_ms, "front_door", True))
                plan.actions.append((start_ms + round(rng.uniform(8, 20) * SECOND_MS), "front_door", False))
                t = plan.stay(start_ms, end_ms, None, None)
                plan.actions.append((end_ms, "front_door", True))
                plan.actions.append((end_ms + round(rng.uniform(8, 20) * SECOND_MS), "front_door", False))
            elif what == "bathroom":
                t = plan.stay(start_ms, end_ms, "bathroom", busy)
            else:
                t = self._kitchen_visit(plan, rng, start_ms, duration_min, kettle_liking, busy,
                                        fridge_opens={"lunch": 2, "dinner": 3}.get(what, 1))
        t = plan.stay(t, max(t, bedtime), "living_room", sitting)
        t = plan.stay(t, t + round(rng.uniform(5, 10) * minutes), "bathroom", busy)
        t = plan.stay(t, t + round(rng.uniform(4, 10) * minutes), "bedroom", busy)
        plan.actions.append((t, "bed", True))
        in_bed = t
        self._night(plan, rng, day, in_bed, next_wake, bathroom_boost is not None)
        # A fall: the resident lies still, out of every sensor's sight, until help comes.
        return self._to_events(plan, rng, blackout=(fall.start_ms, fall.end_ms) if fall else None)

    def _kitchen_visit(self, plan: _Plan, rng: random.Random, start_ms: int, duration_min: float,
                       kettle_liking: float, busy_gap_s: float, fridge_opens: int) -> int:
        end_ms = start_ms + round(duration_min * MINUTE_MS)
        if rng.random() < kettle_liking:
            boil_ms = start_ms + round(rng.uniform(0.5, 3) * MINUTE_MS)
            plan.actions.append((boil_ms, "kettle", round(self._kettle_w * rng.uniform(0.97, 1.02), 1)))
            plan.actions.append((boil_ms + round(rng.uniform(2, 4) * MINUTE_MS), "kettle", 0.0))
        for _ in range(rng.randint(max(0, fridge_opens - 1), fridge_opens)):
            open_ms = round(rng.uniform(start_ms, end_ms - 45 * SECOND_MS))
            plan.actions.append((open_ms, "fridge_door", True))
            plan.actions.append((open_ms + round(rng.uniform(5, 40) * SECOND_MS), "fridge_door", False))
        return plan.stay(start_ms, end_ms, "kitchen", busy_gap_s)

    def _night(self, plan: _Plan, rng: random.Random, day: Day, in_bed: int, next_wake: int,
               more_bathroom: bool) -> None:
        wander = next((i for i in self.injections if i.type == "night_wandering"
                       and in_bed < i.start_ms < next_wake), None)
        # A urinary infection typically doubles or triples night-time trips: the usual rate twice over plus
        # one and a half more, so even a resident who rarely gets up at night visibly does.
        usual = self.resident.night_bathroom_visits
        count = _poisson(rng, 2 * usual + 1.5 if more_bathroom else usual)
        earliest, latest = in_bed + 45 * MINUTE_MS, next_wake - 40 * MINUTE_MS
        times = sorted(round(rng.uniform(earliest, latest)) for _ in range(count) if latest > earliest)
        trips: list[tuple[int, str]] = [(t, "bathroom") for t in times]
        if wander is not None:
            trips = [(t, w) for t, w in trips if not (wander.start_ms - 30 * MINUTE_MS < t < wander.end_ms)]
            trips.append((wander.start_ms, "wander"))
            trips.sort()
        t = in_bed
        for trip_ms, what in trips:
            if what == "wander":
                trip_ms = max(trip_ms, t + MINUTE_MS)
            elif trip_ms < t + (8 if more_bathroom else 15) * MINUTE_MS:
                continue  # still settling back after the last trip (urgency shortens the wait)
            plan.stay(t, trip_ms, "bedroom", None)  # asleep: a PIR does not see someone lying still
            plan.actions.append((trip_ms, "bed", False))
            t = plan.stay(trip_ms, trip_ms + round(rng.uniform(0.5, 1.0) * MINUTE_MS), "bedroom", 20)
            if what == "bathroom":
                t = plan.stay(t, t + round(rng.uniform(3, 7) * MINUTE_MS), "bathroom", 50)
            else:
                assert wander is not None
                t = self._wander(plan, rng, t, wander)
            t = plan.stay(t, t + round(rng.uniform(0.5, 1.0) * MINUTE_MS), "bedroom", 20)
            plan.actions.append((t, "bed", True))
        plan.stay(t, next_wake, "bedroom", None)

    def _wander(self, plan: _Plan, rng: random.Random, t: int, wander: Injection) -> int:
        """Confused walking about at night: hallway, kitchen, living room, the front door opened."""
        openings = int(wander.details.get("door_openings", 1))
        end = wander.end_ms
        door_times = sorted(round(rng.uniform(t + MINUTE_MS, end - 3 * MINUTE_MS)) for _ in range(openings))
        for door_ms in door_times:
            plan.actions.append((door_ms, "front_door", True))
            plan.actions.append((door_ms + round(rng.uniform(10, 60) * SECOND_MS), "front_door", False))
        rooms = ("hallway", "kitchen", "hallway", "living_room")
        step = 0
        while t < end - MINUTE_MS:
            room = rooms[step % len(rooms)]
            t = plan.stay(t, min(end, t + round(rng.uniform(2, 8) * MINUTE_MS)), room, 30)
            step += 1
        return max(t, end)

    def _to_events(self, plan: _Plan, rng: random.Random, blackout: tuple[int, int] | None) -> list[RawEvent]:
        detections: dict[str, list[int]] = defaultdict(list)
        previous_room: str | None = "bedroom"
        for start_ms, end_ms, room, gap_s in sorted(plan.segments, key=lambda s: s[0]):
            if room != previous_room and "hallway" not in (room, previous_room):
                # Every move between rooms crosses the hallway.
                detections["hallway"].append(start_ms - round(rng.uniform(3, 10) * SECOND_MS))
            previous_room = room
            if room is None or gap_s is None:
                continue
            moment = start_ms
            while moment < end_ms:
                detections[room].append(moment)
                moment += round(max(5.0, rng.expovariate(1 / gap_s)) * SECOND_MS)
        if blackout is not None:
            hidden_from, hidden_until = blackout
            for times in detections.values():
                times[:] = [moment for moment in times if not hidden_from <= moment < hidden_until]
            # Things switch themselves off (a kettle, a door swinging shut); nothing new is switched on.
            plan.actions = [a for a in plan.actions if not (hidden_from <= a[0] < hidden_until and a[2])]
        events: list[RawEvent] = []
        for room, times in detections.items():
            device_id = self._pir.get(room)
            if device_id is None:
                continue
            timeout_ms = self._pir_timeout_ms[device_id]
            times.sort()
            last: int | None = None
            for moment in times:
                if last is None or moment - last > timeout_ms:
                    if last is not None:
                        events.append((last + timeout_ms, device_id, {"motion": False}))
                    events.append((moment, device_id, {"motion": True}))
                last = moment
            if last is not None:
                events.append((last + timeout_ms, device_id, {"motion": False}))
        metric = {"bed": "occupied", "front_door": "door_open", "fridge_door": "door_open", "kettle": "power_w"}
        for moment, kind, value in plan.actions:
            device_id = self._device.get(kind)
            if device_id is not None:
                events.append((moment, device_id, {metric[kind]: value}))
        return events

    # --- the living-room climate sensor

    def _climate(self, day: Day) -> list[RawEvent]:
        device_id = self._device.get("climate")
        if device_id is None:
            return []
        rng = self._climate_rng
        resident = self.resident
        usual_wake_h = self.usual_wake_h(day)
        if self._next_climate_ms is None:
            self._next_climate_ms = day.base_ms + round(rng.uniform(0, 1) * self._climate_interval_ms)
            self._climate_last_ms = self._next_climate_ms
        events: list[RawEvent] = []
        while self._next_climate_ms < day.next_base_ms:
            moment = self._next_climate_ms
            hour = day.hour_of(moment)
            outdoor_c = self._weather.temperature_c(moment)
            # With the heating off a house settles a few degrees above what is outside.
            free_running_c = 13.5 + 0.45 * outdoor_c
            heating = (usual_wake_h - 0.5 <= hour < 9.5) or (16.0 <= hour < 22.5)
            if self._active("cold_home", moment):
                target_c, tau_h = min(free_running_c, 10.0), 3.0
            elif heating:
                target_c, tau_h = max(resident.heating_setpoint_c, free_running_c), 1.5
            else:
                target_c, tau_h = free_running_c, 6.0
            elapsed_h = (moment - self._climate_last_ms) / HOUR_MS
            self._indoor_c += (target_c - self._indoor_c) * (1 - math.exp(-elapsed_h / tau_h))
            self._climate_last_ms = moment
            humidity_pct = 50 + 6 * math.cos(2 * math.pi * (hour - 7) / 24) + rng.gauss(0, 1.2)
            humidity_pct += max(0.0, 18.0 - self._indoor_c) * 1.5  # cold rooms feel damp
            events.append((moment, device_id, {
                "temperature_c": round(self._indoor_c + rng.gauss(0, 0.08), 2),
                "humidity_pct": round(min(99.0, max(20.0, humidity_pct)), 1),
            }))
            self._next_climate_ms = moment + self._climate_interval_ms + round(rng.uniform(-10, 10) * SECOND_MS)
        return events


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: fine for the small means of daily counts)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
