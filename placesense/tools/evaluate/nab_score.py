"""NAB-style scoring of a detector's flags against labelled anomaly windows (our own implementation).

The Numenta Anomaly Benchmark's scoring, as published (Lavin & Ahmad, "Evaluating Real-time Anomaly Detection
Algorithms — the Numenta Anomaly Benchmark", 2015), rewards a detector for flagging each labelled anomaly early,
once, and penalises flags outside the windows:

- **windows**: each labelled anomaly has a window centred on it whose length is 10 % of the series divided by the
  number of labelled anomalies (a run of consecutive labelled points is one anomaly). A labelled run longer than
  that (benchmarks such as SKAB label all the rows a fault acts on) is its own window. Windows that meet merge.
- **probation**: the first 15 % of a series (at most 750 points) is for learning; flags there are not scored, and
  an anomaly whose labels begin there is not judged (NAB places none there): its window would ask the detector
  to flag it at a time when no flag counts.
- **scaled sigmoid**: ``σ(y) = 2 / (1 + e^(5y)) − 1`` of a flag's position ``y`` relative to the nearest window
  before it: ``y`` runs from −1 at the window's start to 0 at its end and grows past the end in window lengths.
  So an early detection earns almost 1, a late one almost 0, and a flag just after a window costs less than a
  flag far from any anomaly (σ → −1).
- **weights** (the standard profile): ``A_TP = 1``, ``A_FP = −0.11``, ``A_FN = −1``. The first flag inside a
  window scores ``A_TP · σ(y)``; later flags in the same window count for nothing; a flag outside every window
  scores ``|A_FP| · σ(y)`` (negative), or ``A_FP`` before the first window; a window without a flag scores
  ``A_FN``.
- **normalisation**: ``100 · (S − S_null) / (S_perfect − S_null)`` over the whole corpus, where the null detector
  flags nothing (every window a miss) and the perfect one flags every window at its first point.

This module only scores flags; it must not run detectors or read files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

A_TP = 1.0
A_FP = -0.11
A_FN = -1.0
PROBATION_SHARE = 0.15
PROBATION_MAX = 750
WINDOW_SHARE = 0.10


def scaled_sigmoid(position: float) -> float:
    """NAB's scaled sigmoid: about 0.987 at a window's start (−1), 0 at its end, towards −1 far after it."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def windows_from_labels(labels: Sequence[int]) -> list[tuple[int, int]]:
    """Inclusive (start, end) index windows from 0/1 labels, as NAB's: the series' windows together cover 10 %
    of it, shared equally among its labelled runs and centred on each; a labelled run longer than its share (SKAB
    labels the rows a fault acts on) is its own window. Windows that meet are merged."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, label in enumerate(labels):
        if label and start is None:
            start = index
        elif not label and start is not None:
            runs.append((start, index - 1))
            start = None
    if start is not None:
        runs.append((start, len(labels) - 1))
    if not runs:
        return runs
    share = max(1, int(WINDOW_SHARE * len(labels) / len(runs)))
    windows: list[tuple[int, int]] = []
    for begin, end in runs:
        if end - begin + 1 < share:
            # Centred on the run: a point label (or a few points) stands for an anomaly NAB-style, and a
            # detector that sees it coming a little early or a little late is not called wrong.
            middle = (begin + end) // 2
            begin, end = max(0, middle - share // 2), min(len(labels) - 1, middle + share // 2)
        if windows and begin <= windows[-1][1] + 1:
            windows[-1] = (windows[-1][0], max(end, windows[-1][1]))
        else:
            windows.append((begin, end))
    return windows


@dataclass(frozen=True, slots=True)
class SeriesScore:
    """One series' raw scores and counts."""

    score: float
    null_score: float
    perfect_score: float
    windows: int
    detected: int
    false_positives: int


def probation(length: int) -> int:
    return min(PROBATION_MAX, int(PROBATION_SHARE * length))


def score_series(flags: Sequence[int], labels: Sequence[int]) -> SeriesScore:
    """Score one series' 0/1 flags against its 0/1 labels (same length) with the standard profile."""
    if len(flags) != len(labels):
        raise ValueError(f"{len(flags)} flags for {len(labels)} labels")
    windows = windows_from_labels(labels)
    learning = probation(len(labels))
    # An anomaly that begins in the probation period cannot be judged, as flags there do not count: its window is
    # left out, and a flag in it is neither a detection nor a false positive.
    unjudged = [w for w in windows if labels.index(1, w[0]) < learning]
    windows = [w for w in windows if w not in unjudged]
    window_of = [-1] * len(labels)
    for begin, end in unjudged:
        window_of[begin : end + 1] = [-2] * (end - begin + 1)
    for number, (begin, end) in enumerate(windows):
        for index in range(begin, end + 1):
            window_of[index] = number
    total = 0.0
    caught: set[int] = set()
    false_positives = 0
    previous: tuple[int, int] | None = None  # the last window that ended before the current point
    next_window = 0
    for index, flag in enumerate(flags):
        while next_window < len(windows) and windows[next_window][1] < index:
            previous = windows[next_window]
            next_window += 1
        if not flag or index < learning or window_of[index] == -2:
            continue
        number = window_of[index]
        if number >= 0:
            if number in caught:
                continue
            caught.add(number)
            begin, end = windows[number]
            length = end - begin + 1
            position = -(end - index + 1) / length  # −1 at the first point, just under 0 at the last
            total += A_TP * scaled_sigmoid(position)
            continue
        false_positives += 1
        if previous is None:
            total += A_FP
        else:
            begin, end = previous
            position = (index - end) / max(1, end - begin)
            total += -A_FP * scaled_sigmoid(position)
    total += A_FN * (len(windows) - len(caught))
    perfect = sum(A_TP * scaled_sigmoid(-1.0) for _ in windows)
    return SeriesScore(total, A_FN * len(windows), perfect, len(windows), len(caught), false_positives)


def normalised(scores: Sequence[SeriesScore]) -> float:
    """The corpus score on NAB's 0–100 scale (null detector 0, perfect 100; can be negative)."""
    raw = sum(s.score for s in scores)
    null = sum(s.null_score for s in scores)
    perfect = sum(s.perfect_score for s in scores)
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)
