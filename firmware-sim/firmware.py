"""Device firmware behaviour between a model's true readings and what goes on the wire.

A model says "the kitchen PIR saw movement at t"; the firmware decides what the device actually sends: it
numbers messages (``seq`` +1 per published message), reports a slowly draining battery, stamps its own clock
(a constant skew for devices that have one), checks in with its last state when nothing happened for about an
hour (as Zigbee sensors do), freezes its values when stuck, and when its radio is offline either buffers
readings and sends them in a burst on return (own firmware, LoRaWAN data logs) or loses them (Zigbee).
Every timestamp of one device is a distinct integer millisecond, strictly increasing. This module must not
decide what happens in a home, bed or street, and never touches MQTT.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from firmware_sim.anomalies import Injection
from firmware_sim.encoders import SimMeasurement

from devices.registry import DeviceSpec
from placesense.basics.timeunits import DAY_MS, MINUTE_MS

Metrics = Mapping[str, float | bool]

# Event-driven sensors check in roughly hourly with their current state; periodic ones never need to.
CHECK_IN_KINDS = frozenset({"motion", "front_door", "fridge_door", "door", "bed", "chair", "kettle", "plug",
                            "help_button"})
MAINS_POWERED_KINDS = frozenset({"kettle", "plug", "air"})


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One message as the device sends it: ``send_ms`` is when it reaches the broker in simulated time
    (later than ``measurement.ts_ms`` for readings buffered while offline)."""

    send_ms: int
    device: DeviceSpec
    measurement: SimMeasurement


class DeviceFirmware:
    """One device's message counter, battery, clock, check-ins and radio outages."""

    def __init__(
        self,
        device: DeviceSpec,
        seed: int,
        start_ms: int,
        end_ms: int,
        injections: Sequence[Injection] = (),
        clock_skew_ms: int = 0,
        initial_metrics: Metrics | None = None,
    ) -> None:
        self.device = device
        rng = random.Random(f"{seed}:firmware:{device.id}")
        self._rng = rng
        self._start_ms = start_ms
        self._end_ms = end_ms
        self._skew_ms = clock_skew_ms
        self._mains = device.kind in MAINS_POWERED_KINDS
        self._battery_start_pct = rng.uniform(55.0, 100.0)
        # CR2032 Zigbee sensors last about two years, LoRaWAN ones several: a few hundredths of a % a day.
        self._battery_drain_pct_per_day = rng.uniform(0.02, 0.12)
        self._check_in_ms = round(rng.uniform(50, 60) * MINUTE_MS) if device.kind in CHECK_IN_KINDS else None
        self._next_check_in_ms = start_ms + round(rng.uniform(0, 1) * (self._check_in_ms or 0))
        self._buffers_offline = device.format != "zigbee2mqtt"
        self._offline = sorted(
            ((i.start_ms, i.end_ms) for i in injections if i.type == "device_offline"), key=lambda w: w[0]
        )
        self._stuck = sorted(
            ((i.start_ms, i.end_ms) for i in injections if i.type == "stuck_sensor"), key=lambda w: w[0]
        )
        self._frozen: dict[int, Metrics] = {}
        self._last_metrics: Metrics | None = initial_metrics
        self._last_true_ms = -1
        self._last_send_ms = -1
        self.seq = 0
        self.published = 0
        self.lost = 0

    def _offline_until(self, ts_ms: int) -> int | None:
        for start, end in self._offline:
            if start <= ts_ms < end:
                return end
        return None

    def _stuck_metrics(self, ts_ms: int, metrics: Metrics) -> Metrics:
        for start, end in self._stuck:
            if start <= ts_ms < end:
                return self._frozen.setdefault(start, metrics)
        return metrics

    def battery_pct(self, ts_ms: int) -> float | None:
        if self._mains:
            return None
        drained = self._battery_drain_pct_per_day * (ts_ms - self._start_ms) / DAY_MS
        return round(max(1.0, self._battery_start_pct - drained), 1)

    def advance(self, until_ms: int, out: list[SimEvent]) -> None:
        """Send the check-ins due strictly before ``until_ms``."""
        if self._check_in_ms is None or self._last_metrics is None:
            return
        limit = min(until_ms, self._end_ms)
        while self._next_check_in_ms < limit:
            due_ms = self._next_check_in_ms
            back_ms = self._offline_until(due_ms)
            if back_ms is not None:
                # A sleeping radio does not check in; it resumes its timer when it is back.
                self._next_check_in_ms = back_ms + round(self._rng.uniform(0, 5) * MINUTE_MS)
                continue
            self._emit(due_ms, self._last_metrics, out)

    def feed(self, ts_ms: int, metrics: Metrics, out: list[SimEvent]) -> None:
        """The device measured ``metrics`` at true time ``ts_ms``; append what it sends to ``out``."""
        if ts_ms < self._start_ms:
            self._last_metrics = metrics  # state before the window, so check-ins report it
            self._last_true_ms = max(self._last_true_ms, ts_ms)
            return
        if ts_ms >= self._end_ms:
            return
        self.advance(ts_ms, out)
        self._emit(ts_ms, metrics, out)

    def _emit(self, ts_ms: int, metrics: Metrics, out: list[SimEvent]) -> None:
        # Two readings in one millisecond would overwrite each other in InfluxDB: keep time strictly rising.
        ts_ms = max(ts_ms, self._last_true_ms + 1)
        self._last_true_ms = ts_ms
        self._last_metrics = metrics
        if self._check_in_ms is not None:
            self._next_check_in_ms = ts_ms + self._check_in_ms + round(self._rng.uniform(-1, 1) * MINUTE_MS)
        send_ms = ts_ms
        back_ms = self._offline_until(ts_ms)
        if back_ms is not None:
            if not self._buffers_offline:
                self.lost += 1
                return
            send_ms = back_ms
        send_ms = max(send_ms, self._last_send_ms + 1)
        if send_ms >= self._end_ms:
            self.lost += 1  # still offline when the simulation ends
            return
        self._last_send_ms = send_ms
        self.seq += 1
        self.published += 1
        measurement = SimMeasurement(
            ts_ms=ts_ms + self._skew_ms,
            metrics=self._stuck_metrics(ts_ms, metrics) if self._stuck else metrics,
            battery_pct=self.battery_pct(ts_ms),
            seq=self.seq,
        )
        out.append(SimEvent(send_ms, self.device, measurement))
