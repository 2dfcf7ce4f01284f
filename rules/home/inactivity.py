"""``inactivity``: no change from any sensor for 3 h in waking hours (once learned: longer than her longest quiet
spell of the last fortnight), at an hour she is usually active.

Not while she is asleep, in bed (only a bed excuses stillness: an occupied chair does not) or out (front door,
then silence: a state, not a fall). This module must not touch alerts, storage or MQTT.
"""

from __future__ import annotations

import math
import statistics
from datetime import date, time, timedelta

from placesense.basics.findings import Finding, care_finding
from placesense.basics.localtime import at_local, hm, local
from placesense.basics.memory import keep_last
from placesense.basics.texts import text
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS
from rules.config import InactivityRule
from rules.home.check import Activity, Evidence, Shared, what_sensed
from rules.home.picture import HISTORY_KEPT, HomePicture, asleep


class InactivityCheck:
    """Learns her quiet spells; ``inactivity`` when a silence is longer than hers at an hour she is usually about."""

    timer_kinds = frozenset({"inactivity"})

    def __init__(self, shared: Shared) -> None:
        self._lookup = shared.lookup
        self._timers = shared.timers
        self._registry = shared.registry
        self._sensing = shared.sensing

    def start(self, home_id: str, home: HomePicture, now_ms: int) -> None:
        self._schedule_inactivity(home_id, home, now_ms)

    def before_activity(self, seen: Activity, home: HomePicture) -> list[Finding]:
        gap_start, ts = seen.gap_start, seen.reading.ts_ms
        if gap_start is not None and not seen.came_home and not home.in_bed and not asleep(home, ts, gap_start):
            self._quiet_spell(seen.reading.subject, home, gap_start, ts)
        return []

    def on_activity(self, seen: Activity, home: HomePicture) -> list[Finding]:
        home_id, ts, gap_start, device = seen.reading.subject, seen.reading.ts_ms, seen.gap_start, seen.device
        findings: list[Finding] = []
        if home.inactivity_active and gap_start is not None:
            home.inactivity_active = False
            cfg = self._lookup.get(InactivityRule, home_id)
            message = text("inactivity.cleared", what=what_sensed(device), time=hm(ts, home.tz), gap=ts - gap_start)
            findings.append(
                care_finding(
                    "inactivity", home_id, cfg.severity, message, ts, False,
                    {"gap_minutes": round((ts - gap_start) / MINUTE_MS)}, device.id,
                )
            )
        self._schedule_inactivity(home_id, home, ts)
        return findings

    def on_due(self, home_id: str, home: HomePicture, what: str, due_ms: int) -> list[Finding]:
        return self._inactivity_due(home_id, home, due_ms)

    def _quiet_spell(self, home_id: str, home: HomePicture, from_ms: int, to_ms: int) -> None:
        """Remember the day's longest quiet spell at home, out of bed and in waking hours (her own normal)."""
        cfg = self._lookup.get(InactivityRule, home_id)
        day = local(to_ms, home.tz).date()
        start = max(from_ms, at_local(day, cfg.waking.start, home.tz))
        end = min(to_ms, at_local(day, cfg.waking.end, home.tz))
        if end <= start:
            return
        if home.quiet_day != day:
            if home.quiet_day is not None:
                close_quiet_day(home, home.quiet_day)
            home.quiet_day, home.quiet_longest_ms = day, 0
        home.quiet_longest_ms = max(home.quiet_longest_ms, end - start)

    def _inactivity_hours(self, home: HomePicture, cfg: InactivityRule, today: date) -> tuple[float, int | None]:
        """The hours of silence that are unusual for her: the configured hours, or once learned her longest quiet
        spell of the last fortnight plus a margin (longer than any she had), with that longest spell (None while
        nothing is learned).

        The longest of a fortnight is often beaten by a little on some later day, and by more where her quiet
        spells vary more, so the margin grows with their spread: at least ``margin_minutes``, or
        ``margin_spread_share`` of the way from her typical day's longest spell (the median) to the longest, more
        while fewer than ``history_days`` are known."""
        recent = [ms for d, ms in home.quiet_history if today - timedelta(days=cfg.history_days) <= d < today]
        if not cfg.learn or len(recent) < max(cfg.min_history_days, 3):
            return cfg.hours, None
        longest = max(recent)
        # Fewer days say less about how long her quiet spells can be: widen the margin until a fortnight is known.
        few_days = math.sqrt(max(1.0, cfg.history_days / len(recent)))
        spread_ms = (longest - statistics.median(recent)) * cfg.margin_spread_share * few_days
        learned_ms = longest + max(cfg.margin_minutes * MINUTE_MS, spread_ms)
        return min(max(cfg.hours, learned_ms / HOUR_MS), cfg.max_hours), longest

    def _schedule_inactivity(self, home_id: str, home: HomePicture, since_ms: int) -> None:
        cfg = self._lookup.get(InactivityRule, home_id)
        if not cfg.enabled:
            return
        day = local(since_ms, home.tz).date()
        hours, _ = self._inactivity_hours(home, cfg, day)
        for offset in range(3):
            start = at_local(day + timedelta(days=offset), cfg.waking.start, home.tz)
            end = at_local(day + timedelta(days=offset), cfg.waking.end, home.tz)
            if end <= start:  # a waking window cannot span midnight; treat it as ending at midnight
                end = at_local(day + timedelta(days=offset + 1), time(0, 0), home.tz)
            due = max(since_ms, start) + int(hours * HOUR_MS)
            if due <= end:
                self._timers.set((home_id, "inactivity"), due)
                return

    def _inactivity_due(self, home_id: str, home: HomePicture, due_ms: int) -> list[Finding]:
        cfg = self._lookup.get(InactivityRule, home_id)
        last = home.presence.last_activity_ms
        if last is None or home.in_bed or home.inactivity_active:
            return []
        if home.presence.is_out(due_ms) or asleep(home, due_ms):
            return []  # out (the front door was the last thing that happened), or not up yet: not stillness
        hours, learned = self._inactivity_hours(home, cfg, local(due_ms, home.tz).date())
        gap_from = max(last, due_ms - int(hours * HOUR_MS))
        share, days = self._usually_active(home, cfg, gap_from, due_ms)
        if days >= cfg.min_history_days and share < cfg.usually_active_share:
            # A quiet hour for this resident: look again an hour later, when they may usually be about.
            end = at_local(local(due_ms, home.tz).date(), cfg.waking.end, home.tz)
            if due_ms + HOUR_MS <= end:
                self._timers.set((home_id, "inactivity"), due_ms + HOUR_MS)
            return []
        home.inactivity_active = True
        usual = (
            text("inactivity.usual", active=round(share * days), days=days)
            if days >= cfg.min_history_days
            else text("inactivity.no_usual")
        )
        longest = text("empty")
        if learned is not None:
            longest = text("inactivity.longest", days=cfg.history_days, longest=learned)
        device = self._registry.devices.get(home.last_activity_device or "")
        seen = what_sensed(device) if device is not None else text("the_room", room=home.last_activity_room)
        unsure = text("empty" if self._sensing[home_id].front_door else "inactivity.no_front_door")
        message = text(
            "inactivity", since=hm(last, home.tz), gap=due_ms - last, seen=seen, unsure=unsure, usual=usual,
            longest=longest,
        )
        evidence: Evidence = {
            "last_movement_ms": last,
            "gap_minutes": round((due_ms - last) / MINUTE_MS),
            "usually_active_share": round(share, 2),
            "threshold_minutes": round(hours * 60),
        }
        return [care_finding("inactivity", home_id, cfg.severity, message, due_ms, True, evidence)]

    def _usually_active(
        self, home: HomePicture, cfg: InactivityRule, from_ms: int, to_ms: int
    ) -> tuple[float, int]:
        """Share of recent days with activity in the hours of [from, to), and how many days that is over."""
        today = local(to_ms, home.tz).date()
        hours = 0
        cursor = from_ms
        while cursor < to_ms:
            hours |= 1 << local(cursor, home.tz).hour
            cursor += HOUR_MS
        days = [d for d in home.active_hours if today - timedelta(days=cfg.history_days) <= d < today]
        if not days:
            return 0.0, 0
        active = sum(1 for d in days if home.active_hours[d] & hours)
        return active / len(days), len(days)


def close_quiet_day(home: HomePicture, day: date) -> None:
    """Learn the longest quiet spell of the day being tracked, once ``day`` (or a later one) is over: as a new day's
    first spell begins, and when the kitchen's day ends (``rules.home.kitchen``)."""
    if home.quiet_day is None or home.quiet_day > day:
        return
    if home.quiet_longest_ms > 0:
        keep_last(home.quiet_history, (home.quiet_day, home.quiet_longest_ms), HISTORY_KEPT)
    home.quiet_day, home.quiet_longest_ms = None, 0
