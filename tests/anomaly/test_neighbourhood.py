"""The neighbour median of air sites: the same figure as a median over the other sites, computed cheaply."""

from __future__ import annotations

import statistics

from hypothesis import given
from hypothesis import strategies as st

from anomaly.sensors import MIN_NEIGHBOURS, NEIGHBOUR_WINDOW_MS, _Neighbourhood

values = st.floats(min_value=-50, max_value=500, allow_nan=False)


@given(sites=st.dictionaries(st.sampled_from([f"air-{i}" for i in range(12)]), values, max_size=12),
       asking=st.sampled_from([f"air-{i}" for i in range(14)]))
def test_median_of_others_is_the_median_without_the_asking_site(sites: dict[str, float], asking: str) -> None:
    hood = _Neighbourhood()
    for device_id, value in sites.items():
        hood.update(device_id, 1_000, value)
    others = [value for device_id, value in sites.items() if device_id != asking]
    expected = statistics.median(others) if len(others) >= MIN_NEIGHBOURS else None
    assert hood.median_of_others(asking, 2_000) == expected


def test_stale_sites_are_left_out_and_new_values_count_after_a_minute() -> None:
    hood = _Neighbourhood()
    hood.update("old", 0, 900.0)
    for name, value in (("a", 10.0), ("b", 20.0), ("c", 30.0), ("d", 40.0)):
        hood.update(name, NEIGHBOUR_WINDOW_MS, value)
    now = NEIGHBOUR_WINDOW_MS + 1
    assert hood.median_of_others("a", now) == 30.0  # b, c and d; "old" is past the window
    hood.update("b", now, 200.0)
    assert hood.median_of_others("a", now + 1) == 30.0  # within the minute: the sorted values are reused
    assert hood.median_of_others("a", now + 60_000) == 40.0  # refreshed: b's new value counts
    hood.update("d", 0, 40.0)  # d falls silent: two others are too few to outvote one odd site
    assert hood.median_of_others("c", now + 120_000) is None
