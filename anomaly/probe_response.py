"""Soil probes that stop responding: rain or watering that the neighbouring probes see, and this one does not.

A failed soil probe rarely goes wild; it goes flat, or reads a wet or dry soil much the same. The one sign that
separates "dry and nobody watered it" from "broken" is a *shared wetting*: most probes around it rise (rain, or
the park's irrigation) within a few hours, and this one stays where it was. ``ProbeResponses`` keeps, per soil
probe, its latest rise and a count of shared wettings it missed in a row; after ``MISSES_TO_REPORT`` in a row the
probe is reported (once), and it is cleared when it rises with its neighbours again.

A rise is at least ``RISE_PCT`` above the probe's lowest reading of the last three hours. A wetting is shared
when, within ``WETTING_WINDOW_MS`` of its first rise, at least ``SHARED_SHARE`` of the probes heard lately rose
(and at least ``MIN_PROBES`` of them): a single bed's watering says nothing about its neighbours.

State is plain data (dicts of numbers), so it can be saved. This module must not raise findings itself: it
answers which probes started or stopped failing to respond.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from placesense.basics.timeunits import HOUR_MS

RISE_PCT = 1.0
RISE_LOOKBACK_MS = 3 * HOUR_MS
SLOT_MS = 5 * 60_000
WETTING_WINDOW_MS = 6 * HOUR_MS
SHARED_SHARE = 0.75
MIN_PROBES = 3
HEARD_WITHIN_MS = 12 * HOUR_MS  # a probe silent for longer is not expected to respond
MISSES_TO_REPORT = 2


@dataclass(slots=True)
class _Probe:
    recent: list[tuple[int, float]] = field(default_factory=list)  # the last three hours' lows, oldest first
    last_heard_ms: int = 0
    last_rise_ms: int | None = None
    misses: int = 0
    reported: bool = False


@dataclass(slots=True)
class ProbeResponses:
    """Shared wettings among soil probes and the probes that missed them."""

    probes: dict[str, _Probe] = field(default_factory=dict)
    wetting_start_ms: int | None = None  # the first rise of a wetting still being gathered
    risen: dict[str, int] = field(default_factory=dict)  # probes that rose in that wetting -> when

    def forget(self, device_id: str) -> None:
        """Drop one probe (erasure of its bed)."""
        self.probes.pop(device_id, None)
        self.risen.pop(device_id, None)

    def observe(self, device_id: str, ts_ms: int, moisture: float) -> dict[str, bool]:
        """Take one reading; returns {device: True} for probes now failing to respond, {device: False} for
        reported probes that responded again (usually empty)."""
        probe = self.probes.get(device_id)
        if probe is None:
            probe = self.probes[device_id] = _Probe()
        recent = probe.recent
        while recent and recent[0][0] < ts_ms - RISE_LOOKBACK_MS:
            del recent[0]
        low = min((v for _, v in recent), default=moisture)
        # One entry per SLOT_MS (its lowest value) keeps the window short whatever the reporting rate.
        if recent and ts_ms - recent[-1][0] < SLOT_MS:
            recent[-1] = (recent[-1][0], min(recent[-1][1], moisture))
        else:
            recent.append((ts_ms, moisture))
        probe.last_heard_ms = max(probe.last_heard_ms, ts_ms)
        changes = self._close_wetting(ts_ms)
        if moisture >= low + RISE_PCT:
            probe.last_rise_ms = ts_ms
            if self.wetting_start_ms is None:
                self.wetting_start_ms = ts_ms
            self.risen.setdefault(device_id, ts_ms)
        return changes

    def _close_wetting(self, now_ms: int) -> dict[str, bool]:
        start = self.wetting_start_ms
        if start is None or now_ms - start < WETTING_WINDOW_MS:
            return {}
        risen, self.risen, self.wetting_start_ms = self.risen, {}, None
        heard = [d for d, p in self.probes.items() if start - p.last_heard_ms <= HEARD_WITHIN_MS]
        if len(risen) < MIN_PROBES or len(risen) < SHARED_SHARE * len(heard):
            return {}
        changes: dict[str, bool] = {}
        for device_id in heard:
            probe = self.probes[device_id]
            if device_id in risen:
                probe.misses = 0
                if probe.reported:
                    probe.reported = False
                    changes[device_id] = False
                continue
            probe.misses += 1
            if probe.misses >= MISSES_TO_REPORT and not probe.reported:
                probe.reported = True
                changes[device_id] = True
        return changes

    def missed(self, device_id: str) -> int:
        probe = self.probes.get(device_id)
        return 0 if probe is None else probe.misses
