"""The garbage collector settings of the long-running processes (placesense.basics.memory)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from placesense.basics.memory import collect_set_aside, set_aside


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def frozen_state() -> Iterator[None]:
    yield
    gc.unfreeze()  # leave the test process's collector as it was


@pytest.mark.usefixtures("frozen_state")
def test_set_aside_hides_survivors_and_collect_set_aside_frees_their_cycles() -> None:
    state = {"device": [1.0, 2.0]}
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle: only the collector can free it
    gone = weakref.ref(a)
    set_aside()
    assert not any(obj is state for generation in range(3) for obj in gc.get_objects(generation))
    assert gc.get_freeze_count() > 0
    del a, b
    gc.collect()  # a full collection does not look at what was set aside
    assert gone() is not None
    collect_set_aside()
    assert gone() is None
    assert gc.get_freeze_count() > 0  # and the survivors are set aside again
    assert state["device"] == [1.0, 2.0]
