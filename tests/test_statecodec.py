"""The state codec: plain state objects to JSON and back, and nothing but placesense's own classes built."""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from placesense.statecodec import StateCodecError, decode, encode, resolve_class
from rules.timers import Timers


@dataclass(slots=True)
class Sample:
    """A state class of the shape the rules keep (defined in a test module: tests is not a placesense package)."""

    count: int = 0
    extra: list[int] = field(default_factory=list)


def test_containers_numbers_and_dates_round_trip_through_json() -> None:
    value = {
        "ints": [1, -2, 2**40],
        "floats": [0.5, -0.0, math.inf, -math.inf],
        "text": "Rose bed",
        "none": None,
        "tuple_keys": {("h-0001", "wake"): 5, ("h-0001", "kitchen"): 6},
        "dates": {date(2024, 1, 31): 7},
        "set": {3, 1, 2},
        "deque": deque([1.0, 2.0], maxlen=28),
        "when": datetime(2024, 1, 31, 9, 30, tzinfo=UTC),
        "zone": ZoneInfo("Europe/London"),
        "bytes": b"\x00\xff",
        "bytearray": bytearray(b"\x01\x02"),
        "doubles": array("d", [1.5, math.nan]),
        "$dollar": 1,
    }
    back = decode(orjson.loads(orjson.dumps(encode(value))))
    assert back["ints"] == value["ints"] and back["text"] == "Rose bed" and back["none"] is None
    assert back["floats"][:2] == [0.5, -0.0] and back["floats"][2:] == [math.inf, -math.inf]
    assert back["tuple_keys"] == value["tuple_keys"] and back["dates"] == value["dates"]
    assert back["set"] == {1, 2, 3}
    assert back["deque"] == value["deque"] and back["deque"].maxlen == 28
    assert back["when"] == value["when"] and back["zone"] == value["zone"]
    assert back["bytes"] == b"\x00\xff" and back["bytearray"] == bytearray(b"\x01\x02")
    assert back["doubles"][0] == 1.5 and math.isnan(back["doubles"][1]) and back["doubles"].typecode == "d"
    assert back["$dollar"] == 1


def test_a_placesense_class_round_trips_with_its_deadlines() -> None:
    timers: Timers[tuple[str, str]] = Timers()
    timers.set(("h-0001", "wake"), 100)
    timers.set(("h-0002", "wake"), 50)
    timers.set(("h-0001", "wake"), 200)  # moved later: a stale heap entry stays behind
    back = decode(orjson.loads(orjson.dumps(encode(timers))))
    assert isinstance(back, Timers)
    assert back.pop_due(1000) == [(50, ("h-0002", "wake")), (200, ("h-0001", "wake"))]


def test_nothing_but_placesense_classes_is_built() -> None:
    for name in ("os:system", "subprocess:Popen", "builtins:eval", "tests.test_statecodec:Sample",
                 "rules.timers:Timers.__init__.__globals__", "rules:../../etc"):
        with pytest.raises(StateCodecError):
            decode({"$o": name, "v": {}})
    with pytest.raises(StateCodecError, match="not a placesense state class"):
        encode(Sample())
    with pytest.raises(StateCodecError):
        encode(lambda: None)
    with pytest.raises(StateCodecError, match="unknown tag"):
        decode({"$exec": "print(1)"})


def test_a_dataclass_missing_a_newer_field_gets_its_default() -> None:
    from anomaly.sensors import _Watch

    saved = {"$o": "anomaly.sensors:_Device", "v": {}}  # written before ``watches`` existed
    device = decode(saved)
    assert device.watches == {}
    assert _Watch.__name__ == "_Watch"


def test_a_class_saved_under_its_old_name_is_read_as_the_class_it_became() -> None:
    from placesense.statecodec import RENAMED
    from rules.home.picture import HomePicture

    # written before home care was split into modules: the per-home picture was rules.home:_Home
    saved = {"$o": "rules.home:_Home", "v": {"tz": {"$tz": "Europe/London"}, "wake_minutes": [
        {"$t": [{"$date": "2024-01-02"}, 455]}]}}
    home = decode(orjson.loads(orjson.dumps(saved)))
    assert isinstance(home, HomePicture)
    assert home.wake_minutes == [(date(2024, 1, 2), 455)] and home.tz == ZoneInfo("Europe/London")
    assert encode(home)["$o"] == "rules.home.picture:HomePicture"  # written under the new name from now on
    for old_name, new in RENAMED.items():  # every alias leads to a class this release has
        assert resolve_class(old_name) is resolve_class(new)
