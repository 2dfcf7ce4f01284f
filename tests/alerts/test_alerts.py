"""The alert lifecycle through its public interface: dedup, severity up, auto-resolve, ack, resolve, escalation,
the audit trail, filters, and a restart on the same database file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from placesense.alerts.changes import AlertChange, alert_to_json
from placesense.alerts.lifecycle import AlertNotFoundError, AlertService, AlertStateError
from placesense.alerts.store import AlertStore
from placesense.alerts.tables import alerts_table
from placesense.basics.clock import EventClock
from placesense.basics.db import make_engine
from placesense.basics.findings import Finding
from rules.config import rules_from_data
from tests.rules.factory import MINUTE

pytestmark = pytest.mark.both_databases

T0 = 1_767_600_000_000


class Recorder:
    def __init__(self) -> None:
        self.changes: list[AlertChange] = []

    def publish(self, change: AlertChange) -> None:
        self.changes.append(change)

    @property
    def actions(self) -> list[str]:
        return [c.action for c in self.changes]


def finding(
    at_ms: int,
    rule: str = "inactivity",
    subject: str = "h-1",
    severity: str = "warning",
    active: bool = True,
    message: str = "No movement anywhere since 13:05 (3 h)",
) -> Finding:
    return Finding(
        rule=rule,
        audience="care",
        subject=subject,
        severity=severity,  # type: ignore[arg-type]
        message=message,
        at_ms=at_ms,
        active=active,
        evidence={"gap_minutes": 180},
    )


@pytest.fixture
def clock() -> EventClock:
    return EventClock(T0)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def service(database_url: str, clock: EventClock, recorder: Recorder) -> AlertService:
    return AlertService(AlertStore(make_engine(database_url)), clock, publishers=[recorder])


def test_repeats_update_the_one_open_alert_and_raise_severity(service: AlertService, recorder: Recorder) -> None:
    first = service.apply(finding(T0))
    assert first is not None and first.state == "open" and first.severity == "warning"
    same = service.apply(finding(T0 + MINUTE))
    assert same is not None and same.id == first.id and same.history == first.history  # nothing new to record
    worded = service.apply(finding(T0 + 2 * MINUTE, message="No movement anywhere since 13:05 (3 h 2 min)"))
    lower = service.apply(finding(T0 + 3 * MINUTE, severity="info"))
    higher = service.apply(finding(T0 + 4 * MINUTE, severity="critical"))
    assert worded is not None and lower is not None and higher is not None
    assert {worded.id, lower.id, higher.id} == {first.id}
    assert lower.severity == "warning"  # never lowered by a repeat
    assert higher.severity == "critical" and higher.updated_at_ms == T0 + 4 * MINUTE
    assert [h.action for h in higher.history] == ["opened", "updated", "updated", "severity_raised"]
    assert recorder.actions == ["opened", "updated", "updated", "severity_raised"]
    assert len(service.list_alerts(state="open")) == 1


def test_auto_resolve_then_a_new_alert(service: AlertService) -> None:
    opened = service.apply(finding(T0))
    resolved = service.apply(finding(T0 + 10 * MINUTE, active=False, message="Movement again: kitchen at 16:20"))
    assert opened is not None and resolved is not None and resolved.id == opened.id
    assert resolved.state == "resolved"
    assert resolved.history[-1].action == "resolved" and resolved.history[-1].note == "Movement again: kitchen at 16:20"
    assert service.apply(finding(T0 + 11 * MINUTE, active=False)) is None  # nothing open: nothing to do
    again = service.apply(finding(T0 + 20 * MINUTE))
    assert again is not None and again.id != opened.id and again.state == "open"


def test_ack_and_resolve_by_people_with_notes(service: AlertService, clock: EventClock) -> None:
    alert = service.apply(finding(T0))
    assert alert is not None
    clock.observe(T0 + 5 * MINUTE)
    acked = service.ack(alert.id, "carer:sam", "Phoned, no answer; visiting")
    assert acked.state == "acknowledged"
    assert service.ack(alert.id, "carer:sam") == acked  # twice is harmless
    updated = service.apply(finding(T0 + 6 * MINUTE, message="No movement anywhere since 13:05 (4 h)"))
    assert updated is not None and updated.state == "acknowledged"  # a repeat does not undo the ack
    clock.observe(T0 + 30 * MINUTE)
    done = service.resolve(alert.id, "carer:sam", "Found well, was asleep in the chair")
    assert done.state == "resolved"
    assert [(h.who, h.action, h.note, h.at_ms) for h in done.history] == [
        ("placesense", "opened", "No movement anywhere since 13:05 (3 h)", T0),
        ("carer:sam", "acknowledged", "Phoned, no answer; visiting", T0 + 5 * MINUTE),
        ("placesense", "updated", "No movement anywhere since 13:05 (4 h)", T0 + 6 * MINUTE),
        ("carer:sam", "resolved", "Found well, was asleep in the chair", T0 + 30 * MINUTE),
    ]
    with pytest.raises(AlertStateError):
        service.ack(alert.id, "carer:sam")
    with pytest.raises(AlertNotFoundError):
        service.resolve(999, "carer:sam")


def test_escalation_raises_severity_and_notifies_until_acknowledged(
    database_url: str, clock: EventClock, recorder: Recorder
) -> None:
    config = rules_from_data({"escalation": {"after_minutes": {"care": 30}, "max_reminders": 2}})
    service = AlertService(AlertStore(make_engine(database_url)), clock, config, publishers=[recorder])
    alert = service.apply(finding(T0))
    other = service.apply(finding(T0, subject="h-2"))
    assert alert is not None and other is not None
    service.ack(other.id, "carer:ana")
    assert service.tick(T0 + 29 * MINUTE) == []
    [escalated] = service.tick(T0 + 30 * MINUTE)
    assert escalated.id == alert.id and escalated.severity == "critical" and escalated.reminders == 1
    assert escalated.history[-1].note == "Not acknowledged after 30 min: raised to critical"
    assert service.tick(T0 + 45 * MINUTE) == []
    [reminded] = service.tick(T0 + 60 * MINUTE)
    assert reminded.history[-1].note == "Not acknowledged after 60 min: reminder"
    assert service.tick(T0 + 120 * MINUTE) == []  # max_reminders reached
    assert recorder.actions.count("escalated") == 2


def test_rule_specific_escalation_time(database_url: str, clock: EventClock) -> None:
    config = rules_from_data({"help_button": {"escalate_after_minutes": 5}})
    service = AlertService(AlertStore(make_engine(database_url)), clock, config)
    service.apply(finding(T0, rule="help_button", severity="critical", message="Help button pressed at 14:32"))
    [reminder] = service.tick(T0 + 5 * MINUTE)
    assert reminder.severity == "critical" and reminder.history[-1].action == "escalated"


def test_list_and_filter(service: AlertService) -> None:
    service.apply(finding(T0, subject="h-1"))
    service.apply(finding(T0 + 1, subject="h-2"))
    service.apply(Finding("needs_water", "street", "bed-001", "warning", "Bed needs water now", T0 + 2))
    b = service.apply(finding(T0 + 3, rule="night_door", subject="h-2"))
    assert b is not None
    service.ack(b.id, "carer:ana")
    assert [a.subject for a in service.list_alerts(audience="care")] == ["h-2", "h-2", "h-1"]
    assert [a.rule for a in service.list_alerts(audience="care", state="acknowledged")] == ["night_door"]
    assert len(service.list_alerts(state="active")) == 4
    assert [a.subject for a in service.list_alerts(subjects=frozenset({"h-1"}))] == ["h-1"]
    assert [a.audience for a in service.list_alerts(subject="bed-001")] == ["street"]
    body = alert_to_json(service.get(b.id), "acknowledged")
    assert body["state"] == "acknowledged" and body["opened_at"].endswith("Z")
    assert body["history"][-1]["who"] == "carer:ana"


def test_restart_keeps_open_alerts_and_their_state(tmp_path: Path, clock: EventClock) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    first = AlertService(AlertStore(make_engine(url)), clock)
    opened = first.apply(finding(T0))
    acked = first.apply(finding(T0, subject="h-2"))
    assert opened is not None and acked is not None
    first.ack(acked.id, "carer:ana", "on it")
    first.store.engine.dispose()

    second = AlertService(AlertStore(make_engine(url)), clock)
    assert {(a.subject, a.state) for a in second.list_alerts(state="active")} == {
        ("h-1", "open"),
        ("h-2", "acknowledged"),
    }
    repeat = second.apply(finding(T0 + MINUTE, message="No movement anywhere since 13:05 (3 h 1 min)"))
    assert repeat is not None and repeat.id == opened.id  # dedup survives the restart
    assert second.get(acked.id).history[-1].note == "on it"


def test_the_database_refuses_a_second_open_alert_for_the_same_rule_and_subject(service: AlertService) -> None:
    service.apply(finding(T0))
    with pytest.raises(IntegrityError), service.store.engine.begin() as conn:
        conn.execute(
            alerts_table.insert().values(
                rule="inactivity",
                audience="care",
                subject="h-1",
                severity="info",
                state="open",
                opened_at=T0,
                updated_at=T0,
                message="x",
                evidence={},
                open_key="inactivity/h-1",
                last_notified_at=T0,
                reminders=0,
            )
        )


def test_a_failing_publisher_does_not_break_the_lifecycle(database_url: str, clock: EventClock) -> None:
    class Broken:
        def publish(self, change: AlertChange) -> None:
            raise RuntimeError("broker on fire")

    recorder = Recorder()
    service = AlertService(AlertStore(make_engine(database_url)), clock, publishers=[Broken(), recorder])
    assert service.apply(finding(T0)) is not None
    assert recorder.actions == ["opened"]


def _press(at_ms: int) -> Finding:
    words = "Help button pressed at 10:31 (hallway). Call or visit now."
    return Finding("help_button", "care", "h-1", "critical", words, at_ms, True, {}, "h-1-help", new_event=True)


def test_a_press_after_acknowledgement_makes_the_alert_critical_and_open_again(
    service: AlertService, recorder: Recorder, clock: EventClock
) -> None:
    first = service.apply(_press(T0))
    assert first is not None and first.state == "open"
    service.ack(first.id, "carer-anna", "on my way")
    # Escalated reminders would have raised an unacknowledged alert; here the carer acknowledged at once.
    # She presses again within the same minute, with the same words: it must not vanish into the open alert.
    again = service.apply(_press(T0 + 20_000))
    assert again is not None and again.id == first.id
    assert again.state == "open" and again.severity == "critical"
    assert [h.action for h in again.history] == ["opened", "acknowledged", "reopened"]
    assert recorder.actions[-1] == "reopened"
    # Pressed again while nobody has acknowledged: within a minute it is folded into the open alert (a stuck
    # button writes no history row a second); a minute on, it is recorded and sent again.
    folded = service.apply(_press(T0 + 40_000))
    assert folded is not None and [h.action for h in folded.history][-1] == "reopened"
    third = service.apply(_press(T0 + 90_000))
    assert third is not None and [h.action for h in third.history][-1] == "repeated"
    assert recorder.actions[-1] == "repeated"
    # The ordinary repeat of a condition (not a new event) still changes nothing.
    service.ack(first.id, "carer-anna", "with her now")
    unchanged = service.apply(finding(T0 + 120_000, rule="help_button", severity="critical",
                                      message="Help button pressed at 10:31 (hallway). Call or visit now."))
    assert unchanged is not None and unchanged.state == "acknowledged"
