"""Timers: one deadline per key, moved by setting again, popped earliest first (ties in the order they were set),
and a heap that does not grow with every move."""

from __future__ import annotations

import random

from rules.timers import Timers


def test_setting_again_moves_the_deadline_and_cancel_removes_it() -> None:
    timers: Timers[str] = Timers()
    timers.set("a", 100)
    timers.set("b", 50)
    timers.set("a", 30)
    timers.set("c", 70)
    timers.cancel("c")
    assert (timers.get("a"), timers.get("b"), timers.get("c")) == (30, 50, None)
    assert timers.next_due() == 30
    assert timers.pop_due(60) == [(30, "a"), (50, "b")]
    assert timers.pop_due(10_000) == []
    assert timers.next_due() is None


def test_equal_deadlines_fire_in_the_order_they_were_last_set() -> None:
    timers: Timers[str] = Timers()
    for key in ("x", "y", "z"):
        timers.set(key, 5)
    timers.set("x", 5)  # set again: now the latest of the three
    assert timers.pop_due(5) == [(5, "y"), (5, "z"), (5, "x")]


def test_many_moves_keep_the_heap_bounded_and_the_same_answers_as_a_plain_dict() -> None:
    rng = random.Random(4)
    timers: Timers[int] = Timers()
    expected: dict[int, tuple[int, int]] = {}  # key -> (due, order set)
    now = 0
    for step in range(20_000):
        key = rng.randrange(300)
        if rng.random() < 0.05:
            timers.cancel(key)
            expected.pop(key, None)
        else:
            due = now + rng.randrange(1, 500)
            timers.set(key, due)
            expected[key] = (due, step)
        assert len(timers._heap) <= 2 * len(timers._due) + 65
        if step % 50 == 0:
            now += 40
            due_now = sorted((d, order, k) for k, (d, order) in expected.items() if d <= now)
            assert timers.pop_due(now) == [(d, k) for d, _, k in due_now]
            for _, _, k in due_now:
                del expected[k]
            assert timers.next_due() == min((d for d, _ in expected.values()), default=None)
