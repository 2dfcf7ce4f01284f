"""A bed's moisture history: one point per step, 72 hours long, in time order even when readings come late."""

from __future__ import annotations

from itertools import pairwise

from placesense.basics.timeunits import HOUR_MS
from rules.watering import HISTORY_MS, HISTORY_STEP_MS, _History


def test_points_closer_than_a_step_move_the_newest_instead_of_adding() -> None:
    history = _History()
    for minute in range(0, 60):  # a reading a minute
        history.add(minute * 60_000, float(minute))
    stamps = [t for t, _ in history.since(0)]
    assert len(stamps) < 60 * 60_000 // HISTORY_STEP_MS * 2  # about one a step, not one a minute
    assert all(b - a < HISTORY_STEP_MS for a, b in pairwise(stamps))  # nothing skipped
    assert stamps == sorted(stamps)
    assert history.last() == (59 * 60_000, 59.0)


def test_points_older_than_the_history_are_dropped() -> None:
    history = _History()
    for hour in range(0, 96):
        history.add(hour * HOUR_MS, 30.0 - hour * 0.1)
    newest = 95 * HOUR_MS
    assert history.since(0)[0][0] == newest - HISTORY_MS
    assert len(history) == HISTORY_MS // HOUR_MS + 1


def test_a_late_reading_takes_its_place_in_time() -> None:
    history = _History()
    for hour in (0, 1, 2, 4):
        history.add(hour * HOUR_MS, 40.0 - hour)
    history.add(3 * HOUR_MS, 10.0)  # buffered by the gateway, delivered after the 04:00 reading
    assert [t // HOUR_MS for t, _ in history.since(0)] == [0, 1, 2, 3, 4]
    assert history.last() == (4 * HOUR_MS, 36.0)
    assert history.lowest_since(2 * HOUR_MS) == 10.0
    assert history.lowest_since(5 * HOUR_MS) is None
