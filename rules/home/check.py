"""What a home-care check is: the small protocols through which the dispatcher (``rules.home.dispatcher``) hands
each check a reading, her activity, her coming home or one of its timers coming due; what every check shares (the
registry, the rules config, the timers, what each home's sensors can see); and how a check names what a device
senses. Findings are worded by ``placesense.basics.findings.care_finding``, as the routine detector's are.

A check keeps no state of its own: all it tracks and learns of a home is in the picture (``rules.home.picture``),
which is what gets saved. This module must not touch alerts, storage or MQTT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from devices.readings import Reading
from devices.registry import DeviceSpec, Registry
from placesense.basics.findings import Finding
from placesense.basics.texts import Text, text
from rules.config import SectionLookup
from rules.home.picture import HomePicture
from rules.homesense import Change, HomeSensing
from rules.timers import Timers

Evidence = dict[str, float | int | str | None]


@dataclass(frozen=True, slots=True)
class Shared:
    """What the dispatcher gives every check: one set of timers keyed ``(home id, kind)`` for all of them."""

    registry: Registry
    lookup: SectionLookup
    timers: Timers[tuple[str, str]]
    sensing: Mapping[str, HomeSensing]  # what each home's sensors can see: from the registry, not state


@dataclass(frozen=True, slots=True)
class Activity:
    """A change that is hers (not a check-in, not one device alone in an empty home), as the checks are handed it.
    ``gap_start`` is her last activity before this one."""

    reading: Reading
    device: DeviceSpec
    change: Change
    came_home: bool
    gap_start: int | None
    room: str


class ReactsToReading(Protocol):
    """Looks at every reading of the home as it arrives, before it is read as anyone's activity."""

    def on_reading(self, reading: Reading, device: DeviceSpec, home: HomePicture) -> list[Finding]: ...


class NoticesActivity(Protocol):
    """Looks at her activity before the picture records it, while what came before is still there."""

    def before_activity(self, seen: Activity, home: HomePicture) -> list[Finding]: ...


class ReactsToActivity(Protocol):
    """Reacts to her activity once the picture has recorded it."""

    def on_activity(self, seen: Activity, home: HomePicture) -> list[Finding]: ...


class NoticesComingHome(Protocol):
    """Learns from a spell out, when she comes home from it (``out_ms`` to ``back_ms``)."""

    def came_home(self, home_id: str, home: HomePicture, out_ms: int, back_ms: int) -> None: ...


class Timed(Protocol):
    """Sets timers of its own ``timer_kinds`` (the key is ``(home id, kind)``, or ``(home id, "kind:detail")``)
    and reacts when one comes due."""

    timer_kinds: frozenset[str]

    def on_due(self, home_id: str, home: HomePicture, what: str, due_ms: int) -> list[Finding]: ...


class StartsTimers(Protocol):
    """Sets a home's first deadlines when the rules start without a saved state for it."""

    def start(self, home_id: str, home: HomePicture, now_ms: int) -> None: ...


def what_sensed(device: DeviceSpec) -> Text:
    """'movement in the kitchen': what the device senses, and where (words in ``placesense.basics.texts.SENSORS``)."""
    return text("sensor_in_room", kind=device.kind, room=device.room)
