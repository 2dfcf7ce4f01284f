"""``placesense detect``: stream a ``timestamp,value`` CSV through the generic detector.

Reads one row, scores it, learns it, writes it: one row out per row in, in order, and a row's score depends only
on the rows before it and itself (no look-ahead). Memory stays flat however long the file is. Rows with a
missing or non-numeric value are copied through with score 0 and are not learned.

This module only moves rows between files and the detector; the statistics live in ``anomaly.series``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from anomaly.base import EpisodeFilter, Features
from anomaly.series import SeriesDetector
from placesense.basics.errors import PlacesenseError

# How ``placesense detect`` sets up the detector for a series it knows nothing about (the street's per-sensor
# detectors in ``anomaly.sensors`` set their own). Measured with ``placesense evaluate --detect`` on two labelled
# sets, SKAB and Microsoft's cloud monitoring series, never on one alone:
WARM_UP = 100  # points learned before judging: about the first 15 % NAB gives a detector of a short series
COOLDOWN = 10  # points after a flag without another: a second, different departure soon after is news too
MEMORY = 20_000  # half-life of the records, in points: a per-minute series still knows last week's busy hours
ESCALATION = 3.0  # a spike 3 times any since a flag, inside its episode, is a new departure (a burst on a noisy spell)
SHIFT_FLOOR = 3.0  # a level shift is at least 3 typical deviations (the street's soil probes wait for 3.5)


class DetectInputError(PlacesenseError):
    """The input CSV cannot be read as ``timestamp,value``."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, type=Path, help="CSV with a header and columns timestamp,value")
    parser.add_argument("--output", required=True, type=Path, help="CSV to write: timestamp,value,score,is_anomaly")
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="score at which a point is anomalous (default 0.5)"
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the summary line")


def parse_timestamp(text: str) -> float | None:
    """Epoch seconds from ISO 8601 (naive = UTC) or an epoch number in seconds or milliseconds."""
    text = text.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number / 1000.0 if number > 1e11 else number
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _rows(handle: IO[str]) -> Iterator[tuple[str, str]]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    names = [h.strip().lower() for h in header]
    try:
        ts_col, value_col = names.index("timestamp"), names.index("value")
    except ValueError as exc:
        raise DetectInputError(f"the header must name the columns timestamp and value, got {header}") from exc
    for row in reader:
        if not row:
            continue
        ts = row[ts_col] if ts_col < len(row) else ""
        value = row[value_col] if value_col < len(row) else ""
        yield ts, value


def detect_stream(source: IO[str], sink: IO[str], threshold: float = 0.5) -> tuple[int, int, float]:
    """Score every row of ``source`` into ``sink``. Returns (rows, anomalies flagged, seconds spent scoring)."""
    detector = SeriesDetector(warm_up=WARM_UP, memory=MEMORY, shift_floor=SHIFT_FLOOR)
    flagger = EpisodeFilter(detector, threshold=threshold, cooldown=COOLDOWN, escalation=ESCALATION)
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(["timestamp", "value", "score", "is_anomaly"])
    rows = flagged_total = 0
    spent = 0.0
    for ts_text, value_text in _rows(source):
        rows += 1
        try:
            value = float(value_text)
        except ValueError:
            value = float("nan")
        if value != value or value in (float("inf"), float("-inf")):
            writer.writerow([ts_text, value_text, "0.000000", 0])
            continue
        x: Features = {"value": value, "timestamp": parse_timestamp(ts_text)}
        started = time.perf_counter()
        score, flagged = flagger.process_one(x)
        spent += time.perf_counter() - started
        flagged_total += flagged
        writer.writerow([ts_text, value_text, f"{score:.6f}", int(flagged)])
    return rows, flagged_total, spent


def run(args: argparse.Namespace) -> int:
    try:
        with args.input.open(newline="", encoding="utf-8") as source, args.output.open(
            "w", newline="", encoding="utf-8"
        ) as sink:
            rows, flagged, spent = detect_stream(source, sink, args.threshold)
    except OSError as exc:
        raise DetectInputError(f"{exc.filename}: {exc.strerror}") from exc
    if not args.quiet:
        per_point = 1e6 * spent / rows if rows else 0.0
        print(
            f"placesense detect: {rows} rows, {flagged} anomalies flagged, {per_point:.1f} µs per point",
            file=sys.stderr,
        )
    return 0
