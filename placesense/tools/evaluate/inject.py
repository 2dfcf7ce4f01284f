"""Changes injected into a real home's recorded life, for measuring what the care rules and detector catch.

``looped`` makes a background long enough to learn on: the recording's first whole weeks, played again and
again, then the whole recording, each play shifted by those weeks in local time (weekdays and clock times stay
as they were). The changes are injected in the last play, when the routine detector's learning is behind it. Each
``inject_*`` edits that background's activations the way the change would show in the home's own sensors:

- ``late_morning``: she stays in bed until three hours after the latest she usually gets up (by the labels); the
  morning's events are gone (the bed stays occupied);
- ``silence``: five hours with no change from any sensor while the labels show her at home and awake (a door
  or a mat stays as it was; a PIR sees nothing);
- ``night_wandering``: at about 02:30, out of bed for 40 minutes through the kitchen, living room and hall
  (fridge, cupboards, appliances, PIRs: whatever the home has there), then back to bed;
- ``more_bathroom_visits``: for four days (an infection's first days), every toilet visit (a cluster of the
  bathroom's sensors with a flush; any bathroom visit where the flush sensor hardly works) happens again 45 minutes
  later (or the nearest free time within two hours), out of bed if she was in it;
- ``front_door_at_night``: at about 02:15 she gets up, goes out of the front door and comes back 20 minutes later.

Each returns the edited activations and an ``Injected`` record (what, from when, until when). This module edits
event streams; it never judges alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from placesense.basics.timeunits import DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS
from placesense.tools.evaluate.realhomes import Activation, Label, RecordedHome

WEEK_DAYS = 7
COPY_AFTER_MS = tuple(m * MINUTE_MS for m in (45, 30, 60, 75, 90, 105, 120, 20))
VISIT_GAP_MS = 10 * MINUTE_MS
INJECTION_TYPES = ("late_morning", "silence", "night_wandering", "more_bathroom_visits", "front_door_at_night")


@dataclass(frozen=True, slots=True)
class Injected:
    kind: str
    start_ms: int
    end_ms: int
    note: str


@dataclass
class Background:
    """A home's recorded life, played once and then again from its first whole weeks."""

    home: RecordedHome
    activations: list[Activation]
    labels: list[Label]
    start_ms: int
    end_ms: int
    second_play_ms: int  # where the second play starts
    last_play_ms: int  # where the last play starts (the changes are injected in it)
    shift_days: int  # how far each play is from the one before

    def local(self, ts_ms: int) -> datetime:
        return datetime.fromtimestamp(ts_ms / 1000, tz=self.home.tz)

    def at(self, day: date, clock: time) -> int:
        return int(datetime.combine(day, clock).replace(tzinfo=self.home.tz).timestamp() * 1000)

    def day(self, offset_in_last_play: int) -> date:
        return self.local(self.last_play_ms).date() + timedelta(days=offset_in_last_play)

    def state_at(self, ts_ms: int) -> str | None:
        found: str | None = None
        for label in self.labels:
            if label.start_ms <= ts_ms < label.end_ms and (found is None or label.state != "asleep"):
                found = label.state
        return found


def _shift_local(ts_ms: int, days: int, home: RecordedHome) -> int:
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=home.tz).replace(tzinfo=None) + timedelta(days=days)
    return int(moment.replace(tzinfo=home.tz).timestamp() * 1000)


def looped(home: RecordedHome, plays: int = 3) -> Background:
    """The recording, then again ``plays - 1`` times, each play starting whole weeks after the one before."""
    weeks = max(1, int((home.end_ms - home.start_ms) / DAY_MS) // WEEK_DAYS)
    shift_days = weeks * WEEK_DAYS
    recorded = home.activations()
    activations: list[Activation] = []
    labels: list[Label] = []
    starts: list[int] = []
    for play in range(plays):
        days = play * shift_days
        starts.append(_shift_local(home.start_ms, days, home))
        cut = _shift_local(home.start_ms, days + shift_days, home) if play < plays - 1 else None
        for a in recorded:
            start, end = _shift_local(a.start_ms, days, home), _shift_local(a.end_ms, days, home)
            if cut is not None and start >= cut:
                continue
            activations.append(replace(a, start_ms=start, end_ms=end if cut is None else min(end, cut)))
        for label in home.labels:
            start, end = _shift_local(label.start_ms, days, home), _shift_local(label.end_ms, days, home)
            if cut is None or start < cut:
                labels.append(replace(label, start_ms=start, end_ms=end if cut is None else min(end, cut)))
    end_ms = _shift_local(home.end_ms, (plays - 1) * shift_days, home)
    activations.sort(key=lambda a: (a.start_ms, a.device))
    return Background(
        home, activations, labels, home.start_ms, end_ms, starts[1] if plays > 1 else starts[0], starts[-1], shift_days
    )


def shifted(bg: Background, activations: list[Activation], weeks: int) -> tuple[Background, list[Activation]]:
    """The same life ``weeks`` whole weeks later, in local time (to replay a recording as if it were recent)."""
    days = weeks * WEEK_DAYS
    home = bg.home

    def move(ts_ms: int) -> int:
        return _shift_local(ts_ms, days, home)

    moved = [replace(a, start_ms=move(a.start_ms), end_ms=move(a.end_ms)) for a in activations]
    labels = [replace(label, start_ms=move(label.start_ms), end_ms=move(label.end_ms)) for label in bg.labels]
    later = Background(
        home, bg.activations, labels, move(bg.start_ms), move(bg.end_ms), move(bg.second_play_ms),
        move(bg.last_play_ms), bg.shift_days,
    )
    later.activations = [replace(a, start_ms=move(a.start_ms), end_ms=move(a.end_ms)) for a in bg.activations]
    return later, moved


# -- where the resident is, by the labels ---------------------------------------------------------------------


def labelled_wake(bg: Background, day: date) -> int | None:
    """When the labels show her getting up on ``day``: the end of the night's sleep, or (homes whose labels do
    not say when she sleeps) the start of her first labelled activity after 04:00."""
    early, late = bg.at(day, time(4, 0)), bg.at(day, time(15, 0))
    ends = [label.end_ms for label in bg.labels if label.state == "asleep" and early <= label.end_ms < late]
    if ends:
        return max(e for e in ends if e <= min(ends) + 3 * HOUR_MS)  # a nap after getting up is not the night
    if any(label.state == "asleep" for label in bg.labels):
        return None
    # A trip to the toilet in the small hours is not getting up.
    starts = [
        label.start_ms for label in bg.labels if early + HOUR_MS <= label.start_ms < late and label.state != "toilet"
    ]
    return min(starts) if starts else None


def _bed_devices(bg: Background) -> set[str]:
    return {device for device, spec in bg.home.devices.items() if spec.kind == "bed"}


def _free_bed(activations: list[Activation], beds: set[str], start: int, end: int) -> list[Activation]:
    """Out of bed over [start, end): occupied spells of the bed are cut around it."""
    result: list[Activation] = []
    for a in activations:
        if a.device in beds and a.start_ms < end and a.end_ms > start:
            if a.start_ms < start:
                result.append(replace(a, end_ms=start))
            if a.end_ms > end:
                result.append(replace(a, start_ms=end))
        else:
            result.append(a)
    return result


def _sorted(activations: list[Activation]) -> list[Activation]:
    return sorted(activations, key=lambda a: (a.start_ms, a.device))


def _add(device: str, start: int, seconds: float) -> Activation:
    return Activation(start, start + int(seconds * SECOND_MS), device, injected=True)


def _devices(bg: Background, rooms: tuple[str, ...], kinds: tuple[str, ...]) -> list[str]:
    return sorted(d for d, spec in bg.home.devices.items() if spec.room in rooms and spec.kind in kinds)


# -- the changes ----------------------------------------------------------------------------------------------


def usual_latest_wake(bg: Background) -> float | None:
    """Her latest usual getting-up (90th percentile of the labelled mornings), minutes after midnight."""
    first = bg.local(bg.start_ms).date()
    minutes = []
    for offset in range(int((bg.second_play_ms - bg.start_ms) / DAY_MS) + 1):
        wake = labelled_wake(bg, first + timedelta(days=offset))
        if wake is not None:
            moment = bg.local(wake)
            minutes.append(moment.hour * 60 + moment.minute)
    if len(minutes) < 3:
        return None
    minutes.sort()
    return minutes[round(0.9 * (len(minutes) - 1))]


def inject_late_morning(bg: Background, day: date, hours: float = 3.0) -> tuple[list[Activation], Injected] | None:
    """She stays in bed until ``hours`` after the latest she usually gets up (or after that day's own time, if
    later): a late morning for her, not for a fixed clock."""
    wake = labelled_wake(bg, day)
    latest = usual_latest_wake(bg)
    if wake is None or latest is None:
        return None
    until = max(wake, bg.at(day, time(0, 0)) + int(latest * MINUTE_MS)) + int(hours * HOUR_MS)
    beds = _bed_devices(bg)
    # Nothing outside the bedroom and bathroom from 04:00 (a trip to the kitchen before getting up is gone too).
    up_rooms = {d for d, spec in bg.home.devices.items() if spec.room not in ("bedroom", "bathroom")}
    early = [a.start_ms for a in bg.activations if a.device in up_rooms and bg.at(day, time(4, 0)) <= a.start_ms < wake]
    hold_from = min([wake - 10 * MINUTE_MS, *early])
    result: list[Activation] = []
    for a in bg.activations:
        if a.device in beds:
            # the night's occupied spell lasts until she gets up, later
            if wake - 2 * HOUR_MS <= a.end_ms <= wake + HOUR_MS and a.start_ms < wake:
                a = replace(a, end_ms=until, injected=True)
            elif wake <= a.start_ms < until:
                continue
        elif hold_from <= a.start_ms < until:
            continue
        elif a.start_ms < hold_from < a.end_ms < until:
            # nothing changes while she is in bed: a door open since the night stays open, a PIR sees nothing
            motion = bg.home.devices[a.device].kind == "motion"
            a = replace(a, end_ms=hold_from if motion else until)
        result.append(a)
    note = f"up at {bg.local(until):%H:%M}, {hours:g} h after her latest usual getting-up"
    return _sorted(result), Injected("late_morning", wake, until, note)


def inject_silence(bg: Background, day: date, hours: float = 5.0) -> tuple[list[Activation], Injected] | None:
    """From a moment she is at home, awake and busy (the labels show her neither asleep nor out in the hour
    before, she is not in bed, and sensors saw her in that hour), nothing changes for ``hours``: she has
    collapsed. What the labels say she did after that moment no longer happens."""
    wake = labelled_wake(bg, day)
    first = max(bg.at(day, time(9, 0)), (wake or 0) + HOUR_MS)
    beds = _bed_devices(bg)
    length = int(hours * HOUR_MS)
    first += -first % (30 * MINUTE_MS)
    for start in range(first, bg.at(day, time(16, 0)) + 1, 30 * MINUTE_MS):
        end = start + length
        away = any(
            label.state in ("asleep", "out") and label.start_ms < start and label.end_ms > start - HOUR_MS
            for label in bg.labels
        )
        in_bed = any(a.device in beds and a.start_ms <= start < a.end_ms for a in bg.activations)
        busy = sum(1 for a in bg.activations if start - HOUR_MS <= a.start_ms < start)
        if away or in_bed or busy < 3:
            continue
        result: list[Activation] = []
        for a in bg.activations:
            if start <= a.start_ms < end:
                continue
            if a.start_ms < start < a.end_ms:
                kind = bg.home.devices[a.device].kind
                # still as she was: a door stays open, a chair occupied; a PIR sees no one
                a = replace(a, end_ms=start) if kind == "motion" else replace(a, end_ms=max(a.end_ms, end))
            result.append(a)
        return _sorted(result), Injected("silence", start, end, f"no sensor changes for {hours:g} h")
    return None


def _asleep_at(bg: Background, ts_ms: int) -> bool:
    state = bg.state_at(ts_ms)
    if any(label.state == "asleep" for label in bg.labels):
        return state == "asleep"
    quiet = [a for a in bg.activations if ts_ms - HOUR_MS <= a.start_ms < ts_ms + HOUR_MS]
    return state is None and not quiet


def _night_start(bg: Background, day: date, clocks: tuple[time, ...]) -> int | None:
    night = day + timedelta(days=1)
    for clock in clocks:
        start = bg.at(night, clock)
        # asleep for an hour already, and for the 40 minutes the change takes
        if all(_asleep_at(bg, start + offset * MINUTE_MS) for offset in (-60, -30, 0, 40)):
            return start
    return None


def inject_night_wandering(bg: Background, day: date) -> tuple[list[Activation], Injected] | None:
    start = _night_start(bg, day, (time(2, 30), time(3, 0), time(2, 0), time(3, 30), time(1, 30), time(4, 0)))
    if start is None:
        return None
    end = start + 40 * MINUTE_MS
    about = _devices(bg, ("kitchen", "living_room", "hallway", "other"),
                     ("fridge_door", "contact", "door", "plug", "chair"))
    pirs = _devices(bg, ("kitchen", "living_room", "hallway", "other"), ("motion",))
    bedroom = _devices(bg, ("bedroom",), ("door", "motion"))
    added: list[Activation] = []
    for device in bedroom:
        added += [_add(device, start + MINUTE_MS, 20), _add(device, end - 2 * MINUTE_MS, 20)]
    # Kitchen first (the fridge, then cupboards), then the rest: six uses, a few minutes apart.
    about.sort(key=lambda d: (bg.home.devices[d].room != "kitchen", bg.home.devices[d].kind != "fridge_door"))
    for index, device in enumerate(about[:6]):
        added.append(_add(device, start + (3 + 6 * index) * MINUTE_MS, 40))
    for index, device in enumerate(pirs):
        added.append(_add(device, start + (4 + 9 * index) * MINUTE_MS, 120))
    result = _free_bed(bg.activations, _bed_devices(bg), start, end) + added
    return _sorted(result), Injected("night_wandering", start, end, f"up at night through {len(about[:6])} devices")


def inject_front_door_at_night(bg: Background, day: date) -> tuple[list[Activation], Injected] | None:
    start = _night_start(bg, day, (time(2, 15), time(2, 45), time(1, 45), time(3, 15)))
    doors = _devices(bg, ("hallway", "kitchen", "living_room", "bedroom", "bathroom", "other"), ("front_door",))
    if start is None or not doors:
        return None
    out_of_bed = start - 5 * MINUTE_MS
    back = start + 20 * MINUTE_MS
    added = [_add(doors[0], start, 20), _add(doors[0], back, 15)]
    for device in _devices(bg, ("bedroom", "hallway"), ("door", "motion")):
        added += [_add(device, out_of_bed + MINUTE_MS, 20), _add(device, back + 2 * MINUTE_MS, 20)]
    result = _free_bed(bg.activations, _bed_devices(bg), out_of_bed, back + 8 * MINUTE_MS) + added
    return _sorted(result), Injected("front_door_at_night", start, back, "out of the front door at night")


def _capped_end(a: Activation) -> int:
    """A sensor stuck on for hours is not an hours-long visit: a visit's part of it is its first 10 minutes."""
    return min(a.end_ms, a.start_ms + 10 * MINUTE_MS)


def inject_more_bathroom_visits(bg: Background, day: date, days: int = 4) -> tuple[list[Activation], Injected] | None:
    begin, finish = bg.at(day, time(0, 0)), bg.at(day + timedelta(days=days), time(0, 0))
    bathroom = {d for d, spec in bg.home.devices.items() if spec.room == "bathroom"}
    if not bathroom:
        return None
    visits: list[list[Activation]] = []
    for a in bg.activations:
        if a.device in bathroom and begin - DAY_MS <= a.start_ms < finish + DAY_MS:
            if visits and a.start_ms - max(_capped_end(v) for v in visits[-1]) <= VISIT_GAP_MS:
                visits[-1].append(a)
            else:
                visits.append([a])
    # A copy must not fall on another visit (it would be the same visit), or where the flush counts the visits
    # on another flush.
    taken = [(min(a.start_ms for a in v), max(_capped_end(a) for a in v)) for v in visits]
    beds = _bed_devices(bg)
    result = list(bg.activations)
    copies = 0
    first: int | None = None
    flushes = {d for d in bathroom if bg.home.devices[d].kind == "flush"}
    flushing = sum(1 for a in bg.activations if a.device in flushes) >= (bg.end_ms - bg.start_ms) / DAY_MS

    def toilet_visit(visit: list[Activation]) -> bool:
        """A toilet visit: one with a flush where the flush sensor works; elsewhere any visit (the sensors cannot
        tell the toilet from washing, and neither can the rules)."""
        return not flushing or any(a.device in flushes for a in visit)

    if flushing:
        taken = [(a.start_ms, a.start_ms + SECOND_MS) for v in visits for a in v if a.device in flushes]
    for visit in visits:
        if not begin <= visit[0].start_ms < finish or not toilet_visit(visit):
            continue
        length = max(_capped_end(a) for a in visit) - visit[0].start_ms
        for after in COPY_AFTER_MS:  # 45 minutes later, or the nearest free time within two hours
            start = visit[0].start_ms + after
            end = start + length
            free = not any(s < end + VISIT_GAP_MS and e > start - VISIT_GAP_MS for s, e in taken)
            if free and bg.state_at(start) != "out":
                break
        else:
            continue
        copy = [
            Activation(a.start_ms + after, _capped_end(a) + after, a.device, injected=True)
            for a in visit
        ]
        taken.append((start, end))
        result = _free_bed(result, beds, start - 2 * MINUTE_MS, end + 2 * MINUTE_MS) + copy
        copies += 1
        first = start if first is None else min(first, start)
    if not copies or first is None:
        return None
    return _sorted(result), Injected("more_bathroom_visits", first, finish, f"{copies} extra visits over {days} days")


INJECTORS = {
    "late_morning": inject_late_morning,
    "silence": inject_silence,
    "night_wandering": inject_night_wandering,
    "more_bathroom_visits": inject_more_bathroom_visits,
    "front_door_at_night": inject_front_door_at_night,
}
# The day (in the second play) each change starts on, and the days after it to try when the labels do not allow
# it that day (she was out, or nothing to copy).
INJECTION_DAY = {
    "late_morning": 9,
    "silence": 10,
    "night_wandering": 11,
    "more_bathroom_visits": 6,
    "front_door_at_night": 12,
}


def inject(bg: Background, kind: str, tries: int = 7) -> tuple[list[Activation], Injected] | None:
    """Inject ``kind`` on its day of the second play, or the first day after it where the labels allow it."""
    first = INJECTION_DAY[kind]
    for offset in range(first, first + tries):
        day = bg.day(offset)
        if bg.at(day + timedelta(days=1), time(12, 0)) + (4 * DAY_MS if kind == "more_bathroom_visits" else 0) \
                > bg.end_ms:
            break
        done = INJECTORS[kind](bg, day)
        if done is not None:
            return done
    return None
