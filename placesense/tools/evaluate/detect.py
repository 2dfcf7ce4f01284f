"""``placesense evaluate --detect DIR``: ``placesense detect`` scored NAB-style on labelled real series.

Each file in DIR (``*.csv`` or ``*.csv.gz``) has the columns ``timestamp,value,label``. The timestamp and value go
through ``anomaly.cli.detect_stream`` — the very function ``placesense detect`` runs, as CSV text in and out — and
its ``is_anomaly`` column is scored against the labels with ``placesense.tools.evaluate.nab_score`` (standard
profile). Beside it,
for comparison, the same scoring of baselines: the null detector (flags nothing) and a windowed Gaussian (the
z-score of each value against the mean and deviation of the values before it in a sliding window, one flag per
run of high z) given its *best* threshold on the corpus, as NAB does for every detector it reports.

This module only measures; it must not change how the detector decides.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anomaly.cli import detect_stream
from placesense.basics.errors import PlacesenseError
from placesense.tools.evaluate.nab_score import SeriesScore, normalised, score_series

GAUSSIAN_WINDOW = 300
GAUSSIAN_THRESHOLDS = (3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0)
GAUSSIAN_COOLDOWN = 50  # points after a flag without another, as EpisodeFilter does for ours


class BenchmarkError(PlacesenseError):
    """A labelled series cannot be read."""


@dataclass(frozen=True, slots=True)
class LabelledSeries:
    name: str
    timestamps: list[str]
    values: list[str]
    labels: list[int]


def read_series(path: Path) -> LabelledSeries:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise BenchmarkError(f"{path}: {exc}") from exc
    if not rows or not {"timestamp", "value", "label"} <= set(rows[0]):
        raise BenchmarkError(f"{path}: need the columns timestamp,value,label")
    return LabelledSeries(
        name=path.name.split(".")[0],
        timestamps=[r["timestamp"] for r in rows],
        values=[r["value"] for r in rows],
        labels=[1 if r["label"].strip() not in ("", "0", "0.0") else 0 for r in rows],
    )


def load_benchmark(folder: Path) -> list[LabelledSeries]:
    files = sorted(p for p in folder.iterdir() if p.name.endswith((".csv", ".csv.gz")) and p.name != "index.csv")
    if not files:
        raise BenchmarkError(f"{folder}: no labelled series (*.csv or *.csv.gz with timestamp,value,label)")
    return [read_series(p) for p in files]


def detect_flags(series: LabelledSeries) -> list[int]:
    """``placesense detect`` on the series, exactly as the CLI runs it; returns its is_anomaly column."""
    source = io.StringIO()
    writer = csv.writer(source, lineterminator="\n")
    writer.writerow(["timestamp", "value"])
    writer.writerows(zip(series.timestamps, series.values, strict=True))
    source.seek(0)
    sink = io.StringIO()
    detect_stream(source, sink)
    sink.seek(0)
    return [int(row["is_anomaly"]) for row in csv.DictReader(sink)]


def gaussian_z(values: Sequence[str], window: int = GAUSSIAN_WINDOW) -> list[float]:
    """|z| of each value against the previous ``window`` values (0 until 30 are seen)."""
    recent: deque[float] = deque(maxlen=window)
    total = squares = 0.0
    out: list[float] = []
    for text in values:
        try:
            value = float(text)
        except ValueError:
            out.append(0.0)
            continue
        z = 0.0
        if len(recent) >= 30:
            mean = total / len(recent)
            spread = math.sqrt(max(squares / len(recent) - mean * mean, 0.0))
            z = abs(value - mean) / spread if spread > 0 else (0.0 if value == mean else math.inf)
        if len(recent) == recent.maxlen:
            old = recent[0]
            total -= old
            squares -= old * old
        recent.append(value)
        total += value
        squares += value * value
        out.append(z)
    return out


def flags_from_z(z: Sequence[float], threshold: float) -> list[int]:
    flags, since = [], GAUSSIAN_COOLDOWN
    for value in z:
        flag = value >= threshold and since >= GAUSSIAN_COOLDOWN
        flags.append(int(flag))
        since = 0 if flag else since + 1
    return flags


def _summary(scores: list[SeriesScore]) -> dict[str, Any]:
    return {
        "nab_standard": round(normalised(scores), 1),
        "windows": sum(s.windows for s in scores),
        "detected": sum(s.detected for s in scores),
        "false_positives": sum(s.false_positives for s in scores),
    }


def evaluate_detect(folder: Path) -> dict[str, Any]:
    """Score ``placesense detect`` and the baselines on every labelled series in ``folder``."""
    corpus = load_benchmark(folder)
    ours = [score_series(detect_flags(s), s.labels) for s in corpus]
    zs = [gaussian_z(s.values) for s in corpus]
    gaussian: dict[str, Any] = {}
    for threshold in GAUSSIAN_THRESHOLDS:
        scored = [score_series(flags_from_z(z, threshold), s.labels) for z, s in zip(zs, corpus, strict=True)]
        summary = _summary(scored)
        if not gaussian or summary["nab_standard"] > gaussian["nab_standard"]:
            gaussian = {**summary, "threshold": threshold}
    null = [score_series([0] * len(s.labels), s.labels) for s in corpus]
    clean = [s.name for s in corpus if not any(s.labels)]
    return {
        "series": len(corpus),
        "points": sum(len(s.labels) for s in corpus),
        "placesense_detect": _summary(ours),
        "windowed_gaussian_best_threshold": gaussian,
        "null": _summary(null),
        "flags_on_unlabelled_series": {
            s.name: sum(detect_flags(s)) for s in corpus if s.name in clean
        },
        "per_series": {
            s.name: {"windows": sc.windows, "detected": sc.detected, "false_positives": sc.false_positives}
            for s, sc in zip(corpus, ours, strict=True)
        },
    }
