"""devices: what a device is (the registry) and how its bytes decode into readings.

It must not store, evaluate or publish anything: decoders are pure functions from (topic, payload, device)
to a ``Reading`` (with the values it refused, each with its reason) or a ``DecodeError`` with a plain reason.
"""

from devices.readings import DOMAINS, METRIC_UNITS, Domain, Reading
from devices.registry import AirSite, DeviceSpec, Flowerbed, Home, Registry, load_registry
from devices.topics import SourceFormat, TopicInfo, classify_topic

__all__ = [
    "DOMAINS",
    "METRIC_UNITS",
    "AirSite",
    "DeviceSpec",
    "Domain",
    "Flowerbed",
    "Home",
    "Reading",
    "Registry",
    "SourceFormat",
    "TopicInfo",
    "classify_topic",
    "load_registry",
]
