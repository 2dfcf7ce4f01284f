"""The fleet builder: sizes, pseudonymous ids, formats limited to existing encoders, a registry ingest loads."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from firmware_sim.fleet import SOIL_MODELS, TOWN_LAT, TOWN_LON, build_fleet, write_registry

from devices.registry import load_registry

ALL_FORMATS = ("canonical", "zigbee2mqtt", "ttn", "chirpstack")


def test_sizes_and_home_devices() -> None:
    registry = build_fleet(homes=6, beds=7, air_sites=3, seed=4, formats="canonical")
    assert len(registry.homes) == 6 and len(registry.flowerbeds) == 7 and len(registry.air_sites) == 3
    per_home = Counter(d.subject for d in registry.devices.values() if d.domain == "home")
    assert set(per_home) == set(registry.homes)
    assert all(10 <= n <= 11 for n in per_home.values())
    for home_id in registry.homes:
        assert re.fullmatch(r"h-[0-9a-f]{6}", home_id)
        kinds = Counter(d.kind for d in registry.devices.values() if d.subject == home_id)
        assert kinds["motion"] == 5 and kinds["front_door"] == 1 and kinds["fridge_door"] == 1
        assert kinds["bed"] == 1 and kinds["kettle"] == 1 and kinds["climate"] == 1
        rooms = {d.room for d in registry.devices.values() if d.subject == home_id and d.kind == "motion"}
        assert rooms == {"bedroom", "bathroom", "kitchen", "living_room", "hallway"}
    assert all(d.format == "canonical" for d in registry.devices.values())
    for place in [*registry.flowerbeds.values(), *registry.air_sites.values()]:
        assert abs(place.lat - TOWN_LAT) < 0.02 and abs(place.lon - TOWN_LON) < 0.04


def test_same_seed_same_fleet_and_other_seed_other_ids() -> None:
    assert build_fleet(3, 2, 1, seed=9).to_data() == build_fleet(3, 2, 1, seed=9).to_data()
    assert set(build_fleet(3, 2, 1, seed=9).homes) != set(build_fleet(3, 2, 1, seed=10).homes)


def test_mix_spreads_formats_when_their_encoders_exist() -> None:
    registry = build_fleet(homes=4, beds=6, air_sites=2, seed=2, formats="mix", encoders=ALL_FORMATS)
    formats = Counter((d.domain, d.format) for d in registry.devices.values())
    assert formats[("home", "canonical")] > 0 and formats[("home", "zigbee2mqtt")] > 0
    assert formats[("soil", "canonical")] and formats[("soil", "ttn")] and formats[("soil", "chirpstack")]
    assert formats[("air", "canonical")] == 2
    soil = [d for d in registry.devices.values() if d.domain == "soil"]
    assert {d.model for d in soil} == set(SOIL_MODELS)
    for device in soil:
        if device.format == "chirpstack":
            assert device.source_id is not None and re.fullmatch(r"[0-9a-f]{16}", device.source_id)
    # Every device is found by the id its source format carries.
    for device in registry.devices.values():
        assert registry.lookup(device.format, device.source_id or device.id) == device


def test_mix_falls_back_to_canonical_without_encoders() -> None:
    registry = build_fleet(homes=4, beds=6, air_sites=1, seed=2, formats="mix", encoders=("canonical",))
    assert {d.format for d in registry.devices.values()} == {"canonical"}


def test_written_registry_loads_as_ingest_reads_it(tmp_path: Path) -> None:
    registry = build_fleet(homes=2, beds=3, air_sites=1, seed=5, formats="mix", encoders=ALL_FORMATS)
    path = tmp_path / "registry.yaml"
    write_registry(registry, path)
    assert load_registry(path).to_data() == registry.to_data()
