"""What every LoRaWAN payload codec shares: the ``Codec`` record, what a frame yields, battery curves and the
parsing of vendor decoders' values.

A codec turns one vendor's raw frame bytes into our metric names and units, and back (for the simulator). A
value the frame carries but cannot be trusted (probe absent, "collection failed" markers, raw mode, stored
history) becomes a ``RefusedMetric`` with its reason rather than a number or silence. A codec knows nothing of
MQTT, topics or network servers; it must not range-check metrics either, because ``devices.decode.finish``
does that once for every source.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from devices.readings import METRIC_UNITS, RefusedMetric
from placesense.basics.errors import DecodeError


@dataclass(slots=True)
class FrameValues:
    """The metrics one frame (or one vendor decoder's object) yields, and the values it refuses with a reason."""

    metrics: dict[str, float] = field(default_factory=dict)
    refused: list[RefusedMetric] = field(default_factory=list)

    def refuse(self, metric: str, reason: str, kind: str) -> None:
        self.metrics.pop(metric, None)
        self.refused.append(RefusedMetric(metric, reason, kind))


@dataclass(frozen=True, slots=True)
class BatteryCurve:
    """A rough state of charge from a cell's voltage: straight lines between (volts, percent) points, clamped.

    Primary lithium cells hold their voltage for most of their life and fall off at the end, so no curve is
    right in the middle; what matters is that the points where the vendor says "replace" land on the battery
    rule's thresholds (critical below 10 %, warning below 20 %).
    """

    points: tuple[tuple[float, float], ...]

    def pct(self, volts: float) -> float:
        points = self.points
        if volts <= points[0][0]:
            return points[0][1]
        for (v0, p0), (v1, p1) in pairwise(points):
            if volts <= v1:
                return round(p0 + (volts - v0) / (v1 - v0) * (p1 - p0), 1)
        return points[-1][1]

    def volts(self, pct: float) -> float:
        """The inverse (for the simulator, which thinks in percent)."""
        points = self.points
        pct = min(points[-1][1], max(points[0][1], pct))
        for (v0, p0), (v1, p1) in pairwise(points):
            if pct <= p1:
                return v0 + (pct - p0) / (p1 - p0) * (v1 - v0)
        return points[-1][0]


# Dragino's outdoor sensors (LSE01, SE01-LB and the other -LB models) run on an ER26500 Li-SOCl2 pack. Dragino's
# battery FAQ (docs.dragino.com, "How to calculate battery life of Dragino sensors"): the discharge curve is not
# linear; "if we see the battery lower than 2.7v, it is time to replace battery", and 2.7-3.6 V is the working
# range. Its manuals' example reading is 2885 mV. So 2.7 V is the edge of "critical" (10 %), 3.6 V is full, and
# 2.5 V (the LHT65's "ultra low" band, where the sensors stop) is empty.
DRAGINO_LI_SOCL2 = BatteryCurve(((2.5, 0.0), (2.7, 10.0), (3.6, 100.0)))


def battery_pct_from_volts(volts: float) -> float:
    """Rough state of charge of a Dragino Li-SOCl2 pack from its voltage (``DRAGINO_LI_SOCL2``)."""
    return DRAGINO_LI_SOCL2.pct(volts)


def volts_from_battery_pct(pct: float) -> float:
    """The inverse of ``battery_pct_from_volts`` (for the simulator, which thinks in percent)."""
    return DRAGINO_LI_SOCL2.volts(pct)


# A number, optionally followed by a unit, as vendor decoders print them: "2.885 V", "24.1 °C", "19.57 %".
_NUMBER_WITH_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)?\s*$")
# The spellings of each of our units that vendor decoders use (compared in lower case, spaces removed).
_UNIT_SPELLINGS: dict[str, frozenset[str]] = {
    "V": frozenset({"v"}),
    "°C": frozenset({"°c", "c", "℃", "degc", "celsius"}),
    "%": frozenset({"%", "%rh", "%r.h.", "%vwc"}),
    "µS/cm": frozenset({"us/cm", "µs/cm", "μs/cm"}),
    "ppm": frozenset({"ppm"}),
    "hPa": frozenset({"hpa"}),
    "µg/m³": frozenset({"ug/m3", "µg/m3", "µg/m³", "μg/m³", "μg/m3"}),
}
# Words vendor decoders use for a yes/no state, in the sense of our boolean metrics (door_open: "open" is 1,
# motion: "trigger" is 1).
_WORDS_TRUE = frozenset({"open", "opened", "trigger", "triggered", "motion", "occupied", "yes", "true", "on"})
_WORDS_FALSE = frozenset({"close", "closed", "idle", "no_motion", "unoccupied", "no", "false", "off"})


def vendor_number(value: object, what: str) -> float:
    """A vendor decoder's value as a finite float.

    Vendor JavaScript decoders often hand numbers back as text (``"23.45"`` from ``toFixed``), some with the
    unit appended (``"2.885 V"``); both are accepted here and the unit is left for ``vendor_value`` to check.
    Booleans are not numbers.
    """
    if isinstance(value, bool):
        raise DecodeError(f"{what} must be a number, got true/false", kind="wrong_type")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        match = _NUMBER_WITH_UNIT.match(value)
        if match is None:
            if value.strip().lstrip("+-").lower() in ("nan", "inf", "infinity"):
                raise DecodeError(f"{what} is not a finite number", kind="not_finite")
            raise DecodeError(f"{what} must be a number, got the text {value[:40]!r}", kind="wrong_type")
        result = float(match.group(1))
    else:
        raise DecodeError(f"{what} must be a number, got {type(value).__name__}", kind="wrong_type")
    if not math.isfinite(result):
        raise DecodeError(f"{what} is not a finite number", kind="not_finite")
    return result


def vendor_value(metric: str, value: object, what: str) -> float:
    """A vendor decoder's value for our ``metric``: a number (with the right unit if it names one) or a yes/no."""
    unit = METRIC_UNITS[metric][0] if metric in METRIC_UNITS else "%"  # battery_pct is the one name not in it
    if value is None:
        raise DecodeError(f"{what} is null: the vendor's decoder had no value", kind="no_value")
    if unit == "bool":
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, str) and value.strip().lower() in _WORDS_TRUE | _WORDS_FALSE:
            return 1.0 if value.strip().lower() in _WORDS_TRUE else 0.0
        if isinstance(value, int | float) and value in (0, 1):
            return float(value)
        raise DecodeError(f"{what} = {str(value)[:40]!r} is not a yes/no state placesense knows", kind="wrong_type")
    result = vendor_number(value, what)
    if isinstance(value, str):
        match = _NUMBER_WITH_UNIT.match(value)
        given = match.group(2) if match else None
        if given and given.replace(" ", "").lower() not in _UNIT_SPELLINGS.get(unit, frozenset({unit.lower()})):
            raise DecodeError(f"{what} = {value[:40]!r} is in {given!r}; placesense expects {unit}", kind="wrong_unit")
    return result


VendorCheck = Callable[[Mapping[str, object], FrameValues, str], None]


@dataclass(frozen=True, slots=True)
class Codec:
    """One vendor model's frame format, and what its vendors' network-server decoders call the same values.

    ``decode(frame, f_port)`` yields a ``FrameValues``; ``f_port`` is the port of its measurement frames (what
    the simulator sends on). ``vendor_fields`` maps the field names of the vendors' decoders (what TTN puts in
    ``decoded_payload`` and ChirpStack in ``object``; several spellings, since they differ by repository and
    release) to our metric names; ``ignored_fields`` are fields known and deliberately not stored, so that any
    other numeric field is reported rather than dropped. ``check_vendor_object`` honours the decoders' status
    flags and "no value" markers. ``battery`` turns a voltage into a rough percentage where the cell is known.
    ``vendor_conversions`` turn a vendor's number into ours where the units or sense differ (millivolts, a
    count of triggers). ``to_vendor_object`` is the simulator's mirror of a vendor decoder.
    """

    model: str
    f_port: int
    decode: Callable[[bytes, int | None], FrameValues]
    encode: Callable[[Mapping[str, float]], bytes]
    vendor_fields: Mapping[str, str]
    to_vendor_object: Callable[[Mapping[str, float]], dict[str, object]] = field(repr=False)
    ignored_fields: frozenset[str] = frozenset()
    check_vendor_object: VendorCheck | None = field(default=None, repr=False)
    battery: BatteryCurve | None = None
    # vendor field -> how its number becomes ours, where the vendor's unit or sense differs (mV, a count)
    vendor_conversions: Mapping[str, Callable[[float], float]] = field(default_factory=dict, repr=False)


def vendor_object_of(
    decode: Callable[[bytes, int | None], FrameValues],
    encode: Callable[[Mapping[str, float]], bytes],
    names: Mapping[str, str],
) -> Callable[[Mapping[str, float]], dict[str, object]]:
    """A simulator mirror of a vendor decoder: our frame for ``metrics``, decoded, in the vendor's names."""

    def to_vendor_object(metrics: Mapping[str, float]) -> dict[str, object]:
        decoded = decode(encode(metrics), None).metrics
        return {names[key]: value for key, value in decoded.items() if key in names}

    return to_vendor_object
