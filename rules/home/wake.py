"""``not_up``: still in the night's sleep at the wake deadline; and how her getting-up is learned.

Still in the night's sleep means nothing outside the bedroom and bathroom since her longest quiet spell of the
night began (``rules.home.picture.asleep``). The deadline is 09:30 until her usual getting-up is learned, then her
usual latest plus a margin as wide as her mornings vary (at most 14:00); not while she is out; the alert clears
when she is up. This module must not touch alerts, storage or MQTT.
"""

from __future__ import annotations

from datetime import date, timedelta

from devices.registry import DeviceSpec
from placesense.basics.findings import Finding, care_finding
from placesense.basics.localtime import day_of, hm, hm_of_minutes, local, minutes_of_day
from placesense.basics.memory import keep_last
from placesense.basics.stats import quantile
from placesense.basics.texts import text
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS
from rules.config import WakeRule
from rules.home.check import Activity, Evidence, Shared
from rules.home.learned import next_learned_due
from rules.home.picture import EARLIEST_WAKE, HISTORY_KEPT, NIGHT_FROM, HomePicture, asleep, morning_of

UP_CONFIRM_MS = 30 * MINUTE_MS  # after a quiet spell, activity counts as her up once a second follows this soon


class WakeCheck:
    """Learns her getting-up from the night's longest quiet spell; ``not_up`` when she is not up by the deadline."""

    timer_kinds = frozenset({"wake"})

    def __init__(self, shared: Shared) -> None:
        self._lookup = shared.lookup
        self._timers = shared.timers
        self._sensing = shared.sensing

    def start(self, home_id: str, home: HomePicture, now_ms: int) -> None:
        self._schedule_wake(home_id, home, now_ms)

    def on_activity(self, seen: Activity, home: HomePicture) -> list[Finding]:
        device = seen.device
        if seen.room in self._sensing[seen.reading.subject].up_rooms or device.kind == "front_door":
            return self._up(seen.reading.subject, home, seen.reading.ts_ms, seen.room, device, seen.came_home)
        return []

    def on_due(self, home_id: str, home: HomePicture, what: str, due_ms: int) -> list[Finding]:
        return self._wake_deadline(home_id, home, due_ms)

    def _usual_wake(self, home: HomePicture, cfg: WakeRule, before: date) -> tuple[str, str] | None:
        recent = [m for d, m in home.wake_minutes if before - timedelta(days=cfg.history_days) <= d < before]
        if len(recent) < 3:
            return None
        return hm_of_minutes(quantile(sorted(recent), 0.1)), hm_of_minutes(quantile(sorted(recent), 0.9))

    def _up(
        self, home_id: str, home: HomePicture, ts: int, room: str, device: DeviceSpec, came_home: bool
    ) -> list[Finding]:
        """Activity outside the bedroom and bathroom. After a quiet spell it counts once a second one follows
        within ``UP_CONFIRM_MS`` (or it is the front door): one lone event in the night (a PIR in the headlights of
        a car, a cat on a cupboard) does not end her sleep. The spell that ended is perhaps the night's sleep."""
        cfg = self._lookup.get(WakeRule, home_id)
        last = home.last_up_ms
        if last is not None and ts - last <= UP_CONFIRM_MS:
            home.last_up_ms = ts  # up and about
            self._new_night(home_id, home, ts)
            return []
        pending = home.pending_up_ms
        if not came_home and device.kind != "front_door" and (pending is None or ts - pending > UP_CONFIRM_MS):
            home.pending_up_ms, home.pending_up_room = ts, room  # a first sign after a quiet spell: wait
            return []
        first_room = room
        began = ts
        if pending is not None and not came_home and device.kind != "front_door":
            began, first_room = pending, home.pending_up_room or room
        home.pending_up_ms = None
        self._new_night(home_id, home, began)
        # A spell out is not sleep, and a spell that ends in the small hours was a night-time trip, not the night.
        if last is not None and not came_home and EARLIEST_WAKE <= local(began, home.tz).time() < NIGHT_FROM:
            gap = began - last
            if gap > home.night_longest_ms:
                home.night_longest_ms, home.night_wake_ms = gap, began
        home.last_up_ms = ts
        if not home.not_up_active:
            return []
        home.not_up_active = False
        today = day_of(ts, cfg.day_starts, home.tz)
        usual = self._usual_wake(home, cfg, today)
        usual_words = text("not_up.usual_by", usual_to=usual[1]) if usual else text("not_up.no_usual")
        what = (
            text("not_up.came_home", time=hm(began, home.tz)) if came_home
            else text("not_up.first_activity", time=hm(began, home.tz), room=first_room)
        )
        message = text("not_up.cleared", what=what, usual=usual_words)
        return [
            care_finding(
                "not_up", home_id, cfg.severity, message, ts, False,
                {"first_activity_minutes": minutes_of_day(began, home.tz)}, device.id,
            )
        ]

    def _new_night(self, home_id: str, home: HomePicture, ts: int) -> None:
        """From 18:00 a new night begins: learn the last one's getting-up and set tomorrow's deadline by it."""
        morning = morning_of(ts, home.tz)
        if home.night_of == morning:
            return
        if self._close_night(home):
            self._schedule_wake(home_id, home, ts)
        home.night_of, home.night_longest_ms, home.night_wake_ms = morning, 0, None

    def _close_night(self, home: HomePicture) -> bool:
        """Learn the getting-up time of the night that ended: the end of its longest quiet spell, if that was a
        night's sleep (three hours or more, ending in the morning or afternoon) and not a night away."""
        wake, night = home.night_wake_ms, home.night_of
        if wake is None or night is None or home.night_longest_ms < 3 * HOUR_MS:
            return False
        moment = local(wake, home.tz)
        if moment.date() != night or not EARLIEST_WAKE <= moment.time() < NIGHT_FROM:
            return False
        keep_last(home.wake_minutes, (night, moment.hour * 60 + moment.minute), HISTORY_KEPT)
        return True

    def _schedule_wake(self, home_id: str, home: HomePicture, after_ms: int) -> None:
        cfg = self._lookup.get(WakeRule, home_id)
        due = next_learned_due(after_ms, home.wake_minutes, cfg, cfg.min_history_days, home.tz)
        if due is not None:
            self._timers.set((home_id, "wake"), due)

    def _wake_deadline(self, home_id: str, home: HomePicture, due_ms: int) -> list[Finding]:
        cfg = self._lookup.get(WakeRule, home_id)
        self._schedule_wake(home_id, home, due_ms)
        today = day_of(due_ms, cfg.day_starts, home.tz)
        if not cfg.enabled or home.not_up_active or not self._sensing[home_id].up_rooms:
            return []
        if home.presence.is_out(due_ms) or not asleep(home, due_ms):
            return []  # out since the front door, or up and about since the night
        home.not_up_active = True
        usual = self._usual_wake(home, cfg, today)
        usual_words = (
            text("not_up.usual", usual_from=usual[0], usual_to=usual[1], days=cfg.history_days)
            if usual
            else text("not_up.no_usual")
        )
        last = text("empty")
        if home.last_up_ms is not None and due_ms - home.last_up_ms < 24 * HOUR_MS:
            last = text("not_up.last", time=hm(home.last_up_ms, home.tz))
        message = text(
            "not_up", time=hm(due_ms, home.tz), usual=usual_words, last=last,
            bed=text("not_up.in_bed" if home.in_bed else "empty"),
        )
        evidence: Evidence = {
            "deadline": hm(due_ms, home.tz),
            "usual_from": usual[0] if usual else None,
            "usual_to": usual[1] if usual else None,
        }
        return [care_finding("not_up", home_id, cfg.severity, message, due_ms, True, evidence)]
