"""A ``Finding``: what a rule or detector concluded about one subject, before it becomes an alert."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from placesense.basics.texts import Text

# Who acts on a finding (the care team, street teams, operations): the audience of its alert and of its MQTT topic.
Audience = Literal["care", "street", "ops"]
# How urgent it is; the API, the alert store and the rules configuration all use these three words.
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition that holds (``active=True``) or has cleared (``active=False``) for (rule, subject).

    ``message`` is plain English a carer or operative understands, with the evidence in words;
    ``evidence`` holds the numbers behind it. ``text``, when the rule built the message from a template
    (``placesense.basics.texts``), is that template and its parameters: ``message`` is its English rendering, and
    the alert keeps it so the message can be read in Welsh too.
    """

    rule: str
    audience: Audience
    subject: str
    severity: Severity
    message: str
    at_ms: int
    active: bool = True
    evidence: Mapping[str, float | int | str | None] = field(default_factory=dict)
    device_id: str | None = None
    # A new event a person must see even if they are already dealing with the alert (a second help press):
    # it brings an acknowledged alert back to open at the finding's severity, with its own history entry and
    # notification, instead of being folded into the alert as a repeat.
    new_event: bool = False
    text: Text | None = None


def care_finding(
    rule: str,
    home_id: str,
    severity: Severity,
    message: str | Text,
    at_ms: int,
    active: bool = True,
    evidence: Mapping[str, float | int | str | None] | None = None,
    device_id: str | None = None,
) -> Finding:
    """A finding for a home's care team, from plain words or a template (kept as ``text``, so the alert reads in
    Welsh too): how the home-care rules and the routine detector both word theirs."""
    words = message if isinstance(message, Text) else None
    return Finding(
        rule=rule, audience="care", subject=home_id, severity=severity,
        message=words.english if words is not None else str(message), at_ms=at_ms, active=active,
        evidence=dict(evidence or {}), device_id=device_id, text=words,
    )
