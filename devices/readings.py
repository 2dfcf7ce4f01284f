"""The ``Reading``: one device's metrics at one instant, after decoding and unit normalisation.

Every source format decodes to this one shape, so the rest of placesense never sees a vendor's field names.
Metric names are the same across sources and carry their unit in the name (``temperature_c``,
``pm2_5_ugm3``); booleans are stored as 1.0/0.0 so a field never changes type in InfluxDB.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

Domain = Literal["home", "soil", "air"]
DOMAINS: tuple[Domain, ...] = ("home", "soil", "air")

# name -> (unit, plain description, valid range). Decoders reject values outside the range.
METRIC_UNITS: dict[str, tuple[str, str, float, float]] = {
    # home
    "motion": ("bool", "movement detected (PIR)", 0, 1),
    "presence": ("bool", "someone in the room (mmWave radar: also while still)", 0, 1),
    "door_open": ("bool", "door or fridge contact open", 0, 1),
    "occupied": ("bool", "bed or chair occupied", 0, 1),
    "power_w": ("W", "appliance power (smart plug)", 0, 10_000),
    "energy_kwh": ("kWh", "appliance energy counter", 0, 1e7),
    "help_pressed": ("bool", "help button pressed", 0, 1),
    "temperature_c": ("°C", "air temperature", -40, 85),
    "humidity_pct": ("%", "relative humidity", 0, 100),
    "link_quality": ("lqi", "Zigbee link quality", 0, 255),
    "co2_ppm": ("ppm", "carbon dioxide (indoor air: ventilation)", 0, 40_000),
    # soil
    "soil_moisture_pct": ("%", "volumetric soil moisture", 0, 100),
    "soil_temperature_c": ("°C", "soil temperature", -40, 85),
    "soil_conductivity_us_cm": ("µS/cm", "soil electrical conductivity", 0, 100_000),
    # air
    "pm2_5_ugm3": ("µg/m³", "particulate matter below 2.5 µm", 0, 2000),
    "pm10_ugm3": ("µg/m³", "particulate matter below 10 µm", 0, 2000),
    "no2_ugm3": ("µg/m³", "nitrogen dioxide", 0, 4000),
    "o3_ugm3": ("µg/m³", "ozone", 0, 2000),
    "pressure_hpa": ("hPa", "air pressure", 300, 1100),
    # device health (any domain)
    "battery_v": ("V", "battery voltage", 0, 15),
    "rssi_dbm": ("dBm", "radio signal strength at the gateway", -200, 20),
    "snr_db": ("dB", "radio signal-to-noise ratio at the gateway", -40, 40),
}


class RefusedMetric(NamedTuple):
    """One value a message carried that could not be stored, while the message's other values were.

    ``metric`` is our metric name, or the vendor's field name when the value never became one of ours;
    ``kind`` is the dead-letter kind (``out_of_range``, ``no_value``, ``probe_absent``...) and ``reason`` a
    sentence a person can act on. Ingest turns each into a dead letter of its own.
    """

    metric: str
    reason: str
    kind: str

    def dead_letter_reason(self) -> str:
        """The reason of this value's own dead letter: what was not stored, that the rest was, and why."""
        return f"{self.metric} not stored (the message's other values were): {self.reason}"


class Reading(NamedTuple):
    """One decoded, validated message from one device.

    ``ts_ms`` is event time (the device's clock where it has one, receive time otherwise);
    ``received_ms`` is when ingest received it. ``seq`` is the device's message counter, if it sends one.
    ``refused`` lists the values of the same message that were not stored, each with its reason (DESIGN.md: one
    impossible metric is dead-lettered alone and the others are kept); it is empty for nearly every message.

    A named tuple: immutable, built in a fraction of a frozen dataclass's time (one is built per message), and it
    crosses the pipe to the evaluation process as a plain tuple.
    """

    domain: Domain
    device_id: str
    subject: str
    room: str | None
    ts_ms: int
    metrics: Mapping[str, float]
    battery_pct: float | None = None
    seq: int | None = None
    source: str = "canonical"
    received_ms: int = 0
    refused: tuple[RefusedMetric, ...] = ()
