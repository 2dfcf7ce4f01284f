"""Where she is, as her home's sensors show it: the part of a home's picture that the care rules (``rules.home``)
and the routine detector (``anomaly.homeday``) both keep, with one meaning for both.

``Presence`` holds each device's last reported state (so a check-in is told from a change), when each PIR began
seeing movement, her last activity, the front door's last use, and since when she is out. ``observe`` reads one
reading into it, once, and returns what it saw (``Seen``): whether anything changed, whether it was her, when she
moved, her coming back, and her last activity and the front door as they were before it. In serve and replays
(``placesense.evaluation_core``) one ``Presence`` per home is shared: the rules observe each reading and the
detector reads the same ``Seen`` (``SharedPresence``); each side's timers run before the reading is observed, so
they see the home as it was until then.

This module judges nothing: it builds no findings, sets no timers and reads no rules config. What each side
learns from her day (wake-up times, visits, the routine day's features) stays with that side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from devices.readings import Reading
from devices.registry import DeviceSpec
from placesense.basics.timeunits import MINUTE_MS
from rules.homesense import Change, interpret

# The front door used, nothing of hers later than this after it (a hallway PIR's last report as she goes), and
# nothing at all for this long since: she went out.
LEFT_HOME_MS = 2 * MINUTE_MS
STAYED_AFTER_MS = MINUTE_MS
PIR_HOLD_MS = 90_000  # a PIR's "no motion" comes a minute or two after the last movement it saw
STUCK_PIR_MS = 30 * MINUTE_MS  # a PIR "seeing movement" for longer is stuck; its "no motion" says nothing
PRESENCE_CONFIRM_MS = 10 * MINUTE_MS  # while she is out, a device is believed when another agrees this soon


@dataclass(frozen=True, slots=True)
class Seen:
    """What one reading that changed something showed (``Presence.observe``).

    ``hers``: it is her activity, at ``at_ms`` (the reading's time; for a PIR's "no motion", hers when it dates her
    movement, the moment she was last moving). A change that is no activity, an appliance switching itself off, is
    not hers; nor is one device alone while she is out. ``came_home``: she was out until it; ``out_since_ms``: since
    when (None if she was not out). ``before_ms`` and ``door_before_ms``: her last activity and the front door's
    last use before it."""

    change: Change
    hers: bool
    at_ms: int
    came_home: bool
    out_since_ms: int | None
    before_ms: int | None
    door_before_ms: int | None


@dataclass(slots=True)
class Presence:
    """One home's devices' last states, her last activity and whether she is out: plain data."""

    device_state: dict[str, float] = field(default_factory=dict)  # device id -> last reported state (1/0)
    motion_since: dict[str, int] = field(default_factory=dict)  # PIR device id -> when it last saw movement
    while_out: dict[str, int] = field(default_factory=dict)  # device id -> its last activity while she was out
    last_activity_ms: int | None = None
    last_front_door_ms: int | None = None
    out_since_ms: int | None = None  # out of the home since the front door (a state, not a fall)

    @classmethod
    def gather(cls, fields: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
        """A saved picture's fields with its presence in ``fields["presence"]``: a picture saved before presence
        was shared kept these among its own (``names``: this class's field -> the name the older picture gave it),
        and they are taken out into one. Each picture's ``upgrade_saved`` (``placesense.statecodec``)."""
        if "presence" not in fields:
            fields["presence"] = cls(**{mine: fields.pop(theirs) for mine, theirs in names.items() if theirs in fields})
        return fields

    def observe(self, device: DeviceSpec, state: float, ts: int) -> Seen | None:
        """Read one reading's state into the presence; returns what it showed, None for a check-in repeating the
        device's state (the device is alive; nobody moved)."""
        change = self.change(device, state, ts)
        if change is None:
            return None
        before, door = self.last_activity_ms, self.last_front_door_ms
        if device.kind == "motion" and not change.active:
            moved = self.moving_until(device, ts)
            if moved is None:
                return Seen(change, False, ts, False, None, before, door)
            self.active(moved)
            return Seen(change, True, moved, False, None, before, door)
        if not change.active:
            return Seen(change, False, ts, False, None, before, door)
        came_home = self.is_out(ts)
        if not self.believe(device, ts):
            return Seen(change, False, ts, False, None, before, door)
        out = self.back_home()
        self.active(ts)
        if device.kind == "front_door":
            self.front_door(ts)
        return Seen(change, True, ts, came_home, out, before, door)

    def change(self, device: DeviceSpec, state: float, ts: int) -> Change | None:
        """What changed since the device's last report (None: a check-in repeating its state); a PIR that starts
        seeing movement is noted."""
        change = interpret(device, self.device_state.get(device.id), state)
        self.device_state[device.id] = state
        if change is not None and device.kind == "motion" and change.what == "moved":
            self.motion_since[device.id] = ts
        return change

    def moving_until(self, device: DeviceSpec, ts: int) -> int | None:
        """A PIR's "no motion" at ``ts``: the moment she was last moving in its view, or None when it says nothing
        of her (it had been "on" so long it was stuck, she went out meanwhile, or she is out)."""
        since = self.motion_since.pop(device.id, None)
        door = self.last_front_door_ms
        left = door is not None and since is not None and since <= door <= ts
        if since is None or ts - since > STUCK_PIR_MS or left or self.is_out(ts):
            return None
        return ts - PIR_HOLD_MS

    def active(self, ts: int) -> None:
        """She did something at ``ts`` (already believed, see ``believe``)."""
        if self.last_activity_ms is None or ts > self.last_activity_ms:
            self.last_activity_ms = ts

    def front_door(self, ts: int) -> None:
        self.last_front_door_ms = ts

    def is_out(self, now_ms: int) -> bool:
        """Front door, then nothing: she went out (a state, not a fall)."""
        if self.out_since_ms is not None:
            return True
        door, last = self.last_front_door_ms, self.last_activity_ms
        return door is not None and last is not None and last < door + STAYED_AFTER_MS and now_ms - door >= LEFT_HOME_MS

    def believe(self, device: DeviceSpec, ts: int) -> bool:
        """Whether activity from ``device`` at ``ts`` is hers. While she is out, one device on its own (a PIR in the
        sun, a mat under a cat, a flickering contact) is not her: coming home is the front door, or two different
        devices within ``PRESENCE_CONFIRM_MS``."""
        if not self.is_out(ts):
            return True
        if self.out_since_ms is None:
            self.out_since_ms = self.last_front_door_ms
        if device.kind == "front_door":
            return True
        out = self.out_since_ms or ts
        agree = any(d != device.id and out <= t and ts - t <= PRESENCE_CONFIRM_MS for d, t in self.while_out.items())
        self.while_out[device.id] = ts
        return agree

    def back_home(self) -> int | None:
        """She is in again: returns since when she had been out (None if she was not)."""
        out = self.out_since_ms
        self.out_since_ms = None
        self.while_out.clear()
        return out


class SharedPresence(Protocol):
    """Where the routine detector finds the presence the care rules keep, when both run together: each home's one
    ``Presence``, and what the rules observed of the reading being evaluated."""

    def share(self, home_id: str, presence: Presence) -> Presence | None:
        """The home's one presence (None: not a home the rules keep). ``presence`` is the detector's own: taken as
        the shared one when the rules have observed nothing of her yet (only the detector's state was restored)."""
        ...

    def seen(self, reading: Reading) -> tuple[bool, Seen | None]:
        """(True, what ``observe`` returned) when the rules observed this very reading; (False, None) if not."""
        ...
