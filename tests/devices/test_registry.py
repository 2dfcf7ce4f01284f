"""The device registry file: a good file loads; each mistake is a ConfigError naming the line to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.registry import load_registry
from placesense.basics.errors import ConfigError

GOOD = """\
homes:
  - id: h-0042
    name: Mrs Example
    care_team: north
flowerbeds:
  - id: bed-7
    name: Queens Square planter 7
    lat: 53.0462
    lon: -2.9925
    dry_below_pct: 22
air_sites:
  - id: mold-road
    name: Mold Road
    lat: 53.0571
    lon: -3.0059
devices:
  - id: h-0042-hall-pir
    domain: home
    subject: h-0042
    kind: motion
    room: hallway
    format: zigbee2mqtt
    source_id: Hall motion
  - id: bed-7-soil
    domain: soil
    subject: bed-7
    kind: soil
    format: chirpstack
    source_id: A84041C3A1B2C3D4
    model: dragino-se01-lb
  - id: air-mold-road
    domain: air
    subject: mold-road
    kind: air
    format: sensor_community
    source_id: esp8266-1520847
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_registry(_write(tmp_path, text))
    return str(err.value)


def test_good_file_loads_with_lookups(tmp_path: Path) -> None:
    registry = load_registry(_write(tmp_path, GOOD))
    assert set(registry.devices) == {"h-0042-hall-pir", "bed-7-soil", "air-mold-road"}
    assert registry.homes["h-0042"].timezone == "Europe/London"
    assert registry.flowerbeds["bed-7"].dry_below_pct == 22
    assert registry.flowerbeds["bed-7"].wet_above_pct == 70
    soil = registry.lookup("chirpstack", "a84041c3a1b2c3d4")
    assert soil is not None and soil.id == "bed-7-soil" and soil.source_key == "a84041c3a1b2c3d4"
    assert registry.lookup("chirpstack", "A84041C3A1B2C3D4") is soil
    assert registry.lookup("zigbee2mqtt", "Hall motion") is registry.devices["h-0042-hall-pir"]
    assert registry.lookup("zigbee2mqtt", "hall motion") is None  # friendly names are case-sensitive
    assert registry.lookup("ttn", "bed-7-soil") is None


def test_round_trips_through_data(tmp_path: Path) -> None:
    registry = load_registry(_write(tmp_path, GOOD))
    assert type(registry).from_data(registry.to_data()) == registry


def test_devices_share_repeated_values_and_keep_their_own_fields(tmp_path: Path) -> None:
    extra = "".join(
        f"  - {{id: h-0042-pir-{n}, domain: home, subject: h-0042, kind: motion, room: hallway}}\n" for n in range(3)
    )
    registry = load_registry(_write(tmp_path, GOOD + extra))
    pirs = [registry.devices[f"h-0042-pir-{n}"] for n in range(3)]
    # one object for each repeated value, and for each set of fields given in the file
    assert all(p.subject is pirs[0].subject and p.room is pirs[0].room for p in pirs)
    assert all(p.model_fields_set is pirs[0].model_fields_set for p in pirs)
    assert pirs[0].model_fields_set == {"id", "domain", "subject", "kind", "room"}
    assert registry.devices["h-0042-hall-pir"].model_fields_set == pirs[0].model_fields_set | {"format", "source_id"}
    assert registry.devices["h-0042-hall-pir"].subject is pirs[0].subject
    # what the file said is what comes back out
    assert type(registry).from_data(registry.to_data()) == registry
    assert registry.to_data()["devices"][3] == {
        "id": "h-0042-pir-0", "domain": "home", "subject": "h-0042", "kind": "motion", "room": "hallway",
    }


def test_empty_file_is_an_empty_registry(tmp_path: Path) -> None:
    assert load_registry(_write(tmp_path, "")).devices == {}


def test_unknown_field_names_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("    model: dragino-se01-lb\n", "    model: dragino-se01-lb\n    colour: green\n")
    message = _error(tmp_path, text)
    assert ":31: devices.1.colour: Extra inputs are not permitted" in message


def test_bad_value_names_its_line(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD.replace("kind: motion", "kind: toaster"))
    assert ":20: devices.0.kind:" in message
    assert "'motion'" in message  # pydantic lists what was expected


@pytest.mark.parametrize(
    "old, new, line, where",
    [
        ("lat: 53.0462", "lat: 153.0462", 8, "flowerbeds.0.lat"),
        ("dry_below_pct: 22", "dry_below_pct: 82", 6, "flowerbeds.0"),
        ("room: hallway", "room: loft", 21, "devices.0.room"),
        ("format: chirpstack", "format: lorawan", 28, "devices.1.format"),
        ("  - id: air-mold-road", "  - id: Air Mold Road", 31, "devices.2.id"),
        ("    room: hallway\n", "", 17, "devices.0"),
    ],
)
def test_each_mistake_names_its_line(tmp_path: Path, old: str, new: str, line: int, where: str) -> None:
    assert old in GOOD
    message = _error(tmp_path, GOOD.replace(old, new))
    assert f"registry.yaml:{line}: {where}" in message


def test_every_problem_is_listed(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD.replace("kind: motion", "kind: toaster").replace("lon: -3.0059", "lon: 300"))
    assert ":20: devices.0.kind" in message
    assert ":15: air_sites.0.lon" in message


def test_duplicate_device_id_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("  - id: air-mold-road", "  - id: bed-7-soil")
    assert "device 'bed-7-soil' is listed twice" in _error(tmp_path, text)


def test_duplicate_source_id_is_refused(tmp_path: Path) -> None:
    # ChirpStack DevEUIs are compared without case, so these are the same sensor
    extra = (
        "  - id: bed-7-soil-b\n    domain: soil\n    subject: bed-7\n    kind: soil\n    format: chirpstack\n"
        "    source_id: a84041c3a1b2c3d4\n"
    )
    assert "source id 'chirpstack:a84041c3a1b2c3d4' is listed twice" in _error(tmp_path, GOOD + extra)


def test_duplicate_home_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("flowerbeds:\n", "  - id: h-0042\nflowerbeds:\n", 1)
    assert "home, flowerbed or air site id 'h-0042' is listed twice" in _error(tmp_path, text)


def test_a_flowerbed_may_not_share_a_homes_id(tmp_path: Path) -> None:
    # Alerts, dead letters, the audit log and erasure know a subject by its id alone: a bed named like a home
    # would be scoped, audited and erased as that home.
    text = GOOD.replace("flowerbeds:\n  - id: bed-7", "flowerbeds:\n  - id: h-0042", 1)
    assert "flowerbeds:\n  - id: h-0042" in text
    assert "home, flowerbed or air site id 'h-0042' is listed twice" in _error(tmp_path, text)


def test_dangling_subject_is_refused(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD.replace("subject: bed-7", "subject: bed-99"))
    assert "device 'bed-7-soil': subject 'bed-99' is not listed under flowerbeds" in message


@pytest.mark.parametrize(
    "text, words",
    [
        ("devices: [\n", "not valid YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
    ],
)
def test_not_a_registry(tmp_path: Path, text: str, words: str) -> None:
    assert words in _error(tmp_path, text)


def test_missing_file_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PLACESENSE_REGISTRY_PATH"):
        load_registry(tmp_path / "nowhere.yaml")


def test_canonical_devices_cannot_have_another_source_id(tmp_path: Path) -> None:
    text = GOOD.replace("    format: sensor_community\n    source_id: esp8266-1520847\n", "    source_id: other\n")
    assert "canonical devices publish under their own id" in _error(tmp_path, text)
