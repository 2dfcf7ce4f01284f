"""A ``SeriesDetector`` saved by an earlier release restores and goes on exactly as one that never stopped.

``tests/data/state/series-detector-pre-split.json`` was written by the code before the seasonal profile left
``anomaly/series.py`` (issue 22): the detector's statistics, reference window and seasonal profile all as flat
attributes of ``SeriesDetector``. The state file of a running serve holds such detectors (``anomaly.sensors``).
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

from anomaly.base import EpisodeFilter
from anomaly.series import SeriesDetector
from placesense import statecodec

SAVED = Path(__file__).resolve().parents[1] / "data" / "state" / "series-detector-pre-split.json"
START, STEP_S, DAY = 1_700_000_000, 300, 288


def _point(i: int) -> dict[str, float]:
    """The series the saved detector learned: a daily sine, two hours raised after midnight, a little wobble; from
    day 5 on (after the save) a spike and a lasting shift, so flags and remembered episodes are exercised too."""
    value = 10 + 5 * math.sin(2 * math.pi * i / DAY) + 0.3 * math.sin(i * 1.7) + (4.0 if (i % DAY) < 24 else 0.0)
    if i == 5 * DAY + 100:
        value += 25.0
    if i >= 6 * DAY + 50:
        value += 8.0
    return {"value": round(value, 4), "timestamp": START + STEP_S * i}


def _never_stopped() -> EpisodeFilter:
    return EpisodeFilter(SeriesDetector(warm_up=100, memory=20_000, shift_floor=3.0), cooldown=10)


def _go_on(flagger: EpisodeFilter, start: int, stop: int) -> list[tuple[float, bool]]:
    return [flagger.process_one(_point(i)) for i in range(start, stop)]


def test_a_detector_saved_before_the_split_scores_the_next_points_exactly_as_one_that_never_stopped() -> None:
    saved = json.loads(SAVED.read_text(encoding="utf-8"))
    restored = statecodec.decode(saved["flagger"])
    points = saved["points"]
    reference = _never_stopped()
    _go_on(reference, 0, points)
    expected = _go_on(reference, points, points + 3 * DAY)
    got = _go_on(restored, points, points + 3 * DAY)
    assert got == expected  # scores to the last bit, and the same flags
    assert sum(flag for _score, flag in got) >= 2  # the spike and the shift
    # And what each would save now is the same state.
    assert statecodec.encode(restored) == statecodec.encode(reference)


def test_a_detector_saved_before_the_split_also_restores_through_pickle() -> None:
    # A pickle of a slotted detector gives its ``__setstate__`` (None, attributes), as the codec does: the old
    # flat attributes must be taken in by that path too (the previous release's pickled state is read once).
    saved = json.loads(SAVED.read_text(encoding="utf-8"))
    detector = statecodec.decode(saved["flagger"]).anomaly_detector
    points = saved["points"]
    copied = pickle.loads(pickle.dumps(detector))
    reference = _never_stopped()
    _go_on(reference, 0, points)
    for i in range(points, points + DAY):
        x = _point(i)
        assert copied.score_one(x) == reference.anomaly_detector.score_one(x)
        copied.learn_one(x)
        reference.anomaly_detector.learn_one(x)
