"""``HomeRules``: the home-care rule family the engine drives. It keeps every home's picture and the timers, reads
each reading as her activity or not, and hands readings, activity, her coming home and due timers to the checks.

How a reading becomes her activity (the rest is the checks'): a device repeating its state is alive, not proof
anyone moved (``rules.homesense``); a PIR's "no motion" dates her last movement; while she is out, one device alone
is not her. The checks are called in a fixed order, the order in which their findings and timers always came. This
module decides no rule itself: it must not touch alerts, storage or MQTT.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devices.readings import Domain, Reading
from devices.registry import DeviceSpec, Registry
from placesense.basics.findings import Finding
from placesense.basics.localtime import zone
from rules.config import KitchenRule, SectionLookup
from rules.home.bathroom import BathroomCheck
from rules.home.check import (
    Activity,
    NoticesActivity,
    NoticesComingHome,
    ReactsToActivity,
    ReactsToReading,
    Shared,
    StartsTimers,
    Timed,
)
from rules.home.cold import ColdHomeCheck
from rules.home.help import HelpButtonCheck
from rules.home.inactivity import InactivityCheck
from rules.home.kitchen import KitchenCheck
from rules.home.night_door import NightDoorCheck
from rules.home.picture import HomePicture, motion_stopped, note_activity
from rules.home.wake import WakeCheck
from rules.homesense import HomeSensing, metric_state
from rules.presence import Presence, Seen
from rules.timers import Timers


class HomeRules:
    """Routine and safety rules for every home in the registry."""

    domains: frozenset[Domain] = frozenset({"home"})

    def __init__(self, registry: Registry, lookup: SectionLookup) -> None:
        self._registry = registry
        self._lookup = lookup
        self._homes: dict[str, HomePicture] = {
            home_id: HomePicture(tz=zone(home.timezone)) for home_id, home in registry.homes.items()
        }
        # What each home's sensors can see: from the registry, so not state to save.
        self._sensing = {home_id: HomeSensing.of(registry, home_id) for home_id in registry.homes}
        self._timers: Timers[tuple[str, str]] = Timers()
        shared = Shared(registry, lookup, self._timers, self._sensing)
        wake, kitchen, inactivity = WakeCheck(shared), KitchenCheck(shared), InactivityCheck(shared)
        bathroom, night_door, cold = BathroomCheck(shared), NightDoorCheck(shared), ColdHomeCheck(shared)
        self._on_reading: list[ReactsToReading] = [cold, HelpButtonCheck(shared)]
        self._noticing: list[NoticesActivity] = [night_door, inactivity]
        self._reacting: list[ReactsToActivity] = [inactivity, bathroom, wake, kitchen]
        self._homecoming: list[NoticesComingHome] = [kitchen, night_door]
        self._starting: list[StartsTimers] = [wake, kitchen, bathroom, inactivity]
        timed: list[Timed] = [wake, kitchen, inactivity, bathroom, night_door, cold]
        self._timed = {kind: check for check in timed for kind in check.timer_kinds}
        # The reading just observed and what it showed, for the routine detector that reads the same presence
        # (``seen``); not state to save.
        self._observed: tuple[Reading, Seen | None] | None = None

    # -- saved state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Every home's tracked day and learned history, and the deadlines set (``placesense.evaluation_state``)."""
        return {"homes": self._homes, "timers": self._timers.deadlines()}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back what ``state`` gave, for the homes still in the registry (call before ``start``)."""
        for home_id, home in state["homes"].items():
            if home_id in self._homes:
                home.tz = self._homes[home_id].tz  # the registry's zone wins, should it have changed
                self._homes[home_id] = home
        self._timers.restore([(key, due) for key, due in state["timers"] if key[0] in self._homes])

    def forget(self, subject: str) -> None:
        """Drop everything kept about one home, to save the state without it (erasure, with serve stopped)."""
        self._homes.pop(subject, None)
        self._timers.cancel_where(lambda key: key[0] != subject)

    # -- timers --------------------------------------------------------------------------------------

    def start(self, now_ms: int) -> None:
        scheduled = {key[0] for key, _ in self._timers.deadlines()}
        for home_id, home in self._homes.items():
            if home_id in scheduled:
                continue  # restored from a saved state: its deadlines stand, and fire late if they passed
            for check in self._starting:
                check.start(home_id, home, now_ms)

    def on_time(self, now_ms: int) -> list[Finding]:
        findings: list[Finding] = []
        # A timer may set another one that is already due (a re-check an hour on after a long gap): loop.
        while due := self._timers.pop_due(now_ms):
            findings += self._fire(due)
        return findings

    def _fire(self, due: list[tuple[int, tuple[str, str]]]) -> list[Finding]:
        findings: list[Finding] = []
        for due_ms, (home_id, what) in due:
            check = self._timed.get(what.partition(":")[0])
            if check is not None:
                findings += check.on_due(home_id, self._homes[home_id], what, due_ms)
        return findings

    # -- readings ------------------------------------------------------------------------------------

    def on_reading(self, reading: Reading, device: DeviceSpec) -> list[Finding]:
        home = self._homes.get(reading.subject)
        self._observed = None
        if home is None:
            return []
        metrics = reading.metrics
        findings: list[Finding] = []
        for check in self._on_reading:
            findings += check.on_reading(reading, device, home)
        state = metric_state(device, metrics, self._lookup.get(KitchenRule, reading.subject).kettle_on_w)
        if state is None:
            return findings
        seen = home.presence.observe(device, state, reading.ts_ms)
        self._observed = (reading, seen)
        if seen is None:
            return findings  # a check-in repeating the state: the device is alive, nobody moved
        return findings + self._changed(reading, device, home, seen)

    def _changed(self, reading: Reading, device: DeviceSpec, home: HomePicture, seen: Seen) -> list[Finding]:
        home_id, ts, change = reading.subject, reading.ts_ms, seen.change
        findings: list[Finding] = []
        if device.kind == "motion" and change.what == "still":
            if seen.hers:
                motion_stopped(home, device, seen.at_ms)
            return []
        if device.kind == "bed":
            home.in_bed = change.what == "in_bed"
        if not seen.hers:
            return findings  # no activity (an appliance switching itself off), or one device alone while she is out
        if seen.came_home:
            self._back_home(home_id, home, seen.out_since_ms, ts)
        activity = Activity(reading, device, change, seen.came_home, seen.before_ms, device.room or "other")
        # The night door and the day's quiet spells compare this activity with what came before it; then it is
        # her last activity in the picture, and the other checks react to it.
        for noticing in self._noticing:
            findings += noticing.before_activity(activity, home)
        note_activity(home, device, activity.room, ts)
        for reacting in self._reacting:
            findings += reacting.on_activity(activity, home)
        return findings

    # -- the presence the routine detector shares (rules.presence.SharedPresence) --------------------

    def share(self, home_id: str, presence: Presence) -> Presence | None:
        home = self._homes.get(home_id)
        if home is None:
            return None
        if home.presence == Presence() and presence != Presence():
            home.presence = presence  # only the detector's state was restored: what it knew stands
        return home.presence

    def seen(self, reading: Reading) -> tuple[bool, Seen | None]:
        observed = self._observed
        if observed is None or observed[0] is not reading:
            return False, None
        return True, observed[1]

    def _back_home(self, home_id: str, home: HomePicture, out: int | None, ts: int) -> None:
        home.came_home_ms = ts
        if out is None:
            return
        for check in self._homecoming:
            check.came_home(home_id, home, out, ts)
