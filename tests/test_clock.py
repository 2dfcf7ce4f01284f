"""Clocks: the live clock follows event time only while a backlog is being replayed."""

from __future__ import annotations

from placesense.clock import CATCH_UP_LAG_MS, RECEIVING_MS, EventClock, LiveClock

HOUR = 3_600_000


class Wall:
    """A wall clock the test moves by hand."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


def test_live_clock_is_the_wall_clock_for_current_readings_and_silence() -> None:
    wall = Wall(100 * HOUR)
    clock = LiveClock(wall)
    assert clock.now_ms() == wall.now
    clock.observe(wall.now - 2000)  # a current reading
    assert clock.now_ms() == wall.now
    wall.now += 3 * HOUR  # then nothing at all: silence is real
    assert clock.now_ms() == wall.now


def test_live_clock_follows_a_replayed_backlog_then_returns_to_the_wall() -> None:
    wall = Wall(100 * HOUR)
    clock = LiveClock(wall)
    for hours_ago in (12, 11, 10):
        clock.observe(wall.now - hours_ago * HOUR)
        assert clock.now_ms() == wall.now - hours_ago * HOUR  # old readings are not judged against now
    clock.observe(wall.now - 1000)  # caught up
    assert clock.now_ms() == wall.now
    clock.observe(wall.now - 10 * HOUR)  # one device's buffered reading does not pull time back
    assert clock.now_ms() == wall.now


def test_live_clock_stops_following_a_backlog_that_stopped_arriving() -> None:
    wall = Wall(100 * HOUR)
    clock = LiveClock(wall)
    clock.observe(wall.now - CATCH_UP_LAG_MS - HOUR)
    assert clock.now_ms() < wall.now
    wall.now += RECEIVING_MS + 1
    assert clock.now_ms() == wall.now


def test_event_clock_only_moves_forward() -> None:
    clock = EventClock(5)
    clock.observe(10)
    clock.observe(7)
    assert clock.now_ms() == 10
    assert clock.arrival_ms(10, 999) == 10
