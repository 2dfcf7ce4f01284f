"""The fleet builder: a plausible registry of homes, flowerbeds and air sites around one UK town.

``build_fleet`` returns a ``devices.registry.Registry`` that ingest can load as it is (``write_registry``
saves it as YAML), so a simulated fleet and the service agree on every device. Identifiers are pseudonymous
and derived from the seed only; this module never invents residents' names and never simulates readings.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

import yaml

from devices.registry import Registry, RegistryFile

FormatChoice = Literal["canonical", "mix"]

# Wrexham town centre, where the council's flowerbed pilot ran; beds and air sites spread over ~2 km.
TOWN_LAT, TOWN_LON = 53.0462, -2.9925

# (kind, room, short name) of every home device; the help button is fitted in some homes only.
HOME_DEVICES: tuple[tuple[str, str, str], ...] = (
    ("motion", "bedroom", "pir-bedroom"),
    ("motion", "bathroom", "pir-bathroom"),
    ("motion", "kitchen", "pir-kitchen"),
    ("motion", "living_room", "pir-living"),
    ("motion", "hallway", "pir-hallway"),
    ("front_door", "hallway", "door-front"),
    ("fridge_door", "kitchen", "door-fridge"),
    ("bed", "bedroom", "bed"),
    ("kettle", "kitchen", "plug-kettle"),
    ("climate", "living_room", "climate"),
)
HELP_BUTTON = ("help_button", "living_room", "help")

# Zigbee models as Zigbee2MQTT names them; only realism, the canonical format ignores them.
ZIGBEE_MODELS = {
    "motion": "aqara-rtcgq11lm",
    "front_door": "aqara-mccgq11lm",
    "fridge_door": "aqara-mccgq11lm",
    "bed": "sonoff-snzb-06p",
    "kettle": "tuya-ts011f",
    "climate": "aqara-wsdcgq11lm",
    "help_button": "aqara-wxkg11lm",
}
SOIL_MODELS = ("dragino-lse01", "dragino-se01-lb", "milesight-em500-smtc")
# LoRaWAN vendors' IEEE OUIs, so DevEUIs look like the real ones on a label.
_DEVEUI_PREFIX = {"dragino-lse01": "a84041", "dragino-se01-lb": "a84041", "milesight-em500-smtc": "24e124"}

BED_PLACES = (
    "Queens Square", "Llwyn Isaf", "Bellevue Park", "Regent Street", "High Street", "Hope Street",
    "Acton Park", "Lord Street", "Chester Street", "Henblas Street", "Bridge Street", "Town Hill",
)
AIR_PLACES = (
    "Regent Street", "Chester Road", "Mold Road", "Holt Road", "Grosvenor Road", "Ruabon Road",
    "Bradley Road", "Rhosddu Road",
)


def available_formats() -> frozenset[str]:
    """Source formats whose encoder exists right now in ``firmware_sim.encoders``."""
    from firmware_sim.encoders import ENCODERS

    return frozenset(ENCODERS)


def build_fleet(
    homes: int = 3,
    beds: int = 5,
    air_sites: int = 2,
    seed: int = 1,
    formats: FormatChoice = "mix",
    help_buttons: float = 0.5,
    encoders: Collection[str] | None = None,
) -> Registry:
    """A registry with ``homes`` homes (10-11 devices each), ``beds`` soil sensors and ``air_sites`` air sensors.

    ``formats="mix"`` puts some homes behind Zigbee2MQTT and spreads soil sensors over canonical, TTN and
    ChirpStack, using only formats whose encoder exists (``encoders``, default: the ones installed now); air
    sensors stay canonical. ``help_buttons`` is the share of homes with a help button.
    """
    if min(homes, beds, air_sites) < 0:
        raise ValueError("fleet sizes cannot be negative")
    if formats not in ("canonical", "mix"):
        raise ValueError("formats must be 'canonical' or 'mix'")
    usable = frozenset(encoders) if encoders is not None else available_formats()
    rng = random.Random(f"{seed}:fleet")
    data: dict[str, list[Any]] = {"homes": [], "flowerbeds": [], "air_sites": [], "devices": []}

    home_ids: set[str] = set()
    for index in range(homes):
        home_id = _pseudonym(rng, home_ids)
        data["homes"].append({"id": home_id, "care_team": rng.choice(("north", "south", "central"))})
        # The first home is canonical and the second Zigbee2MQTT, so even a small mixed fleet has both.
        zigbee = formats == "mix" and "zigbee2mqtt" in usable and (index == 1 or (index > 1 and rng.random() < 0.5))
        kinds = list(HOME_DEVICES) + ([HELP_BUTTON] if rng.random() < help_buttons else [])
        for kind, room, short in kinds:
            device_id = f"{home_id}-{short}"
            spec: dict[str, Any] = {"id": device_id, "domain": "home", "subject": home_id, "kind": kind,
                                    "room": room, "model": ZIGBEE_MODELS[kind]}
            if zigbee:
                spec |= {"format": "zigbee2mqtt", "source_id": f"{home_id}_{short.replace('-', '_')}"}
            data["devices"].append(spec)

    soil_formats = [f for f in ("canonical", "ttn", "chirpstack") if f in usable] if formats == "mix" else []
    for index in range(beds):
        bed_id = f"bed-{index + 1:03d}"
        lat, lon = _near_town(rng)
        place = BED_PLACES[index % len(BED_PLACES)]
        data["flowerbeds"].append(
            {"id": bed_id, "name": f"{place} planter {index // len(BED_PLACES) + 1}", "lat": lat, "lon": lon}
        )
        model = SOIL_MODELS[index % len(SOIL_MODELS)]
        source_format = soil_formats[index % len(soil_formats)] if soil_formats else "canonical"
        spec = {"id": f"{bed_id}-soil", "domain": "soil", "subject": bed_id, "kind": "soil", "model": model,
                "lat": lat, "lon": lon, "format": source_format}
        if source_format == "ttn":
            spec["source_id"] = f"wxm-soil-{index + 1:03d}"
        elif source_format == "chirpstack":
            spec["source_id"] = _dev_eui(model, rng)
        data["devices"].append(spec)

    for index in range(air_sites):
        site_id = f"air-{index + 1:02d}"
        lat, lon = _near_town(rng)
        place = AIR_PLACES[index % len(AIR_PLACES)]
        suffix = f" {index // len(AIR_PLACES) + 1}" if index >= len(AIR_PLACES) else ""
        data["air_sites"].append({"id": site_id, "name": f"{place}{suffix}", "lat": lat, "lon": lon})
        data["devices"].append({"id": f"{site_id}-aq", "domain": "air", "subject": site_id, "kind": "air",
                                "model": "placesense-aq1", "lat": lat, "lon": lon})

    return Registry.from_model(RegistryFile.model_validate(data))


def write_registry(registry: Registry, path: Path) -> None:
    """Save ``registry`` as the YAML file ingest reads (``PLACESENSE_REGISTRY_PATH``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated by 'placesense simulate --write-registry'. Home ids are pseudonymous.\n"
    path.write_text(header + yaml.safe_dump(registry.to_data(), sort_keys=False), encoding="utf-8")


def _pseudonym(rng: random.Random, taken: set[str]) -> str:
    while True:
        home_id = f"h-{rng.getrandbits(24):06x}"
        if home_id not in taken:
            taken.add(home_id)
            return home_id


def _near_town(rng: random.Random) -> tuple[float, float]:
    # About ±1.5 km north-south and ±2 km east-west of the centre.
    return round(TOWN_LAT + rng.uniform(-0.0135, 0.0135), 6), round(TOWN_LON + rng.uniform(-0.03, 0.03), 6)


def _dev_eui(model: str, rng: random.Random) -> str:
    return _DEVEUI_PREFIX[model] + f"{rng.getrandbits(40):010x}"
