"""One contract every anomaly/ detector passes (as river's ``checks`` do for its estimators): clone, pickle
round trip, neutral score while warming up, a score that does not change state, and a filter that does not
learn from what it flags. Plus the doctests in the modules' docstrings."""

from __future__ import annotations

import doctest
import importlib
import math
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from anomaly.base import NEUTRAL_SCORE, Detector, EpisodeFilter
from anomaly.series import SeriesDetector

DETECTORS: dict[str, Callable[[], Detector]] = {
    "series": SeriesDetector,
    "series-short-warm-up": lambda: SeriesDetector(warm_up=30, reference_window=60),
}


def _normal(i: int) -> dict[str, float]:
    return {"value": 10.0 + math.sin(i / 7.0) + 0.1 * ((i * 7919) % 13), "timestamp": 1_700_000_000.0 + 300 * i}


def _trained(make: Callable[[], Detector], n: int = 400) -> Detector:
    detector = make()
    for i in range(n):
        detector.learn_one(_normal(i))
    return detector


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_clone_gives_a_fresh_detector_with_the_same_hyperparameters(name: str) -> None:
    detector = _trained(DETECTORS[name])
    fresh = detector.clone()
    assert fresh._get_params() == detector._get_params()
    assert not fresh.warmed_up
    assert fresh.score_one(_normal(0)) == NEUTRAL_SCORE


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_pickle_round_trip_keeps_scores(name: str) -> None:
    detector = _trained(DETECTORS[name])
    restored = pickle.loads(pickle.dumps(detector))
    for i in range(400, 450):
        x = _normal(i) if i != 420 else {"value": 99.0, "timestamp": 1_700_000_000.0 + 300 * i}
        assert restored.score_one(x) == detector.score_one(x)
        restored.learn_one(x)
        detector.learn_one(x)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_neutral_score_while_warming_up_and_scores_in_range(name: str) -> None:
    detector = DETECTORS[name]()
    i = 0
    while not detector.warmed_up:
        assert detector.score_one({"value": 1e6 if i % 2 else -1e6}) == NEUTRAL_SCORE
        detector.learn_one(_normal(i))
        i += 1
    for value in (10.0, 1e9, -1e9, float("nan")):
        assert 0.0 <= detector.score_one({"value": value}) <= 1.0 or math.isnan(value)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_scoring_does_not_change_state(name: str) -> None:
    detector = _trained(DETECTORS[name])
    before = pickle.dumps(detector)
    detector.score_one({"value": 55.0, "timestamp": 1_700_200_000.0})
    assert pickle.dumps(detector) == before


def _model(detector: Any) -> bytes:
    """The detector's state without its memory of flagged departures (``SeriesDetector.remember_one``: their
    sizes, and whether the last point's variance was past its limit)."""
    state = detector.__getstate__()
    if isinstance(state, tuple):
        instance_dict, slots = state
        memory = ("_flagged", "_episode", "_variance_hot")
        return pickle.dumps((instance_dict, {k: v for k, v in slots.items() if k not in memory}))
    return pickle.dumps(state)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_filter_does_not_learn_from_what_it_flags(name: str) -> None:
    flagger = EpisodeFilter(_trained(DETECTORS[name]))
    before = pickle.dumps(flagger.anomaly_detector)
    model = _model(flagger.anomaly_detector)
    score, flagged = flagger.process_one({"value": 500.0, "timestamp": 1_700_200_000.0})
    assert flagged and score >= 0.5
    # Its model of normal is unchanged (at most, the size of the flagged departure is remembered) and the same
    # point is as anomalous as before.
    assert _model(flagger.anomaly_detector) == model
    assert flagger.anomaly_detector.score_one({"value": 500.0, "timestamp": 1_700_200_000.0}) >= 0.5
    # a normal point is learned
    flagger.process_one(_normal(401))
    assert pickle.dumps(flagger.anomaly_detector) != before


def test_filter_accepts_a_lasting_change_as_the_new_normal() -> None:
    flagger = EpisodeFilter(_trained(DETECTORS["series"]))
    flags = [flagger.process_one({"value": _normal(i)["value"] + 40.0, "timestamp": _normal(i)["timestamp"]})[1]
             for i in range(400, 1000)]
    assert flags[0] and sum(flags) == 1
    assert flagger.anomaly_detector.score_one({"value": 50.5, "timestamp": _normal(1000)["timestamp"]}) < 0.5


@pytest.mark.parametrize(
    "module",
    ["anomaly.base", "anomaly.series", "anomaly.seasonal", "anomaly.reference", "anomaly.baseline", "anomaly.decline"],
)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
