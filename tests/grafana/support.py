"""Test support for the grafana room: a stand-in for Grafana's variable interpolation, and a fleet's readings.

``interpolate`` does to an InfluxQL panel query what Grafana's InfluxDB datasource does before sending it:
``$timeFilter`` becomes ``time >= …ms and time <= …ms``, ``$__interval`` a rounded interval for the range, and
a template variable its selected values, regex-escaped and joined as ``(a|b)`` (the form Grafana uses for
multi-value variables inside ``=~ /^$var$/``). It is a small imitation, not Grafana's code.

``fleet_readings`` makes two days of plausible readings for a registry: residents moving about by day,
rooms cooling at night (one home colder than 16 °C), beds drying between waterings, street air following the
traffic, batteries draining.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Mapping, Sequence

from devices.readings import Reading
from devices.registry import Registry

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS

_REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|\[\]{}/-]")
# Grafana rounds the raw interval (range / max data points) up to one of these, roughly.
_NICE_INTERVALS_MS = [
    1_000, 5_000, 10_000, 15_000, 20_000, 30_000, MINUTE_MS, 2 * MINUTE_MS, 5 * MINUTE_MS, 10 * MINUTE_MS,
    15 * MINUTE_MS, 20 * MINUTE_MS, 30 * MINUTE_MS, HOUR_MS, 2 * HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS,
    12 * HOUR_MS, 24 * HOUR_MS,
]


def regex_escape(value: str) -> str:
    return _REGEX_SPECIALS.sub(lambda m: "\\" + m.group(0), value)


def interval_ms(start_ms: int, end_ms: int, max_data_points: int = 1000, min_interval_ms: int = MINUTE_MS) -> int:
    raw = max((end_ms - start_ms) / max_data_points, min_interval_ms)
    return next((nice for nice in _NICE_INTERVALS_MS if nice >= raw), _NICE_INTERVALS_MS[-1])


def _duration(ms: int) -> str:
    for unit, size in (("d", 24 * HOUR_MS), ("h", HOUR_MS), ("m", MINUTE_MS), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def interpolate(
    query: str, *, start_ms: int, end_ms: int, variables: Mapping[str, Sequence[str]], max_data_points: int = 1000
) -> str:
    """``query`` as Grafana would send it for this time range and these variable values."""
    step = interval_ms(start_ms, end_ms, max_data_points)
    replacements: dict[str, str] = {
        "timeFilter": f"time >= {start_ms}ms and time <= {end_ms}ms",
        "__interval_ms": str(step),
        "__interval": _duration(step),
    }
    for name, values in variables.items():
        escaped = [regex_escape(v) for v in values]
        replacements[name] = escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    def substitute(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in replacements:
            raise AssertionError(f"Grafana would leave ${name} unresolved in {query!r}")
        return replacements[name]

    # Longest names first, so $__interval_ms is not read as $__interval followed by "_ms".
    names = sorted(replacements, key=len, reverse=True)
    pattern = "|".join(re.escape(n) for n in names)
    return re.sub(rf"\$\{{({pattern})\}}|\$({pattern})\b|\[\[({pattern})\]\]", substitute, query)


def fleet_readings(registry: Registry, start_ms: int, end_ms: int, seed: int = 7) -> Iterator[Reading]:
    """Plausible readings of every device in ``registry`` between ``start_ms`` and ``end_ms``."""
    rng = random.Random(seed)
    homes = sorted(registry.homes)
    for device in registry.devices.values():
        cold = device.domain == "home" and device.subject == homes[0]  # the first home is a cold one
        step = {"home": 10 * MINUTE_MS, "soil": 30 * MINUTE_MS, "air": 10 * MINUTE_MS}[device.domain]
        for seq, ts in enumerate(range(start_ms + rng.randrange(step), end_ms, step), start=1):
            hour = (ts // HOUR_MS) % 24 + (ts % HOUR_MS) / HOUR_MS
            day = 7 <= hour < 22
            metrics: dict[str, float] = {}
            if device.kind == "motion":
                metrics["motion"] = 1.0 if rng.random() < (0.5 if day else 0.05) else 0.0
            elif device.kind in ("front_door", "fridge_door"):
                metrics["door_open"] = 1.0 if day and rng.random() < 0.05 else 0.0
            elif device.kind == "bed":
                metrics["occupied"] = 0.0 if day else 1.0
            elif device.kind == "kettle":
                metrics["power_w"] = 2200.0 if day and rng.random() < 0.05 else 0.4
            elif device.kind == "climate":
                base = 15.0 if cold else 19.5
                metrics["temperature_c"] = round(base + 1.5 * math.sin((hour - 9) / 24 * 2 * math.pi), 2)
                metrics["humidity_pct"] = round(50 + rng.uniform(-5, 5), 1)
            elif device.kind == "help_button":
                metrics["help_pressed"] = 0.0
            elif device.kind == "soil":
                hours_since_watering = ((ts - start_ms) // HOUR_MS) % 30
                metrics["soil_moisture_pct"] = round(max(5.0, 75 - 2.2 * hours_since_watering), 2)
                metrics["soil_temperature_c"] = round(12 + 3 * math.sin((hour - 9) / 24 * 2 * math.pi), 2)
            elif device.kind == "air":
                traffic = 1.0 + (0.8 if 7 <= hour < 10 or 16 <= hour < 19 else 0.0)
                metrics |= {
                    "pm2_5_ugm3": round(9 * traffic + rng.uniform(0, 4), 2),
                    "pm10_ugm3": round(15 * traffic + rng.uniform(0, 6), 2),
                    "no2_ugm3": round(30 * traffic + rng.uniform(0, 10), 2),
                    "o3_ugm3": round(40 + 25 * math.sin((hour - 9) / 24 * 2 * math.pi) + rng.uniform(0, 5), 2),
                }
            mains = device.kind in ("kettle", "air")
            battery = None if mains else round(90 - 20 * (ts - start_ms) / (end_ms - start_ms), 1)
            yield Reading(
                domain=device.domain,
                device_id=device.id,
                subject=device.subject,
                room=device.room,
                ts_ms=ts,
                metrics=metrics,
                battery_pct=battery,
                seq=seq,
            )
