"""Decoders of each source format, looked up by the format name in the registry.

The format modules share ``devices.formats.base`` and never import ``devices.decode``, which imports them.
"""

from __future__ import annotations

from devices.formats import canonical, chirpstack, sensor_community, ttn, zigbee2mqtt
from devices.formats.base import FormatDecoder

FORMAT_DECODERS: dict[str, FormatDecoder] = {
    "canonical": canonical.decode,
    "zigbee2mqtt": zigbee2mqtt.decode,
    "ttn": ttn.decode,
    "chirpstack": chirpstack.decode,
    "sensor_community": sensor_community.decode,
}

__all__ = ["FORMAT_DECODERS"]
