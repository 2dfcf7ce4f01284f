"""What every LoRaWAN payload codec shares: the ``Codec`` record, the battery curve and value parsing.

A codec turns one vendor's raw frame bytes into our metric names and units, and back (for the simulator).
It knows nothing of MQTT, topics or network servers; it must not range-check metrics either, because
``devices.decode.finish`` does that once for every source.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from placesense.errors import DecodeError

# Li-SOCl2 primary cells (what Dragino's -LB/LSE01 sensors run on) sit near 3.6 V for most of their life and
# fall off steeply at the end. A straight line from 3.0 V (empty) to 3.6 V (full) is crude in the middle but
# honest at the end that matters: a low-battery rule fires as the voltage drops. Clamped to 0..100.
LI_SOCL2_EMPTY_V = 3.0
LI_SOCL2_FULL_V = 3.6


def battery_pct_from_volts(volts: float) -> float:
    """Rough state of charge of a Li-SOCl2 cell from its voltage (linear 3.0 V → 0 %, 3.6 V → 100 %)."""
    share = (volts - LI_SOCL2_EMPTY_V) / (LI_SOCL2_FULL_V - LI_SOCL2_EMPTY_V)
    return round(min(1.0, max(0.0, share)) * 100, 1)


def volts_from_battery_pct(pct: float) -> float:
    """The inverse of ``battery_pct_from_volts`` (for the simulator, which thinks in percent)."""
    return LI_SOCL2_EMPTY_V + min(100.0, max(0.0, pct)) / 100 * (LI_SOCL2_FULL_V - LI_SOCL2_EMPTY_V)


def vendor_number(value: object, what: str) -> float:
    """A vendor decoder's value as a finite float.

    Vendor JavaScript decoders often hand numbers back as text (``"23.45"`` from ``toFixed``), so numeric
    strings are accepted here; booleans are not, because no soil or battery value is a yes/no.
    """
    if isinstance(value, bool):
        raise DecodeError(f"{what} must be a number, got true/false", kind="wrong_type")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise DecodeError(f"{what} must be a number, got the text {value[:40]!r}", kind="wrong_type") from None
    else:
        raise DecodeError(f"{what} must be a number, got {type(value).__name__}", kind="wrong_type")
    if not math.isfinite(result):
        raise DecodeError(f"{what} is not a finite number", kind="not_finite")
    return result


@dataclass(frozen=True, slots=True)
class Codec:
    """One vendor model's frame format.

    ``decoded_fields`` maps the field names of the vendor's own network-server decoder (what TTN puts in
    ``decoded_payload`` and ChirpStack in ``object``) to our metric names, so a device whose payload is
    decoded upstream still reads the same. ``to_vendor_object`` is the simulator's mirror of that decoder.
    """

    model: str
    f_port: int
    decode: Callable[[bytes], dict[str, float]]
    encode: Callable[[Mapping[str, float]], bytes]
    decoded_fields: Mapping[str, str]
    to_vendor_object: Callable[[Mapping[str, float]], dict[str, object]] = field(repr=False)
