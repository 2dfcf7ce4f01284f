"""Clocks: the live clock follows event time only while a backlog is being replayed."""

from __future__ import annotations

from placesense.basics.clock import MAX_CATCH_UP_MS, RECEIVING_MS, EventClock, LiveClock

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


def _backlog(clock: LiveClock, wall: Wall, hours_ago: float, hours: float, step_min: int = 5) -> None:
    """A broker's backlog: ``hours`` of readings from ``hours_ago``, delivered within a second."""
    start = wall.now - int(hours_ago * HOUR)
    for i in range(int(hours * 60 / step_min) + 1):
        clock.observe(start + i * step_min * 60_000)
    wall.now += 500


def test_live_clock_follows_a_replayed_backlog_then_returns_to_the_wall() -> None:
    wall = Wall(100 * HOUR)
    clock = LiveClock(wall)
    _backlog(clock, wall, hours_ago=12, hours=2)
    assert clock.now_ms() == wall.now - 500 - 10 * HOUR  # old readings are not judged against now
    _backlog(clock, wall, hours_ago=10, hours=1)
    assert clock.now_ms() == wall.now - 500 - 9 * HOUR  # and it follows as the backlog goes on
    clock.observe(wall.now - 1000)  # caught up
    assert clock.now_ms() == wall.now
    clock.observe(wall.now - 10 * HOUR)  # one device's buffered reading does not pull time back
    assert clock.now_ms() == wall.now


def test_live_clock_stops_following_a_backlog_that_stopped_arriving() -> None:
    wall = Wall(100 * HOUR)
    clock = LiveClock(wall)
    _backlog(clock, wall, hours_ago=6, hours=1)
    assert clock.now_ms() < wall.now
    wall.now += RECEIVING_MS + 1
    assert clock.now_ms() == wall.now


def test_old_device_timestamps_never_freeze_or_turn_back_the_clock() -> None:
    # Once, one device repeating an old timestamp (or sending with a clock hours slow) held the estate's time
    # where it was: "no movement for 3 hours" never fired at night, when nothing current arrived.
    wall = Wall(100 * HOUR)
    clock = LiveClock(wall)
    for _ in range(200):  # a stuck clock: the same old time, every few seconds
        clock.observe(100 * HOUR - 5 * HOUR)
        wall.now += 3000
        assert clock.now_ms() == wall.now
    slow = LiveClock(wall)
    for _ in range(200):  # a clock two hours slow, ticking at the right speed
        slow.observe(wall.now - 2 * HOUR)
        wall.now += 10_000
        assert slow.now_ms() == wall.now
    # Even a device faking a backlog is followed only for a while, never for good.
    fake = LiveClock(wall)
    start = wall.now - 48 * HOUR
    for i in range(2000):
        fake.observe(start + i * 60_000)
        wall.now += 1000
    assert fake.now_ms() == wall.now
    assert MAX_CATCH_UP_MS < 2000 * 1000


def test_event_clock_only_moves_forward() -> None:
    clock = EventClock(5)
    clock.observe(10)
    clock.observe(7)
    assert clock.now_ms() == 10
    assert clock.arrival_ms(10, 999) == 10
