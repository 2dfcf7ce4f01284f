"""What the simulator sends, ingest's decoders read back unchanged: same device, metrics and timestamps."""

from __future__ import annotations

from collections.abc import Mapping

from firmware_sim.encoders import ENCODERS, encode
from firmware_sim.fleet import build_fleet
from firmware_sim.simulation import Simulation

from devices.decode import DecodeLimits, decode_message
from devices.formats.zigbee2mqtt import OCCUPANCY_CLEARED_OFFSET_MS
from devices.topics import classify_topic
from placesense.basics.timeunits import DAY_MS

from .conftest import START_MS


def _cleared_offset(source_format: str, metrics: Mapping[str, float]) -> int:
    """Zigbee2MQTT's ``occupancy: false`` is stored a millisecond after its ``last_seen``, so that the one
    Zigbee2MQTT publishes from its own timer never overwrites the motion it ends (devices.formats.zigbee2mqtt)."""
    cleared = metrics.get("motion") == 0 or metrics.get("occupied") == 0
    return OCCUPANCY_CLEARED_OFFSET_MS if source_format == "zigbee2mqtt" and cleared else 0


def test_every_format_round_trips_through_the_decoders() -> None:
    registry = build_fleet(3, 6, 2, seed=5, formats="mix", encoders=tuple(ENCODERS))
    simulation = Simulation(registry, START_MS, START_MS + DAY_MS, seed=5)
    limits = DecodeLimits(max_past_ms=100 * 365 * DAY_MS)  # the window is in the past on purpose
    formats = set()
    for event in simulation.events():
        topic, payload = encode(event.device, event.measurement, "")
        info = classify_topic(topic)
        assert info is not None, topic
        device = registry.lookup(info.format, info.source_id)
        assert device == event.device
        reading = decode_message(info, payload, device, event.send_ms + 5, limits)
        formats.add(device.format)
        for name, value in event.measurement.metrics.items():
            assert abs(float(reading.metrics[name]) - float(value)) <= 0.06, (device.id, name)
        assert reading.ts_ms == event.measurement.ts_ms + _cleared_offset(device.format, reading.metrics), device.id
    assert formats == set(ENCODERS) - {"sensor_community"}
