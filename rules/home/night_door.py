"""``night_door``: the front door opened during the night window (23:00–06:00), going out (not coming home).

At once after she had settled for the night; when she was up and going out at night is not her habit, once nothing
has moved at home for 15 minutes after the door (she really went: the bins, a look outside or a door sensor on the
way to the bathroom are not alerts). This module must not touch alerts, storage or MQTT.
"""

from __future__ import annotations

from datetime import date, timedelta

from devices.readings import Reading
from devices.registry import DeviceSpec
from placesense.basics.findings import Finding, care_finding
from placesense.basics.localtime import at_local, day_of, hm, local
from placesense.basics.memory import keep_last
from placesense.basics.texts import text
from placesense.basics.timeunits import MINUTE_MS
from rules.config import NightDoorRule
from rules.home.check import Activity, Shared
from rules.home.picture import EARLIEST_WAKE, NIGHT_FROM, HomePicture

GETTING_UP_MS = 10 * MINUTE_MS  # what happens this long before the front door at night is getting up to go out
NIGHT_UP_CONFIRM_MS = 10 * MINUTE_MS  # up in the night after a settled spell, once a second activity follows this soon
HABIT_NIGHTS = 2  # out at night (going out, or coming home) on this many of the last 14 nights is her habit
JUST_HOME_MS = 15 * MINUTE_MS


class NightDoorCheck:
    """Watches the front door in the night window, and whether she had settled for the night before it."""

    timer_kinds = frozenset({"night_door"})

    def __init__(self, shared: Shared) -> None:
        self._lookup = shared.lookup
        self._timers = shared.timers
        self._registry = shared.registry

    def before_activity(self, seen: Activity, home: HomePicture) -> list[Finding]:
        """The door is judged, and her getting up in the night noted, against her activity before this one."""
        reading, device = seen.reading, seen.device
        findings: list[Finding] = []
        if device.kind == "front_door" and seen.change.what == "opened" and not seen.came_home:
            findings += self._night_door(reading, home, device)
        if seen.room != "bedroom":
            self._night_up(reading.subject, home, reading.ts_ms, seen.came_home)
        return findings

    def came_home(self, home_id: str, home: HomePicture, out_ms: int, back_ms: int) -> None:
        night = self._lookup.get(NightDoorRule, home_id).night
        if night.contains(local(back_ms, home.tz).time()):
            self._note_night_outing(home, day_of(back_ms, night.end, home.tz))  # out at night, as the door going out is

    def on_due(self, home_id: str, home: HomePicture, what: str, due_ms: int) -> list[Finding]:
        return self._night_door_due(home_id, home, due_ms)

    @staticmethod
    def _note_night_outing(home: HomePicture, night: date) -> None:
        if not home.night_outings or home.night_outings[-1] < night:
            keep_last(home.night_outings, night, 30)

    def _night_door(self, reading: Reading, home: HomePicture, device: DeviceSpec) -> list[Finding]:
        """The front door opening at night, going out (coming home is not alarming). It is an alert at once when she
        had settled for the night (hardly anything outside the bedroom for a while before she got up to go). When
        she was up and about and going out at night is not her habit (out of the door, or coming home through it,
        on fewer than ``HABIT_NIGHTS`` of the last fortnight's nights), it waits ``still_out_minutes``: an alert
        only if nothing has moved at home since."""
        cfg = self._lookup.get(NightDoorRule, reading.subject)
        ts = reading.ts_ms
        if not cfg.enabled or not cfg.night.contains(local(ts, home.tz).time()):
            return []
        if home.came_home_ms is not None and ts - home.came_home_ms <= JUST_HOME_MS:
            return []  # the door again as she comes in (the shopping, the bins): still coming home
        night = day_of(ts, cfg.night.end, home.tz)
        habit = sum(1 for d in home.night_outings if night - timedelta(days=14) <= d < night)
        self._note_night_outing(home, night)
        if self._settled(home, ts, cfg):
            return [self._night_door_alert(reading.subject, home, ts, ts, "night_door.settled", device)]
        if habit >= HABIT_NIGHTS:
            return []  # she goes out at night now and then, and was up and about before: her own normal
        if cfg.still_out_minutes <= 0:
            return [self._night_door_alert(reading.subject, home, ts, ts, "night_door.not_usual", device)]
        if home.night_door_waiting_ms is None:
            home.night_door_waiting_ms = ts
            self._timers.set((reading.subject, "night_door"), ts + int(cfg.still_out_minutes * MINUTE_MS))
        return []

    def _night_door_due(self, home_id: str, home: HomePicture, due_ms: int) -> list[Finding]:
        """An awake night opening, ``still_out_minutes`` on: an alert if she is out (the front door, then nothing
        at home); she came back in through the door (and sat down quietly) or was seen at home meanwhile, nothing."""
        opened, home.night_door_waiting_ms = home.night_door_waiting_ms, None
        if opened is None:
            return []
        came_back = home.came_home_ms is not None and home.came_home_ms > opened
        if came_back or not home.presence.is_out(due_ms):
            return []
        device = self._registry.devices.get(home.last_activity_device or "")
        return [self._night_door_alert(home_id, home, opened, due_ms, "night_door.not_usual_gone", device)]

    def _night_door_alert(
        self, home_id: str, home: HomePicture, opened_ms: int, at_ms: int, why: str, device: DeviceSpec | None
    ) -> Finding:
        cfg = self._lookup.get(NightDoorRule, home_id)
        night = day_of(opened_ms, cfg.night.end, home.tz)
        home.night_door_openings[night] = openings = home.night_door_openings.get(night, 0) + 1
        message = text(
            "night_door", time=hm(opened_ms, home.tz), hours=cfg.night.label(), why=text(why), times=openings
        )
        return care_finding(
            "night_door", home_id, cfg.severity, message, at_ms, True, {"openings_tonight": openings},
            device.id if device is not None else None,
        )

    def _night_up(self, home_id: str, home: HomePicture, ts: int, came_home: bool) -> None:
        """She had settled for the night and got up again in the middle of it (confused walking about starts like
        this): activity outside the bedroom in the night window, before ``EARLIEST_WAKE`` (from 04:00 it may be
        her morning), after ``settled_minutes`` without any, and confirmed by more within
        ``NIGHT_UP_CONFIRM_MS`` (a lone PIR blip in the night is not her up)."""
        cfg = self._lookup.get(NightDoorRule, home_id)
        recent = home.recent_up_activity
        if came_home or len(recent) < 2 or ts - recent[-1] > NIGHT_UP_CONFIRM_MS:
            return
        began, before = recent[-1], recent[-2]
        clock = local(began, home.tz).time()
        settled = began - before >= cfg.settled_minutes * MINUTE_MS
        if settled and cfg.night.contains(clock) and not EARLIEST_WAKE <= clock < NIGHT_FROM:
            home.night_got_up_ms = began

    def _settled(self, home: HomePicture, ts: int, cfg: NightDoorRule) -> bool:
        """Settled for the night: hardly anything outside the bedroom (two at most: a trip to the toilet, a PIR
        blip) for ``settled_minutes`` before the last few minutes (getting up to go out), and not just home; or
        she had settled earlier tonight and got up again since, however long she has been about. A bed that reads
        occupied says nothing on its own: mats stick."""
        since = ts - GETTING_UP_MS - int(cfg.settled_minutes * MINUTE_MS)
        if home.came_home_ms is not None and home.came_home_ms >= since:
            return False  # just home: not settled for the night yet
        if sum(1 for t in home.recent_up_activity if since <= t < ts - GETTING_UP_MS) < 3:
            return True
        got_up, came_home = home.night_got_up_ms, home.came_home_ms
        tonight_from = at_local(day_of(ts, cfg.night.start, home.tz), cfg.night.start, home.tz)
        return got_up is not None and got_up >= tonight_from and (came_home is None or came_home < got_up)
