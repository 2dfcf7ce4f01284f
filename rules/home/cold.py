"""``cold_home``: a room below 16 °C for 2 hours (counted 07:00–23:00); clears once every room is above 17 °C.
This module must not touch alerts, storage or MQTT.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from devices.readings import Reading
from devices.registry import DeviceSpec
from placesense.basics.findings import Finding, care_finding
from placesense.basics.localtime import at_local, hm, local
from placesense.basics.texts import text
from placesense.basics.timeunits import MINUTE_MS
from rules.config import ColdHomeRule, Window
from rules.home.check import Shared
from rules.home.picture import HomePicture


class ColdHomeCheck:
    """Each climate sensor's temperature, timed while it is below the threshold."""

    timer_kinds = frozenset({"cold"})

    def __init__(self, shared: Shared) -> None:
        self._lookup = shared.lookup
        self._timers = shared.timers
        self._registry = shared.registry

    def on_reading(self, reading: Reading, device: DeviceSpec, home: HomePicture) -> list[Finding]:
        if device.kind == "climate" and "temperature_c" in reading.metrics:
            return self._temperature(reading, device, home, reading.metrics["temperature_c"])
        return []

    def on_due(self, home_id: str, home: HomePicture, what: str, due_ms: int) -> list[Finding]:
        return self._cold_due(home_id, home, what.removeprefix("cold:"), due_ms)

    def _temperature(self, reading: Reading, device: DeviceSpec, home: HomePicture, celsius: float) -> list[Finding]:
        cfg = self._lookup.get(ColdHomeRule, reading.subject, device)
        home.temperatures[device.id] = (reading.ts_ms, celsius)
        key = (reading.subject, f"cold:{device.id}")
        if celsius < cfg.below_c:
            if device.id not in home.below_since:
                home.below_since[device.id] = reading.ts_ms
                if cfg.enabled:
                    self._timers.set(key, counted_until(reading.ts_ms, cfg.for_minutes, cfg.counted, home.tz))
        elif device.id not in home.cold_devices or celsius >= cfg.clear_above_c:
            # Onset needs two hours strictly below; once alerting, only a clear rise above 17 °C ends it,
            # so a room hovering around 16 °C neither flaps nor piles up half-cold spells.
            home.below_since.pop(device.id, None)
            self._timers.cancel(key)
            if device.id in home.cold_devices:
                home.cold_devices.discard(device.id)
                if not home.cold_devices:
                    message = text(
                        "cold_home.cleared", room=device.room, now_c=celsius, time=hm(reading.ts_ms, home.tz)
                    )
                    return [
                        care_finding(
                            "cold_home",
                            reading.subject,
                            cfg.severity,
                            message,
                            reading.ts_ms,
                            False,
                            {"temperature_c": celsius},
                            device.id,
                        )
                    ]
        return []

    def _cold_due(self, home_id: str, home: HomePicture, device_id: str, due_ms: int) -> list[Finding]:
        device = self._registry.devices[device_id]
        cfg = self._lookup.get(ColdHomeRule, home_id, device)
        since = home.below_since.get(device_id)
        if since is None:
            return []
        home.cold_devices.add(device_id)
        coldest = min(home.temperatures.get(d, (0, 99.0))[1] for d in home.cold_devices)
        _, now_c = home.temperatures.get(device_id, (0, coldest))
        message = text(
            "cold_home", room=device.room, below_c=cfg.below_c, since=hm(since, home.tz), lasted=due_ms - since,
            now_c=now_c,
        )
        return [
            care_finding(
                "cold_home",
                home_id,
                cfg.severity,
                message,
                due_ms,
                True,
                {"temperature_c": now_c, "coldest_c": coldest, "since_ms": since},
                device.id,
            )
        ]


def counted_until(since_ms: int, minutes: float, window: Window, tz: ZoneInfo) -> int:
    """When ``minutes`` of time inside the daily ``window`` will have passed since ``since_ms``."""
    remaining = minutes * MINUTE_MS
    day = local(since_ms, tz).date() - timedelta(days=1)
    for offset in range(400):
        start = at_local(day + timedelta(days=offset), window.start, tz)
        end_day = day + timedelta(days=offset + (1 if window.end <= window.start else 0))
        end = at_local(end_day, window.end, tz)
        begin = max(start, since_ms)
        if end <= begin:
            continue
        if end - begin >= remaining:
            return int(begin + remaining)
        remaining -= end - begin
    raise AssertionError("unreachable: a daily window adds time every day")
