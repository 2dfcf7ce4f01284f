"""Device status kept from stored readings and status messages, in a real SQLite database."""

from __future__ import annotations

from pathlib import Path

from devices.readings import Reading
from ingest.devicestate import DeviceStates
from placesense.db import make_engine


def _reading(device_id: str, ts_ms: int, received_ms: int, battery_pct: float | None) -> Reading:
    return Reading("air", device_id, "air-01", None, ts_ms, {"pm2_5_ugm3": 4.0}, battery_pct, None, "canonical",
                   received_ms)


def test_a_batch_keeps_each_devices_latest_times_and_last_battery(tmp_path: Path) -> None:
    states = DeviceStates(make_engine(f"sqlite:///{tmp_path / 'state.db'}"))
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


def test_a_reading_after_an_offline_status_means_online_again(tmp_path: Path) -> None:
    states = DeviceStates(make_engine(f"sqlite:///{tmp_path / 'state.db'}"))
    states.saw_status("a", online=False, at_ms=10_000)
    states.saw_readings([_reading("a", ts_ms=9_000, received_ms=9_500, battery_pct=None)])  # received before it
    state = states.get("a")
    assert state is not None and state.online is False and state.status_ms == 10_000
    states.saw_readings([_reading("a", ts_ms=10_500, received_ms=11_000, battery_pct=None)])
    state = states.get("a")
    assert state is not None and state.online is True and state.status_ms == 10_000
