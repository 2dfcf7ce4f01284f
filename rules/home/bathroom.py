"""``bathroom_stay`` and ``bathroom_visits``: too long in the bathroom, and more toilet or bathroom visits than
her own days and nights.

- ``bathroom_stay``: in the bathroom for over 60 minutes with nothing anywhere else, only where motion sensors
  would have seen her leave (a PIR in every other sensed room, or a bed sensor in the bedroom).
- ``bathroom_visits``: more toilet visits (flushes, where a flush sensor works) or bathroom visits than her own
  days, nights and runs of days, judged against her own day-to-day variance (a door's opening and closing, the
  flush and the bathroom PIR a few minutes apart are one visit); or, over two to four days, more visits coming
  within two hours of the one before than her own runs of days have held (urinary frequency: going more often
  than every two hours, which an infection brings even on days whose total looks ordinary).

This module must not touch alerts, storage or MQTT.
"""

from __future__ import annotations

import math
import statistics
from datetime import timedelta

from devices.registry import DeviceSpec
from placesense.basics.findings import Finding, care_finding
from placesense.basics.localtime import day_of, hm, local, next_local
from placesense.basics.memory import keep_last
from placesense.basics.stats import poisson_upper_tail
from placesense.basics.texts import Text, text
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS
from rules.config import BathroomStayRule, BathroomVisitsRule
from rules.home.check import Activity, Evidence, Shared
from rules.home.picture import HISTORY_KEPT, HomePicture

FLUSH_VISIT_MS = 5 * MINUTE_MS  # flushes closer than this are one toilet visit
VISIT_RUN_DAYS = 3  # days of counts not yet learned: the longest run judged together, less today
OVERDISPERSED_Z = 3.0  # a day's visits this many of her own standard deviations above her mean
OVERDISPERSED_Z_RUN = 2.5  # a run of days' (each day above her mean already)
SOON_AFTER_MS = 2 * HOUR_MS  # a visit this soon after the one before counts towards frequency
# per period: night visits, all visits, night flushes, all flushes, visits soon after the one before, flushes soon
# after the one before
VISIT_COUNTS = 6


class BathroomCheck:
    """Tracks each bathroom visit: how long she stays, and how many visits each day and night bring."""

    timer_kinds = frozenset({"bath_stay", "visits"})

    def __init__(self, shared: Shared) -> None:
        self._lookup = shared.lookup
        self._timers = shared.timers
        self._sensing = shared.sensing

    def start(self, home_id: str, home: HomePicture, now_ms: int) -> None:
        visits = self._lookup.get(BathroomVisitsRule, home_id)
        self._timers.set((home_id, "visits"), next_local(now_ms, visits.night.end, home.tz))

    def on_activity(self, seen: Activity, home: HomePicture) -> list[Finding]:
        home_id, device, room, ts = seen.reading.subject, seen.device, seen.room, seen.reading.ts_ms
        if room == "bathroom":
            return self._in_bathroom(home_id, home, device, ts)
        where = text("the_bed") if device.kind == "bed" else text("the_room", room=room)
        return self._leave_bathroom(home_id, home, ts, where)

    def on_due(self, home_id: str, home: HomePicture, what: str, due_ms: int) -> list[Finding]:
        if what == "bath_stay":
            return self._bath_stay_due(home_id, home, due_ms)
        return self._night_over(home_id, home, due_ms)

    def _in_bathroom(self, home_id: str, home: HomePicture, device: DeviceSpec, ts: int) -> list[Finding]:
        visits = self._lookup.get(BathroomVisitsRule, home_id)
        # One visit: bathroom activity (a door's opening and closing, the flush, the PIR) with no more than
        # ``separate_minutes`` between its parts, whatever happened elsewhere meanwhile.
        new_visit = home.bath_last_ms is None or ts - home.bath_last_ms > visits.separate_minutes * MINUTE_MS
        if new_visit or home.bath_enter_ms is None:
            home.bath_enter_ms = ts
        home.bath_last_ms = ts
        stay = self._lookup.get(BathroomStayRule, home_id)
        key = (home_id, "bath_stay")
        if not stay.enabled or not self._sensing[home_id].exits_seen:
            self._timers.cancel(key)
        elif new_visit or (self._timers.get(key) is None and not home.bath_stay_active):
            self._timers.set(key, max(ts, home.bath_enter_ms + int(stay.minutes * MINUTE_MS)))
        period = _padded(home.visits.setdefault(day_of(ts, visits.night.end, home.tz), []))
        at_night = visits.night.contains(local(ts, home.tz).time())
        if new_visit:
            period[1] += 1
            period[0] += at_night
            period[4] += home.last_visit_ms is not None and ts - home.last_visit_ms < SOON_AFTER_MS
            home.last_visit_ms = ts
        if device.kind == "flush" and (home.last_flush_ms is None or ts - home.last_flush_ms > FLUSH_VISIT_MS):
            period[3] += 1
            period[2] += at_night
            period[5] += home.last_flush_ms is not None and ts - home.last_flush_ms < SOON_AFTER_MS
        if device.kind == "flush":
            home.last_flush_ms = ts
        return []

    def _leave_bathroom(self, home_id: str, home: HomePicture, ts: int, where: Text) -> list[Finding]:
        entered = home.bath_enter_ms
        if entered is None:
            return []
        home.bath_enter_ms = None
        self._timers.cancel((home_id, "bath_stay"))
        if not home.bath_stay_active:
            return []
        home.bath_stay_active = False
        cfg = self._lookup.get(BathroomStayRule, home_id)
        message = text("bathroom_stay.cleared", where=where, time=hm(ts, home.tz), lasted=ts - entered)
        evidence: Evidence = {"minutes": round((ts - entered) / MINUTE_MS)}
        return [care_finding("bathroom_stay", home_id, cfg.severity, message, ts, False, evidence)]

    def _bath_stay_due(self, home_id: str, home: HomePicture, due_ms: int) -> list[Finding]:
        """Only where the sensors would have seen her leave (motion sensors in every other sensed room, or a bed
        sensor in the bedroom): elsewhere, silence after the bathroom is left to ``inactivity``."""
        cfg = self._lookup.get(BathroomStayRule, home_id)
        entered = home.bath_enter_ms
        if entered is None or home.in_bed or home.presence.is_out(due_ms) or not self._sensing[home_id].exits_seen:
            return []
        home.bath_stay_active = True
        last = home.bath_last_ms or entered
        message = text(
            "bathroom_stay", since=hm(entered, home.tz), lasted=due_ms - entered, last=hm(last, home.tz)
        )
        return [
            care_finding(
                "bathroom_stay",
                home_id,
                cfg.severity,
                message,
                due_ms,
                True,
                {"entered_ms": entered, "minutes": round((due_ms - entered) / MINUTE_MS)},
            )
        ]

    def _night_over(self, home_id: str, home: HomePicture, due_ms: int) -> list[Finding]:
        """At the end of the night: were there unusually many bathroom visits, at night or over the day?

        Where a toilet-flush sensor counts about one flush a day or more, flushes are the visits (a flush is a
        toilet visit; washing and bathing are not); elsewhere any bathroom visit counts."""
        cfg = self._lookup.get(BathroomVisitsRule, home_id)
        self._timers.set((home_id, "visits"), next_local(due_ms, cfg.night.end, home.tz))
        period = day_of(due_ms - 1, cfg.night.end, home.tz)
        counts = _padded(home.visits.pop(period, []))
        for old in [d for d in home.visits if d < period]:
            del home.visits[old]
        # the night door's count of each night's openings (``rules.home.night_door``) is pruned here too
        for old in [d for d in home.night_door_openings if d < period - timedelta(days=2)]:
            del home.night_door_openings[old]
        full = list(home.visit_history)[-cfg.history_nights :]
        by_flush = bool(full) and statistics.fmean(h[3] for h in full) >= 1.0
        pick = 2 if by_flush else 0
        night, total, soon = counts[pick], counts[pick + 1], counts[4 + pick // 2]
        previous, previous_soon = list(home.recent_totals), list(home.recent_soon)
        keep_last(home.recent_totals, total, 3)
        keep_last(home.recent_soon, soon, 3)
        # days learned before soon visits were counted say nothing of them
        soon_history = [h[4 + pick // 2] for h in full if len(h) >= VISIT_COUNTS]
        history = [(h[pick], h[pick + 1]) for h in full]
        if len(history) < cfg.min_history_nights or not self._sensing[home_id].bathroom:
            self._learn_visits(home, counts)
            return []
        usual_night = max(0.25, statistics.fmean(n for n, _ in history))
        usual_total = max(1.0, statistics.fmean(t for _, t in history))
        most_total = max(t for _, t in history)
        most_night = max(n for n, _ in history)

        totals = [t for _, t in history]
        nights = [n for n, _ in history]
        spread_total = max(statistics.pvariance(totals), usual_total)
        spread_night = max(statistics.pvariance(nights), usual_night)

        def unusual(count: int, mean: float, variance: float, days: int = 1, limit: float = cfg.improbability) -> bool:
            """Improbable for her average (Poisson), and for how much her days really vary (a normal z-score on
            her own day-to-day variance, which real homes' counts far exceed)."""
            z = (count - days * mean) / math.sqrt(days * variance)
            return (
                count >= days * mean + cfg.min_extra_visits and poisson_upper_tail(count, days * mean) < limit
                and z >= (OVERDISPERSED_Z if days == 1 else OVERDISPERSED_Z_RUN)
            )

        # An infection raises the count for days; one day may not be improbable on its own, but two to four in a
        # row are. Three or four days count only when each of them is above the usual, so one busy day does not
        # hold the alert open. And a day, or a run of days, must be more than any day (or run of as many days)
        # of the last fortnight. The longest window that is unusual is the one reported.
        def unusual_run(
            today: int, before: list[int], learned: list[int], mean: float, variance: float
        ) -> tuple[int, int]:
            """How many days (2 to 4) of a run ending today are unusual together, and their count; (1, today) if
            no run is."""
            for days in (4, 3, 2):
                window = [*before[-(days - 1):], today]
                sustained = days == 2 or all(count >= mean + 1 for count in window)
                most_run = max((sum(learned[i : i + days]) for i in range(len(learned) - days + 1)), default=0)
                # Requiring every day of three or four to be up already rules out most chance; the sum may then
                # be a little less improbable than a single day must be.
                limit = cfg.improbability * (5 if days >= 3 else 1)
                if (
                    len(window) == days and sustained and sum(window) > most_run
                    and unusual(sum(window), mean, variance, days, limit)
                ):
                    return days, sum(window)
            return 1, today

        span_days, span_total = unusual_run(total, previous, totals, usual_total, spread_total)
        # Frequency: visits within two hours of the one before, over a run of days against her own runs. Quick
        # returns come in clusters, so her spread of them needs a full history (``history_nights``) to be known.
        soon_days, soon_total = 1, soon
        if len(soon_history) >= cfg.history_nights:
            usual_soon = max(0.5, statistics.fmean(soon_history))
            spread_soon = max(statistics.pvariance(soon_history), usual_soon)
            soon_days, soon_total = unusual_run(soon, previous_soon, soon_history, usual_soon, spread_soon)
        more = (
            (unusual(night, usual_night, spread_night) and night > most_night)
            or (unusual(total, usual_total, spread_total) and total > most_total)
            or span_days > 1
            or soon_days > 1
        )
        what = "flushes" if by_flush else "visits"
        evidence: Evidence = {
            "night_visits": night,
            "visits_24h": total,
            "usual_night": round(usual_night, 1),
            "usual_24h": round(usual_total, 1),
            "nights": len(history),
            "counted": "flushes" if by_flush else "bathroom visits",
            "soon_after_previous_24h": soon,
        }
        if more and cfg.enabled:
            home.visits_active = True
            over = text("bathroom_visits.over", total=span_total, days=span_days) if span_days > 1 else text("empty")
            frequent = (
                text("bathroom_visits.soon", days=soon_days, count=soon_total, usual=statistics.fmean(soon_history))
                if soon_days > 1
                else text("empty")
            )
            message = text(
                "bathroom_visits", what=what, night=night, hours=cfg.night.label(), total=total, over=over,
                usual_night=usual_night, usual_total=usual_total, days=len(history), soon=frequent,
            )
            return [care_finding("bathroom_visits", home_id, cfg.severity, message, due_ms, True, evidence)]
        # an unusual day is not learned as normal
        self._learn_visits(home, counts)
        if home.visits_active:
            home.visits_active = False
            message = text(
                "bathroom_visits.cleared", what=what, night=night, total=total, usual_night=usual_night,
                usual_total=usual_total,
            )
            return [care_finding("bathroom_visits", home_id, cfg.severity, message, due_ms, False, evidence)]
        return []

    @staticmethod
    def _learn_visits(home: HomePicture, counts: list[int]) -> None:
        keep_last(home.visits_pending, tuple(counts), VISIT_RUN_DAYS + 1)
        if len(home.visits_pending) > VISIT_RUN_DAYS:
            keep_last(home.visit_history, home.visits_pending.pop(0), HISTORY_KEPT)


def _padded(counts: list[int]) -> list[int]:
    """A period's counts with every kind present (a period saved before the soon-after counts had four)."""
    counts.extend([0] * (VISIT_COUNTS - len(counts)))
    return counts
