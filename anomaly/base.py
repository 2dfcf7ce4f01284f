"""The detector protocol every anomaly/ model follows, and the filter that turns scores into flags.

Detectors follow river's protocol: hyperparameters only in ``__init__`` (so ``clone()`` works), ``learn_one(x)``
updates the model, ``score_one(x)`` returns a score in [0, 1] without changing anything (higher = more
anomalous, ``NEUTRAL_SCORE`` while warming up). ``EpisodeFilter`` wraps a detector: it flags the *start* of an
anomalous episode once, holds back repeated flags for a cool-down, and does not let the detector learn from
what it flags — unless the change persists long enough to be the new normal (a level shift that stays). It
tells a detector with ``remember_one`` the points it keeps from learning, so that a departure recurring in
several separate episodes can become expected without any episode teaching the model of normal.

This module must not know about readings, homes or CSV files: it is the protocol only.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

from river import base

Features = dict[Hashable, Any]
"""What ``learn_one``/``score_one`` take, as in river: feature name -> value."""

NEUTRAL_SCORE = 0.0
"""Score a detector returns while it has not seen enough data to judge (never flags)."""


def severity_to_score(severity: float) -> float:
    """Map a severity (1.0 = exactly at the detector's calibrated limit) into [0, 1): 1.0 -> 0.5."""
    if severity <= 0.0:
        return 0.0
    return severity / (1.0 + severity)


class Detector(base.AnomalyDetector):
    """Base class for placesense detectors: river's ``AnomalyDetector`` with a typed surface.

    Subclasses implement ``learn_one`` and ``score_one``; ``warmed_up`` says whether scores are meaningful yet.
    """

    @property
    def warmed_up(self) -> bool:
        raise NotImplementedError

    def learn_one(self, x: Features) -> None:
        raise NotImplementedError

    def score_one(self, x: Features) -> float:
        raise NotImplementedError


class EpisodeFilter(base.AnomalyFilter):
    """Flag the start of each anomalous episode once; keep the detector from learning what it flags.

    - ``threshold``: scores at or above it are anomalous (detectors here put their calibrated limit at 0.5).
    - ``cooldown``: points after a flag during which no new flag is raised, so one incident is one alert.
    - ``accept_after``: after this many anomalous points in a row the change is taken as the new normal and
      learned again; without it a lasting level shift would stay "anomalous" for ever.
    - ``escalation``: inside an episode already flagged, an anomalous point whose own departure (the detector's
      ``point_severity``, else the score's ``s / (1 - s)``; 1.0 at the limit) is past the limit and at least
      this many times the largest since the episode's last flag starts a new flag, cooldown permitting: a spike
      on top of a noisy spell is a departure of its own, not more of the spell. Off (``inf``) unless asked for.

    >>> from anomaly.series import SeriesDetector
    >>> flagger = EpisodeFilter(SeriesDetector(warm_up=30))
    >>> flags = [flagger.process_one({"value": 10.0 + (i % 3) * 0.1})[1] for i in range(200)]
    >>> any(flags)
    False
    >>> flagger.process_one({"value": 50.0})[1]
    True
    """

    def __init__(
        self,
        anomaly_detector: Detector,
        threshold: float = 0.5,
        cooldown: int = 50,
        accept_after: int = 40,
        protect_anomaly_detector: bool = True,
        escalation: float = math.inf,
    ) -> None:
        super().__init__(anomaly_detector, protect_anomaly_detector)
        self.threshold = threshold
        self.cooldown = cooldown
        self.accept_after = accept_after
        self.escalation = escalation
        # The largest point severity in the flagged episode since its last flag, that flag's own left out.
        self._episode_peak = 0.0
        self._streak = 0
        self._since_flag = cooldown
        self._episode_flagged = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A filter saved before ``escalation`` existed goes on as it was saved: without it.
        self.__dict__.update(state)  # in the saved order, so a restored filter saves as the original did
        self.__dict__.setdefault("escalation", math.inf)
        self.__dict__.setdefault("_episode_peak", 0.0)

    def classify(self, score: float) -> bool:
        return bool(score >= self.threshold)

    def learn_one(self, x: Features) -> None:
        self.process_one(x)

    def _point_severity(self, x: Features, score: float) -> float:
        """How far ``x`` alone departs, for ``escalation``: a detector's ``point_severity`` when it has one (the
        statistics that judge a point by itself, not a window that overlaps the episode's), else the score's."""
        point_severity = getattr(self.anomaly_detector, "point_severity", None)
        if point_severity is not None:
            return float(point_severity(x))
        return score / (1.0 - score) if score < 1.0 else math.inf

    def process_one(self, x: Features) -> tuple[float, bool]:
        """Score ``x``, decide whether it starts a new anomaly, then learn it if it looks normal.

        Returns ``(score, flagged)``. The score depends only on what came before ``x`` and on ``x`` itself.
        """
        score = float(self.anomaly_detector.score_one(x))
        anomalous = self.classify(score)
        flagged = False
        watching = self._episode_flagged and math.isfinite(self.escalation)
        severity = self._point_severity(x, score) if watching else 0.0
        escalated = watching and severity >= max(1.0, self.escalation * self._episode_peak)
        if anomalous:
            self._streak += 1
            if (not self._episode_flagged or escalated) and self._since_flag >= self.cooldown:
                flagged = True
                self._episode_flagged = True
                self._since_flag = 0
                self._episode_peak = 0.0
            else:
                self._episode_peak = max(self._episode_peak, severity)
        else:
            self._streak = 0
            self._episode_flagged = False
            self._episode_peak = 0.0
        if not anomalous or not self.protect_anomaly_detector or self._streak > self.accept_after:
            self.anomaly_detector.learn_one(x)
        else:
            # Not learned, but noted: a detector that keeps the size of what it flagged (SeriesDetector) can tell a
            # departure that keeps coming back, episode after episode, from a new one.
            remember = getattr(self.anomaly_detector, "remember_one", None)
            if remember is not None:
                remember(x)
        self._since_flag += 1
        return score, flagged
