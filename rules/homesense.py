"""What a home's sensors can see, and what a reading says the resident did.

``HomeSensing.of`` reads the registry once per home: which rooms have any sensor the resident sets off, where
the kitchen can be seen being used, whether a bed, a front door or the bathroom is sensed, and whether motion
sensors cover every sensed room (as firmware-sim's homes, not as most real ones). Rules ask it before they treat
silence as evidence.

``interpret`` turns a reading into what changed (``Change``), using the device's last reported state: a
repeated state (an hourly check-in, a heartbeat) proves the device is alive, not that anyone moved, and gives
None. Every source counts where it means someone did something: PIRs, doors, cupboards, taps, the flush, the
fridge, appliances on smart plugs, bed and chair mats.

This module holds no state of its own (the caller keeps each device's last state) and builds no findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from devices.registry import DeviceSpec, Registry

# A smart plug drawing more than this is in use (a TV, a microwave, a toaster; a kettle has its own threshold).
APPLIANCE_ON_W = 20.0
CONTACT_KINDS = frozenset({"front_door", "fridge_door", "door", "contact", "flush"})
# Devices whose use in the kitchen is kitchen use (food and drink), as opposed to someone passing through.
KITCHEN_USE_KINDS = frozenset({"fridge_door", "kettle", "plug", "contact"})
ACTIVITY_KINDS = CONTACT_KINDS | {"motion", "bed", "chair", "kettle", "plug"}
NOT_UP_ROOMS = frozenset({"bedroom", "bathroom"})

What = Literal["moved", "still", "opened", "closed", "in_bed", "out_of_bed", "sat", "stood", "on", "off"]


@dataclass(frozen=True, slots=True)
class Change:
    """What a reading says happened. ``active`` is whether it shows the resident doing something now (a PIR's
    "no motion" and an appliance switching itself off do not)."""

    what: What
    active: bool


@dataclass(frozen=True, slots=True)
class HomeSensing:
    """What one home's registered devices can observe."""

    rooms: frozenset[str]  # rooms with any device the resident sets off
    kitchen_use: bool  # fridge, kettle, kitchen plugs or cupboards: kitchen use can be seen
    kitchen_motion_only: bool  # no such device, but a PIR in the kitchen: presence there stands in for use
    # where activity means she is up: not the bedroom or bathroom, nor the hallway she crosses to the bathroom at
    # night, unless the home has nothing else; empty when getting up cannot be seen
    up_rooms: frozenset[str]
    bed: bool
    front_door: bool
    bathroom: bool  # any device in the bathroom: visits can be counted
    bathroom_door: bool
    exits_seen: bool  # leaving the bathroom would be seen: a PIR in every other sensed room (a bed in the bedroom
    # will do; a room with nothing but the front door needs none)

    @classmethod
    def of(cls, registry: Registry, home_id: str) -> HomeSensing:
        devices = [d for d in registry.devices.values() if d.subject == home_id and d.kind in ACTIVITY_KINDS]
        rooms = frozenset(d.room or "other" for d in devices)
        pir_rooms = {d.room or "other" for d in devices if d.kind == "motion"}
        seen_rooms = pir_rooms | {d.room or "other" for d in devices if d.kind == "bed"}
        door_only = {
            room for room in rooms if all(d.kind == "front_door" for d in devices if (d.room or "other") == room)
        }
        kitchen_use = any(d.room == "kitchen" and d.kind in KITCHEN_USE_KINDS for d in devices) or any(
            d.kind in ("fridge_door", "kettle") for d in devices
        )
        return cls(
            rooms=rooms,
            kitchen_use=kitchen_use,
            kitchen_motion_only=not kitchen_use and "kitchen" in pir_rooms,
            up_rooms=rooms - NOT_UP_ROOMS - {"hallway"} or rooms - NOT_UP_ROOMS,
            bed=any(d.kind == "bed" for d in devices),
            front_door=any(d.kind == "front_door" for d in devices),
            bathroom="bathroom" in rooms,
            bathroom_door=any(d.room == "bathroom" and d.kind == "door" for d in devices),
            exits_seen="bathroom" in pir_rooms and rooms - {"bathroom"} - door_only <= seen_rooms,
        )

    def is_kitchen_use(self, device: DeviceSpec, change: Change) -> bool:
        """Whether this change is someone using the kitchen (getting food or a drink)."""
        if device.kind == "kettle":
            return change.what == "on"
        if device.kind == "fridge_door":
            return change.what == "opened"
        if device.room != "kitchen":
            return False
        if device.kind == "plug":
            return change.what == "on"
        if device.kind == "contact":
            return change.what == "opened"
        return self.kitchen_motion_only and device.kind == "motion" and change.what == "moved"


def metric_state(device: DeviceSpec, values: Mapping[str, float], kettle_on_w: float) -> float | None:
    """The device's state in this reading as 1 or 0 (plugs: in use or not), None if it carries none."""
    kind = device.kind
    if kind == "motion":
        value = values.get("motion")
    elif kind in CONTACT_KINDS:
        value = values.get("door_open")
    elif kind in ("bed", "chair"):
        value = values.get("occupied")
    elif kind in ("kettle", "plug"):
        power = values.get("power_w")
        threshold = kettle_on_w if kind == "kettle" else APPLIANCE_ON_W
        value = None if power is None else (1.0 if power >= threshold else 0.0)
    else:
        return None
    return None if value is None else (1.0 if value >= 0.5 else 0.0)


def interpret(device: DeviceSpec, previous: float | None, state: float) -> Change | None:
    """What changed, given the device's previous state (None: the first reading heard from it)."""
    on = state >= 0.5
    kind = device.kind
    if previous is None:
        # A device's first message: a resting state says nothing; an active one (a detection, a door open, an
        # appliance on) is most likely what made it send.
        if not on:
            return None
    elif (previous >= 0.5) == on:
        return None  # the same state again: a check-in
    if kind == "motion":
        return Change("moved", True) if on else Change("still", False)
    if kind in CONTACT_KINDS:
        return Change("opened" if on else "closed", True)
    if kind == "bed":
        return Change("in_bed" if on else "out_of_bed", True)
    if kind == "chair":
        return Change("sat" if on else "stood", True)
    # kettles switch themselves off, and so do toasters and microwaves: only switching on is the resident
    return Change("on", True) if on else Change("off", False)
