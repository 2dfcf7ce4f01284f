"""``no_kitchen_use`` and ``reduced_kitchen_use``: the kitchen (fridge, kettle, kitchen cupboards and appliances)
not used by the deadline, or a whole day at home with far less use than every one of her own recent days.

The deadline is 11:00, or once learned her usual latest first use plus a margin; not while she is out or not yet
up; it clears at the first use. A day is counted from ``day_starts`` (05:00), and a day she was out most of is
neither judged nor learned from. This module must not touch alerts, storage or MQTT.
"""

from __future__ import annotations

import statistics
from datetime import timedelta

from placesense.basics.findings import Finding, care_finding
from placesense.basics.localtime import at_local, day_of, hm, hm_of_minutes, minutes_of_day, next_local
from placesense.basics.memory import keep_last
from placesense.basics.stats import poisson_lower_tail
from placesense.basics.texts import text
from placesense.basics.timeunits import HOUR_MS
from rules.config import KitchenRule
from rules.home.check import Activity, Evidence, Shared, what_sensed
from rules.home.inactivity import close_quiet_day
from rules.home.learned import next_learned_due
from rules.home.picture import HISTORY_KEPT, HomePicture, asleep

MOSTLY_OUT_MS = 6 * HOUR_MS  # a day she was out this long is not judged for kitchen use


class KitchenCheck:
    """First kitchen use of the day by a deadline, and each whole day's use against her own days."""

    timer_kinds = frozenset({"kitchen", "kitchen_day"})

    def __init__(self, shared: Shared) -> None:
        self._lookup = shared.lookup
        self._timers = shared.timers
        self._sensing = shared.sensing

    def start(self, home_id: str, home: HomePicture, now_ms: int) -> None:
        kitchen = self._lookup.get(KitchenRule, home_id)
        self._schedule_kitchen(home_id, home, now_ms)
        self._timers.set((home_id, "kitchen_day"), next_local(now_ms, kitchen.day_starts, home.tz))

    def on_activity(self, seen: Activity, home: HomePicture) -> list[Finding]:
        if self._sensing[seen.reading.subject].is_kitchen_use(seen.device, seen.change):
            return self._kitchen_used(seen, home)
        return []

    def came_home(self, home_id: str, home: HomePicture, out_ms: int, back_ms: int) -> None:
        self._count_out(home_id, home, out_ms, back_ms)

    def on_due(self, home_id: str, home: HomePicture, what: str, due_ms: int) -> list[Finding]:
        if what == "kitchen":
            return self._kitchen_deadline(home_id, home, due_ms)
        return self._kitchen_day_over(home_id, home, due_ms)

    def _count_out(self, home_id: str, home: HomePicture, out: int, back: int) -> None:
        """Add a spell out to each day it covered (days as the kitchen rule counts them, from 05:00)."""
        starts = self._lookup.get(KitchenRule, home_id).day_starts
        cursor = out
        while cursor < back:
            day = day_of(cursor, starts, home.tz)
            day_end = at_local(day + timedelta(days=1), starts, home.tz)
            piece_end = min(back, day_end)
            home.out_by_day[day] = home.out_by_day.get(day, 0) + piece_end - cursor
            cursor = piece_end
        for old in sorted(home.out_by_day)[:-3]:
            del home.out_by_day[old]

    def _schedule_kitchen(self, home_id: str, home: HomePicture, after_ms: int) -> None:
        cfg = self._lookup.get(KitchenRule, home_id)
        due = next_learned_due(after_ms, home.kitchen_minutes, cfg, cfg.min_history_days_deadline, home.tz)
        if due is not None:
            self._timers.set((home_id, "kitchen"), due)

    def _kitchen_used(self, seen: Activity, home: HomePicture) -> list[Finding]:
        reading, device = seen.reading, seen.device
        cfg = self._lookup.get(KitchenRule, reading.subject)
        today = day_of(reading.ts_ms, cfg.day_starts, home.tz)
        home.kitchen_uses[today] = home.kitchen_uses.get(today, 0) + 1
        if home.kitchen_day == today:
            return []
        home.kitchen_day = today
        keep_last(home.kitchen_minutes, (today, minutes_of_day(reading.ts_ms, home.tz)), HISTORY_KEPT)
        self._schedule_kitchen(reading.subject, home, reading.ts_ms)  # the next deadline knows today's use
        if not home.no_kitchen_active:
            return []
        home.no_kitchen_active = False
        message = text("no_kitchen_use.cleared", time=hm(reading.ts_ms, home.tz), what=what_sensed(device))
        return [
            care_finding(
                "no_kitchen_use", reading.subject, cfg.severity, message, reading.ts_ms, False, {}, device.id
            )
        ]

    def _kitchen_deadline(self, home_id: str, home: HomePicture, due_ms: int) -> list[Finding]:
        cfg = self._lookup.get(KitchenRule, home_id)
        self._schedule_kitchen(home_id, home, due_ms)
        today = day_of(due_ms, cfg.day_starts, home.tz)
        if not cfg.enabled or home.kitchen_day == today or not self._sensing[home_id].kitchen_use:
            return []
        if home.presence.is_out(due_ms) or home.not_up_active or asleep(home, due_ms):
            return []  # out, or not up yet (``not_up`` is the alert for that): the kitchen says nothing more
        home.no_kitchen_active = True
        recent = [m for d, m in home.kitchen_minutes if today - timedelta(days=14) <= d < today]
        usual = (
            text("no_kitchen_use.usual", usual=hm_of_minutes(statistics.median(recent))) if len(recent) >= 3
            else text("empty")
        )
        message = text("no_kitchen_use", deadline=hm(due_ms, home.tz), usual=usual)
        return [
            care_finding(
                "no_kitchen_use", home_id, cfg.severity, message, due_ms, True, {"deadline": hm(due_ms, home.tz)}
            )
        ]

    def _kitchen_day_over(self, home_id: str, home: HomePicture, due_ms: int) -> list[Finding]:
        """At the start of a day: was yesterday's kitchen use far below this home's usual?

        Real days vary far more than chance: a day is unusual only when she was at home most of it (out less
        than ``MOSTLY_OUT_MS``), used the kitchen less than on any of the last fortnight's days at home, at most
        ``max_share_of_usual`` of her median, and the count is improbable for her average.

        The day's longest quiet spell (``rules.home.inactivity``) is learned here too, as the day ends."""
        cfg = self._lookup.get(KitchenRule, home_id)
        self._timers.set((home_id, "kitchen_day"), next_local(due_ms, cfg.day_starts, home.tz))
        day = day_of(due_ms - 1, cfg.day_starts, home.tz)
        close_quiet_day(home, day)
        uses = home.kitchen_uses.pop(day, 0)
        for old in [d for d in home.kitchen_uses if d < day]:
            del home.kitchen_uses[old]
        out_ms = home.out_by_day.get(day, 0)
        if home.presence.out_since_ms is not None:  # still out: count the part of yesterday she has been out
            out_ms += due_ms - max(home.presence.out_since_ms, due_ms - 24 * HOUR_MS)
        if out_ms >= MOSTLY_OUT_MS:
            return []  # out most of the day: she ate elsewhere; not a day to judge or to learn from
        history = list(home.kitchen_history)[-cfg.history_days :]
        if len(history) < cfg.min_history_days or not self._sensing[home_id].kitchen_use:
            keep_last(home.kitchen_history, uses, HISTORY_KEPT)
            return []
        usual = statistics.fmean(history)
        median = statistics.median(history)
        low = (
            uses < min(history)
            and uses <= cfg.max_share_of_usual * median
            and poisson_lower_tail(uses, usual) < cfg.improbability
        )
        evidence: Evidence = {"uses": uses, "usual_mean": round(usual, 1), "usual_least": min(history),
                              "days": len(history)}
        if low and cfg.enabled:
            home.reduced_kitchen_active = True
            message = text("reduced_kitchen_use", uses=uses, median=median, least=min(history), days=len(history))
            return [care_finding("reduced_kitchen_use", home_id, cfg.severity, message, due_ms, True, evidence)]
        keep_last(home.kitchen_history, uses, HISTORY_KEPT)
        if home.reduced_kitchen_active:
            home.reduced_kitchen_active = False
            message = text("reduced_kitchen_use.cleared", uses=uses, median=median)
            return [care_finding("reduced_kitchen_use", home_id, cfg.severity, message, due_ms, False, evidence)]
        return []
