"""Device status kept from stored readings and status messages, in a real SQLite and a real PostgreSQL database."""

from __future__ import annotations

import pytest

from devices.readings import Reading
from ingest.devicestate import DeviceStates, _saver
from placesense.basics.db import make_engine

pytestmark = pytest.mark.both_databases


def _reading(device_id: str, ts_ms: int, received_ms: int, battery_pct: float | None) -> Reading:
    return Reading("air", device_id, "air-01", None, ts_ms, {"pm2_5_ugm3": 4.0}, battery_pct, None, "canonical",
                   received_ms)


def test_a_batch_keeps_each_devices_latest_times_and_last_battery(database_url: str) -> None:
    states = DeviceStates(make_engine(database_url))
    states.saw_readings([
        _reading("a", ts_ms=1_000, received_ms=5_000, battery_pct=80.0),
        _reading("b", ts_ms=1_500, received_ms=4_000, battery_pct=None),
        _reading("a", ts_ms=3_000, received_ms=4_500, battery_pct=None),  # later event, earlier receipt
        _reading("a", ts_ms=2_000, received_ms=6_000, battery_pct=79.5),
    ])
    a, b = states.get("a"), states.get("b")
    assert a is not None and b is not None
    assert (a.last_seen_ms, a.last_event_ms, a.battery_pct) == (6_000, 3_000, 79.5)
    assert (b.last_seen_ms, b.last_event_ms, b.battery_pct) == (4_000, 1_500, None)

    states.saw_readings([_reading("a", ts_ms=2_500, received_ms=5_500, battery_pct=None)])  # older than known
    a = states.get("a")
    assert a is not None and (a.last_seen_ms, a.last_event_ms, a.battery_pct) == (6_000, 3_000, 79.5)

    states.flush()  # and it is all saved: a new instance reads the same
    again = DeviceStates(states.engine).get("a")
    assert again == a


def test_a_reading_after_an_offline_status_means_online_again(database_url: str) -> None:
    states = DeviceStates(make_engine(database_url))
    states.saw_status("a", online=False, at_ms=10_000)
    states.saw_readings([_reading("a", ts_ms=9_000, received_ms=9_500, battery_pct=None)])  # received before it
    state = states.get("a")
    assert state is not None and state.online is False and state.status_ms == 10_000
    states.saw_readings([_reading("a", ts_ms=10_500, received_ms=11_000, battery_pct=None)])
    state = states.get("a")
    assert state is not None and state.online is True and state.status_ms == 10_000


@pytest.mark.parametrize("saver", ["the database's own upsert", "delete and insert"])
def test_saving_again_replaces_each_devices_row(database_url: str, saver: str) -> None:
    # SQLite's and PostgreSQL's own upserts, and the delete-and-insert any other database gets.
    states = DeviceStates(make_engine(database_url))
    if saver == "delete and insert":
        states._save = _saver("any other database")
    states.saw_readings([_reading("a", 1_000, 1_100, 80.0), _reading("b", 1_000, 1_200, None)])
    states.saw_status("b", online=False, at_ms=1_300)
    states.flush()
    states.saw_readings([_reading("a", 2_000, 2_100, None)])
    states.saw_status("c", online=True, at_ms=2_200)  # a device first heard of by its status
    states.flush()
    reloaded = DeviceStates(states.engine).all()
    assert reloaded == states.all()
    assert set(reloaded) == {"a", "b", "c"}
    assert (reloaded["a"].last_seen_ms, reloaded["a"].battery_pct, reloaded["a"].online) == (2_100, 80.0, None)
    assert (reloaded["b"].online, reloaded["b"].status_ms) == (False, 1_300)
    assert reloaded["c"].online is True


def test_two_writers_never_move_a_device_status_backwards(database_url: str) -> None:
    # Active/standby: the leader and the instance taking over from it may both save a device's status; whichever
    # saves last, the later reading and the later status win.
    engine = make_engine(database_url)
    newer, older = DeviceStates(engine), DeviceStates(engine)
    newer.saw_readings([_reading("a", 5_000, 5_100, 40.0)])
    newer.saw_status("a", online=True, at_ms=5_200)
    newer.flush()
    older.saw_readings([_reading("a", 1_000, 1_100, 90.0)])
    older.saw_status("a", online=False, at_ms=1_200)
    older.flush()  # saved after the newer one: it must not win
    kept = DeviceStates(engine).get("a")
    assert kept is not None
    assert (kept.last_seen_ms, kept.last_event_ms, kept.battery_pct) == (5_100, 5_000, 40.0)
    assert (kept.online, kept.status_ms) == (True, 5_200)
