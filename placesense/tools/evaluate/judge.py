"""Each alert raised on a real home's recorded life, judged against the residents' own activity labels.

An alert is *true* when the labels show what the alert says **and** that it was unusual for this person: the
recordings are of healthy people living ordinary lives, so a late morning that is her usual morning, or a
night-time door that is her usual coming home, is an alert a carer learns to ignore. "Unusual" is judged on the
recording's other days: beyond the 90th percentile of them (for a fortnight, later or more than on all but one).

- ``not_up``, ``routine_late_wakeup``: still asleep at the alert's time on a day she got up later than on 90 % of
  the other days, or out at an hour she is out on at most 10 % of days;
- ``no_kitchen_use``, ``routine_reduced_kitchen_use``: at home, with no kitchen activity yet that day, on a day
  whose first kitchen activity came later than on 90 % of the others; ``reduced_kitchen_use`` (a whole day):
  fewer kitchen activities that day than on 90 % of the other days;
- ``night_door``: going out or coming in between 23:00 and 06:00 on a night she does so on at most 10 % of nights;
- ``routine_night_wandering``: up and doing something (not asleep, the toilet or washing) between 00:00 and
  05:00 on a night she is up on at most 10 % of nights;
- ``bathroom_visits``, ``routine_more_bathroom_visits``: more toilet visits in the 24 hours before the alert than
  in the same hours of 90 % of the other days;
- every other rule (``inactivity``, ``routine_no_movement``, ``bathroom_stay``, ``routine_change``,
  ``device_offline``…): never on these recordings. Each says "something may be wrong now" (a fall, an illness, a
  broken device), and nothing was wrong in them.

Each judgement also says what the labels showed at the alert's time ("asleep", "out", "relax"…). This module only
judges; it must not change how alerts are raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from placesense.basics.stats import quantile
from placesense.basics.timeunits import HOUR_MS
from placesense.tools.evaluate.inject import Background, labelled_wake
from placesense.tools.evaluate.realhomes import Label

UNUSUAL_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class Verdict:
    true: bool
    labels_show: str


class Judge:
    """Judges alerts on one background (a home's recording, possibly played twice) by its labels."""

    def __init__(self, bg: Background) -> None:
        self.bg = bg
        self.days = self._labelled_days()

    def _labelled_days(self) -> list[date]:
        """The local dates of the first play that have labels from morning to evening."""
        first_play = [label for label in self.bg.labels if label.start_ms < self.bg.second_play_ms] or self.bg.labels
        dates = sorted({self.bg.local(label.start_ms).date() for label in first_play})
        return dates[1:-1] if len(dates) > 3 else dates  # the first and last are part days

    def _original(self, ts_ms: int) -> int:
        """The moment of the first play that ``ts_ms`` (perhaps in a later one) replays."""
        if ts_ms < self.bg.second_play_ms:
            return ts_ms
        plays = (self.bg.local(ts_ms).date() - self.bg.local(self.bg.start_ms).date()).days // self.bg.shift_days
        moment = self.bg.local(ts_ms).replace(tzinfo=None) - timedelta(days=plays * self.bg.shift_days)
        original = int(moment.replace(tzinfo=self.bg.home.tz).timestamp() * 1000)
        return original if original < self.bg.second_play_ms else self._original(original)

    def judge(self, rule: str, at_ms: int) -> Verdict:
        at = self._original(at_ms)
        state = self.bg.state_at(at)
        shown = state or "no label"
        moment = self.bg.local(at)
        day = (moment - timedelta(hours=4)).date()  # the small hours belong to the day before
        if rule in ("not_up", "routine_late_wakeup"):
            return Verdict(self._late_up(day, at, state), shown)
        if rule in ("no_kitchen_use", "routine_reduced_kitchen_use"):
            # Out all morning explains an unused kitchen: not what the alert is for.
            return Verdict(state != "out" and self._late_kitchen(moment.date(), at), shown)
        if rule == "reduced_kitchen_use":
            return Verdict(self._few_kitchen(moment.date() - timedelta(days=1)), shown)
        if rule == "night_door":
            return Verdict(self._night_door(at), shown)
        if rule == "routine_night_wandering":
            return Verdict(self._up_at_night(day), shown)
        if rule in ("bathroom_visits", "routine_more_bathroom_visits"):
            return Verdict(self._more_toilet(at), shown)
        return Verdict(False, shown)

    # -- the facts ------------------------------------------------------------------------------------------

    def _others(self, day: date) -> list[date]:
        return [d for d in self.days if d != day]

    def _unusually_high(self, value: float, others: list[float]) -> bool:
        if not others:
            return False
        return value > quantile(sorted(others), 1.0 - UNUSUAL_SHARE)

    def _wake_minutes(self, day: date) -> float | None:
        wake = labelled_wake(self.bg, day)
        if wake is None:
            return None
        local = self.bg.local(wake)
        return (local.date() - day).days * 1440 + local.hour * 60 + local.minute

    def _late_up(self, day: date, at: int, state: str | None) -> bool:
        if state == "out":
            clock = self.bg.local(at).time()
            out_days = [d for d in self._others(day) if self.bg.state_at(self.bg.at(d, clock)) == "out"]
            return len(out_days) <= UNUSUAL_SHARE * len(self._others(day))
        wake = self._wake_minutes(day)
        if wake is None or wake <= self._minutes(at, day):
            return False  # the labels show her up (or do not say) by then
        others = [w for d in self._others(day) if (w := self._wake_minutes(d)) is not None]
        return self._unusually_high(wake, others)

    def _minutes(self, ts_ms: int, day: date) -> float:
        local = self.bg.local(ts_ms)
        return (local.date() - day).days * 1440 + local.hour * 60 + local.minute

    def _labels_on(self, day: date, states: tuple[str, ...], clock_from: time, clock_to: time) -> list[Label]:
        start, end = self.bg.at(day, clock_from), self.bg.at(day, clock_to)
        return [label for label in self.bg.labels if label.state in states and start <= label.start_ms < end]

    def _first_kitchen(self, day: date) -> float | None:
        found = self._labels_on(day, ("kitchen",), time(4, 0), time(23, 59))
        return self._minutes(found[0].start_ms, day) if found else None

    def _late_kitchen(self, day: date, at: int) -> bool:
        first = self._first_kitchen(day)
        if first is not None and first <= self._minutes(at, day):
            return False
        others = [f for d in self._others(day) if (f := self._first_kitchen(d)) is not None]
        return first is not None and self._unusually_high(first, others)

    def _few_kitchen(self, day: date) -> bool:
        count = len(self._labels_on(day, ("kitchen",), time(0, 0), time(23, 59)))
        others = [-float(len(self._labels_on(d, ("kitchen",), time(0, 0), time(23, 59)))) for d in self._others(day)]
        return self._unusually_high(-count, others)

    def _night_outings(self, night: date) -> int:
        start, end = self.bg.at(night, time(23, 0)), self.bg.at(night + timedelta(days=1), time(6, 0))
        return sum(
            1 for label in self.bg.labels
            if label.state == "out" and (start <= label.start_ms < end or start <= label.end_ms < end)
        )

    def _night_door(self, at: int) -> bool:
        night = (self.bg.local(at) - timedelta(hours=12)).date()
        if not any(abs(edge - at) <= HOUR_MS // 2 for label in self.bg.labels if label.state == "out"
                   for edge in (label.start_ms, label.end_ms)):
            return False
        others = [d for d in self._others(night) if self._night_outings(d)]
        return len(others) <= UNUSUAL_SHARE * len(self._others(night))

    def _up_at_night(self, day: date) -> bool:
        def up(night: date) -> bool:
            start = self.bg.at(night + timedelta(days=1), time(0, 0))
            end = start + 5 * HOUR_MS
            return any(
                label.state not in ("asleep", "toilet", "washing") and label.start_ms < end and label.end_ms > start
                for label in self.bg.labels
            )

        if not up(day):
            return False
        others = [d for d in self._others(day) if up(d)]
        return len(others) <= UNUSUAL_SHARE * len(self._others(day))

    def _more_toilet(self, at: int) -> bool:
        def visits(end: int) -> int:
            return sum(
                1 for label in self.bg.labels if label.state == "toilet" and end - 24 * HOUR_MS <= label.start_ms < end
            )

        clock = self.bg.local(at).time()
        day = self.bg.local(at).date()
        others = [float(visits(self.bg.at(d, clock))) for d in self._others(day) if d > self.days[0]]
        return self._unusually_high(visits(at), others)


def local_day(bg: Background, ts_ms: int) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, tz=bg.home.tz).date()
