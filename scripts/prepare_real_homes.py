"""Cut the public recordings of real homes down to the files under ``tests/data/homes`` (run once, by hand).

Each home becomes ``events.csv.gz`` (``start,end,sensor``: the periods a sensor reported its active state, local
time as recorded) and ``activities.csv`` (``start,end,activity``: the residents' own activity labels, local time).
The home's ``home.yaml`` (written by hand) says what each sensor is. Sources, licences and what was cut are in
each set's README.md. This script reads the files as its arguments name them and decides nothing about alerts.

    python scripts/prepare_real_homes.py kasteren-b HOUSEB.sensors HOUSEB.activities HOUSEB.activity_names OUT
    python scripts/prepare_real_homes.py kasteren-c SENSORS.csv ACTIVITIES.csv ACTIVITY_LABELS.txt OUT
    python scripts/prepare_real_homes.py placelab HOUSE.sensors HOUSE.activities HOUSE.activity_names OUT
"""

from __future__ import annotations

import csv
import gzip
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

FORMAT = "%Y-%m-%d %H:%M:%S"
Interval = tuple[datetime, datetime, str]


def _epoch_local(seconds: str) -> datetime:
    # These copies store the recorded local wall-clock time as if it were seconds since the epoch in UTC.
    return datetime.fromtimestamp(int(seconds), tz=UTC).replace(tzinfo=None)


def _columns(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def _names(path: Path) -> dict[str, str]:
    names: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        ident, _, name = line.strip().partition("\t") if "\t" in line else line.strip().partition(" ")
        if ident:
            names[ident.strip()] = name.strip()
    return names


def start_length(sensors: Path, activities: Path, activity_names: Path) -> tuple[list[Interval], list[Interval]]:
    """Files of ``start length id`` rows (seconds), as in the transfer-learning copy of these data sets."""
    events = [(_epoch_local(s), _epoch_local(s) + timedelta(seconds=int(n)), i) for s, n, i in _columns(sensors)]
    names = _names(activity_names)
    labels = [
        (_epoch_local(s), _epoch_local(s) + timedelta(seconds=int(n)), names.get(i, i))
        for s, n, i in _columns(activities)
    ]
    return events, labels


def start_end(sensors: Path, activities: Path, activity_labels: Path) -> tuple[list[Interval], list[Interval]]:
    """CSV rows ``start,end,id[,value]`` with times like ``19-Nov-2008 22:49:00``."""

    def when(text: str) -> datetime:
        return datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S")

    with sensors.open(encoding="utf-8") as handle:
        events = [(when(r[0]), when(r[1]), r[2].strip()) for r in csv.reader(handle) if r]
    names = _names(activity_labels)
    with activities.open(encoding="utf-8") as handle:
        labels = [(when(r[0]), when(r[1]), names.get(r[2].strip(), r[2].strip())) for r in csv.reader(handle) if r]
    return events, labels


def write(out: Path, events: list[Interval], labels: list[Interval], start: datetime, end: datetime) -> None:
    out.mkdir(parents=True, exist_ok=True)
    kept = sorted(e for e in events if start <= e[0] < end)
    with gzip.open(out / "events.csv.gz", "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["start", "end", "sensor"])
        writer.writerows([a.strftime(FORMAT), min(b, end).strftime(FORMAT), s] for a, b, s in kept)
    with (out / "activities.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["start", "end", "activity"])
        writer.writerows(
            [a.strftime(FORMAT), b.strftime(FORMAT), name.strip().lower().replace("_", " ")]
            for a, b, name in sorted(labels)
            if start <= a < end
        )
    print(f"{out}: {len(kept)} sensor events, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}")


def main(argv: list[str]) -> int:
    kind, first, second, third, out = argv
    if kind == "kasteren-c":
        events, labels = start_end(Path(first), Path(second), Path(third))
    else:
        events, labels = start_length(Path(first), Path(second), Path(third))
    # Keep the span the labels cover, in whole hours, so every alert can be judged against them.
    start = min(a for a, _, _ in labels).replace(minute=0, second=0)
    end = max(b for _, b, _ in labels).replace(minute=0, second=0) + timedelta(hours=1)
    write(Path(out), events, labels, start, end)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
