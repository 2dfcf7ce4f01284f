"""Recordings of real homes (``tests/data/homes``), replayed as the readings their devices would have sent.

A recorded home is a folder with ``home.yaml`` (what each sensor is: placesense kind, room, polarity; what each
activity label says about the resident), ``events.csv.gz`` (the periods each sensor reported its active state,
local time) and ``activities.csv`` (the residents' own labels, local time). ``load_home`` reads one;
``RecordedHome.activations`` turns its sensors into *activations* per placesense device (door open, mat
occupied, PIR seeing movement, appliance in use), which the evaluation may edit
(``placesense.tools.evaluate.inject``) before
``device_readings`` sends them as devices do:

- a contact (door, cupboard, fridge, flush) reports each change of state;
- a PIR reports ``motion`` on its first detection and "no motion" after ``PIR_HOLD_MS`` of quiet, like the Aqara
  and Zigbee2MQTT PIRs; detections closer than that are one;
- a bed or chair mat reports occupied and free, a free spell shorter than its controller's delay being no change
  (``BED_HOLD_MS``, ``CHAIR_HOLD_MS``: a restless sleeper's mat would otherwise flicker all night);
- a smart plug reports the appliance's power while in use and 0 after;
- every device checks in about hourly repeating its state, as Zigbee sensors and firmware-sim do.

This module reads data and builds readings; it knows nothing of rules, detectors or alerts.
"""

from __future__ import annotations

import csv
import gzip
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from devices.readings import Reading
from devices.registry import Registry
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS, SECOND_MS

PIR_HOLD_MS = 90 * SECOND_MS
BED_HOLD_MS = 5 * MINUTE_MS
CHAIR_HOLD_MS = 60 * SECOND_MS
CHECK_IN_MS = (50 * MINUTE_MS, 60 * MINUTE_MS)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# Where the resident is, as a label says: asleep, out, or at home and awake (in the toilet, washing, in the
# kitchen, or doing anything else).
STATES = ("asleep", "out", "toilet", "washing", "kitchen", "home")
HOME_KINDS_REPLAYED = ("motion", "front_door", "fridge_door", "door", "contact", "flush", "bed", "chair", "plug")


@dataclass(frozen=True, slots=True)
class SensorSpec:
    sensor: str
    name: str
    kind: str
    room: str
    device: str
    inverted: bool = False
    watts: float = 0.0


@dataclass(frozen=True, slots=True)
class Label:
    start_ms: int
    end_ms: int
    activity: str
    state: str


@dataclass(frozen=True, slots=True)
class Activation:
    """A device in its active state over [start_ms, end_ms): a door open, a mat occupied, a PIR seeing movement,
    an appliance in use. ``injected`` marks activations an evaluation added."""

    start_ms: int
    end_ms: int
    device: str
    injected: bool = False


@dataclass
class RecordedHome:
    key: str  # "kasteren/house-b"
    name: str
    timezone: str
    home_id: str  # pseudonymous, as placesense would know it
    sensors: dict[str, SensorSpec]
    events: list[tuple[int, int, str]]  # (start_ms, end_ms, sensor) as recorded
    labels: list[Label]
    start_ms: int
    end_ms: int
    devices: dict[str, SensorSpec] = field(default_factory=dict)  # device id -> its first sensor's spec

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def device_id(self, device: str) -> str:
        return f"{self.home_id}-{device}"

    def registry_data(self) -> dict[str, Any]:
        """This home and its devices as registry data (``Registry.from_data``)."""
        return {
            "homes": [{"id": self.home_id, "name": self.name, "timezone": self.timezone}],
            "devices": [
                {"id": self.device_id(device), "domain": "home", "subject": self.home_id, "kind": spec.kind,
                 "room": spec.room}
                for device, spec in sorted(self.devices.items())
            ],
        }

    def activations(self) -> list[Activation]:
        """Each device's active spells from its sensors (polarity corrected, sensors of one device joined),
        earliest first."""
        by_device: dict[str, list[tuple[int, int]]] = {}
        recorded: dict[str, list[tuple[int, int]]] = {}
        for start, end, sensor in self.events:
            if sensor in self.sensors:
                recorded.setdefault(sensor, []).append((start, max(end, start + SECOND_MS)))
        for sensor, spans in recorded.items():
            spec = self.sensors[sensor]
            spans = _union(spans, 0)
            if spec.inverted:  # active in the gaps between the recorded "on" spells
                edges = [self.start_ms, *[t for span in spans for t in span], self.end_ms]
                spans = [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b > a]
            by_device.setdefault(spec.device, []).extend(spans)
        result: list[Activation] = []
        for device, spans in by_device.items():
            hold = {"motion": PIR_HOLD_MS, "bed": BED_HOLD_MS, "chair": CHAIR_HOLD_MS}.get(self.devices[device].kind, 0)
            result += [Activation(a, b, device) for a, b in _union(spans, hold)]
        result.sort(key=lambda a: (a.start_ms, a.device))
        return result


def _union(spans: Iterable[tuple[int, int]], hold_ms: int) -> list[tuple[int, int]]:
    """Overlapping spans, and spans less than ``hold_ms`` apart, as one."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + hold_ms:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _local_ms(text: str, tz: ZoneInfo) -> int:
    return int(datetime.strptime(text, TIME_FORMAT).replace(tzinfo=tz).timestamp() * 1000)


def find_homes(root: Path) -> list[Path]:
    """Every recorded home (a folder with ``home.yaml``) under ``root``, in name order."""
    if (root / "home.yaml").is_file():
        return [root]
    return sorted(path.parent for path in root.rglob("home.yaml"))


def load_home(directory: Path, root: Path | None = None) -> RecordedHome:
    """Read a recorded home; ``root`` names it (its key is the path below ``root``)."""
    spec = yaml.safe_load((directory / "home.yaml").read_text(encoding="utf-8"))
    tz = ZoneInfo(spec["timezone"])
    key = directory.relative_to(root).as_posix() if root is not None and directory != root else directory.name
    home_id = "h-" + "".join(c if c.isalnum() else "-" for c in key.lower()).strip("-")
    sensors: dict[str, SensorSpec] = {}
    devices: dict[str, SensorSpec] = {}
    for sensor, entry in spec["sensors"].items():
        kind = entry["kind"]
        if kind not in HOME_KINDS_REPLAYED:
            raise ValueError(f"{directory}: sensor {sensor}: kind {kind!r} cannot be replayed")
        device = str(entry.get("device") or f"s{sensor}")
        sensors[str(sensor)] = SensorSpec(
            sensor=str(sensor), name=str(entry.get("name", sensor)), kind=kind, room=entry["room"], device=device,
            inverted=bool(entry.get("inverted", False)), watts=float(entry.get("watts", 0.0)),
        )
        devices.setdefault(device, sensors[str(sensor)])
    with gzip.open(directory / "events.csv.gz", "rt", encoding="utf-8") as handle:
        events = [(_local_ms(r["start"], tz), _local_ms(r["end"], tz), r["sensor"]) for r in csv.DictReader(handle)]
    states: dict[str, str] = spec.get("labels", {})
    with (directory / "activities.csv").open(encoding="utf-8") as handle:
        labels = [
            Label(_local_ms(r["start"], tz), _local_ms(r["end"], tz), r["activity"], states.get(r["activity"], "home"))
            for r in csv.DictReader(handle)
        ]
    start = min([e[0] for e in events] + [label.start_ms for label in labels])
    # Whole local hours: the recording runs until its last event or label, rounded up.
    end = max([e[1] for e in events] + [label.end_ms for label in labels])
    end += -end % HOUR_MS
    return RecordedHome(
        key=key, name=spec.get("name", key), timezone=spec["timezone"], home_id=home_id, sensors=sensors,
        events=sorted(events), labels=sorted(labels, key=lambda label: label.start_ms), start_ms=start, end_ms=end,
        devices=devices,
    )


def registry_for(homes: Iterable[RecordedHome]) -> Registry:
    data: dict[str, list[Any]] = {"homes": [], "devices": []}
    for home in homes:
        part = home.registry_data()
        data["homes"] += part["homes"]
        data["devices"] += part["devices"]
    return Registry.from_data(data)


def device_readings(
    home: RecordedHome, activations: Iterable[Activation], start_ms: int, end_ms: int, seed: int = 1
) -> Iterator[Reading]:
    """The readings the home's devices send for ``activations`` over [start_ms, end_ms), in time order.

    Each device starts with a report of its state at ``start_ms`` (as a device that has just joined), sends each
    change, and checks in with its last state 50–60 min after its last message.
    """
    per_device: dict[str, list[tuple[int, int]]] = {device: [] for device in home.devices}
    for activation in activations:
        per_device.setdefault(activation.device, []).append((activation.start_ms, activation.end_ms))
    streams = [
        _device_stream(home, device, spans, start_ms, end_ms, random.Random(f"{seed}:{home.key}:{device}"))
        for device, spans in sorted(per_device.items())
    ]
    merged: list[tuple[int, str, dict[str, float]]] = [item for stream in streams for item in stream]
    merged.sort(key=lambda item: (item[0], item[1]))
    seq: dict[str, int] = {}
    for ts, device, metrics in merged:
        spec = home.devices[device]
        seq[device] = seq.get(device, 0) + 1
        yield Reading(
            domain="home", device_id=home.device_id(device), subject=home.home_id, room=spec.room, ts_ms=ts,
            metrics=metrics, seq=seq[device],
        )


def _device_stream(
    home: RecordedHome, device: str, spans: list[tuple[int, int]], start_ms: int, end_ms: int, rng: random.Random
) -> list[tuple[int, str, dict[str, float]]]:
    spec = home.devices[device]
    hold = PIR_HOLD_MS if spec.kind == "motion" else 0
    changes: list[tuple[int, bool]] = []
    active_at_start = False
    for start, end in _union(spans, hold):
        off = end + hold
        if off <= start_ms or start >= end_ms:
            continue
        if start <= start_ms:
            active_at_start = True
        else:
            changes.append((start, True))
        if off < end_ms:
            changes.append((off, False))
    metric = {"motion": "motion", "bed": "occupied", "chair": "occupied", "plug": "power_w"}.get(spec.kind, "door_open")
    watts = spec.watts or 100.0

    def value(active: bool) -> dict[str, float]:
        if metric == "power_w":
            return {metric: watts if active else 0.0}
        return {metric: 1.0 if active else 0.0}

    out: list[tuple[int, str, dict[str, float]]] = []
    last_ts = start_ms + rng.randrange(0, 5 * MINUTE_MS)  # devices do not all join in the same second
    state = active_at_start
    out.append((last_ts, device, value(state)))
    for ts, active in [*changes, (end_ms, state)]:
        while True:  # check-ins while nothing changes
            due = last_ts + rng.randint(*CHECK_IN_MS)
            if due >= min(ts, end_ms):
                break
            out.append((due, device, value(state)))
            last_ts = due
        if ts >= end_ms:
            break
        ts = max(ts, last_ts + 1)  # one device never sends two messages in the same millisecond
        state = active
        out.append((ts, device, value(state)))
        last_ts = ts
    return out


def local_text(ts_ms: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=tz).strftime("%a %d %b %H:%M")
