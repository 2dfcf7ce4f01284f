"""``help_button``: the help button was pressed (critical). Each press counts, even after someone acknowledged
the last. This module must not touch alerts, storage or MQTT.
"""

from __future__ import annotations

from dataclasses import replace

from devices.readings import Reading
from devices.registry import DeviceSpec
from placesense.basics.findings import Finding, care_finding
from placesense.basics.localtime import hm
from placesense.basics.texts import text
from rules.config import HelpButtonRule
from rules.home.check import Shared
from rules.home.picture import HomePicture


class HelpButtonCheck:
    """Every press of a help button is a finding of its own."""

    def __init__(self, shared: Shared) -> None:
        self._lookup = shared.lookup

    def on_reading(self, reading: Reading, device: DeviceSpec, home: HomePicture) -> list[Finding]:
        if device.kind == "help_button" and reading.metrics.get("help_pressed") == 1:
            return self._help(reading, device, home)
        return []

    def _help(self, reading: Reading, device: DeviceSpec, home: HomePicture) -> list[Finding]:
        cfg = self._lookup.get(HelpButtonRule, reading.subject)
        if not cfg.enabled:
            return []
        message = text("help_button", time=hm(reading.ts_ms, home.tz), room=device.room)
        pressed = care_finding(
            "help_button", reading.subject, cfg.severity, message, reading.ts_ms, device_id=device.id
        )
        return [replace(pressed, new_event=True)]  # each press counts, even after someone acknowledged the last

