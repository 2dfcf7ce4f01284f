"""Test support for the grafana room: a stand-in for Grafana's variable interpolation.

``interpolate`` does to an InfluxQL panel query what Grafana's InfluxDB datasource does before sending it:
``$timeFilter`` becomes ``time >= …ms and time <= …ms``, ``$__interval`` a rounded interval for the range, and
a template variable its selected values, regex-escaped and joined as ``(a|b)`` (the form Grafana uses for
multi-value variables inside ``=~ /^$var$/``). It is a small imitation, not Grafana's code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from placesense.basics.timeunits import HOUR_MS, MINUTE_MS

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
