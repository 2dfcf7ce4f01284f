"""Injected anomalies: what can be asked for, and the labelled ground truth of what was injected.

An ``AnomalyRequest`` is what a person asks for (``late_wakeup:h-3fa2c1@9``: type, optional subject, optional
day). The simulation turns each request into an ``Injection`` with a concrete subject, device and time window,
because only the models know, say, when a resident usually gets up. Injections are the ground truth that rule
and detector evaluations score against. This module must not simulate anything itself.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import orjson
from firmware_sim.timebase import rfc3339

AnomalyType = Literal[
    "late_wakeup",
    "night_wandering",
    "more_bathroom_visits",
    "no_movement",
    "cold_home",
    "reduced_kitchen_use",
    "gradual_decline",
    "bed_drying_out",
    "stuck_sensor",
    "pollution_episode",
    "device_offline",
]
ANOMALY_TYPES: tuple[AnomalyType, ...] = get_args(AnomalyType)

# Which kind of subject each type applies to; stuck_sensor and device_offline pick a device of any subject.
HOME_ANOMALIES: frozenset[str] = frozenset(
    {
        "late_wakeup",
        "night_wandering",
        "more_bathroom_visits",
        "no_movement",
        "cold_home",
        "reduced_kitchen_use",
        "gradual_decline",
    }
)
SUBJECT_DOMAIN: dict[str, str | None] = {
    **dict.fromkeys(HOME_ANOMALIES, "home"),
    "bed_drying_out": "soil",
    "pollution_episode": "air",
    "stuck_sensor": None,
    "device_offline": None,
}


@dataclass(frozen=True, slots=True)
class AnomalyRequest:
    """An anomaly to inject. ``subject`` (home, flowerbed, air site or device id) and ``day`` (0 = the local
    day containing the start) are chosen by the simulation's seed when left out."""

    type: AnomalyType
    subject: str | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if self.type not in ANOMALY_TYPES:
            raise ValueError(f"unknown anomaly type {self.type!r}; known: {', '.join(ANOMALY_TYPES)}")
        if self.day is not None and self.day < 0:
            raise ValueError("an anomaly's day counts from 0, the day the simulation starts")


@dataclass(frozen=True, slots=True)
class Injection:
    """One injected anomaly as it really happened: the ground truth."""

    type: AnomalyType
    subject: str
    start_ms: int
    end_ms: int
    device: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def covers(self, ts_ms: int) -> bool:
        return self.start_ms <= ts_ms < self.end_ms

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"type": self.type, "subject": self.subject}
        if self.device is not None:
            record["device"] = self.device
        record["start"] = rfc3339(self.start_ms)
        record["end"] = rfc3339(self.end_ms)
        record["details"] = dict(self.details)
        return record


def parse_anomaly(spec: str) -> AnomalyRequest:
    """Parse ``TYPE[:SUBJECT][@DAY]``, e.g. ``late_wakeup``, ``cold_home:h-3fa2c1``, ``no_movement@12``."""
    text = spec.strip()
    day: int | None = None
    if "@" in text:
        text, day_text = text.rsplit("@", 1)
        try:
            day = int(day_text)
        except ValueError as exc:
            raise ValueError(f"{spec!r}: the day after '@' must be a whole number, got {day_text!r}") from exc
    subject: str | None = None
    if ":" in text:
        text, subject = text.split(":", 1)
        subject = subject or None
    if text not in ANOMALY_TYPES:
        raise ValueError(f"{spec!r}: unknown anomaly type {text!r}; known: {', '.join(ANOMALY_TYPES)}")
    return AnomalyRequest(type=text, subject=subject, day=day)


def random_requests(count: int, seed: int, types: Iterable[AnomalyType] = ANOMALY_TYPES) -> list[AnomalyRequest]:
    """``count`` requests of types drawn without bias, cycling through the types before repeating one."""
    rng = random.Random(f"{seed}:random-anomalies")
    pool = [t for t in types if t != "device_offline"]
    requests: list[AnomalyRequest] = []
    while len(requests) < count:
        batch = list(pool)
        rng.shuffle(batch)
        requests.extend(AnomalyRequest(type=t) for t in batch[: count - len(requests)])
    return requests


def write_ground_truth(injections: Iterable[Injection], path: Path) -> int:
    """Write one JSON object per line; returns how many were written."""
    lines = [orjson.dumps(injection.to_json()) for injection in injections]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return len(lines)


def read_ground_truth(path: Path) -> list[dict[str, Any]]:
    """The records ``write_ground_truth`` wrote, as plain dicts."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
