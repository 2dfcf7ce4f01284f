"""Notifications to people, through the outbox: rotas, escalation along the chain, GOV.UK Notify, SMTP, Teams, and
at-least-once delivery across a restart — on SQLite and PostgreSQL.

Real where a real peer runs here: the relational databases, an SMTP server (aiosmtpd), a webhook receiver. GOV.UK
Notify and Microsoft Teams cannot be reached from the test machine, so local servers speaking their documented
request formats stand in (``tests.alerts.fake_services``), called by the real client libraries
(``notifications-python-client``, Apprise).
"""

from __future__ import annotations

import email
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from notifications_python_client.notifications import NotificationsAPIClient
from sqlalchemy import Engine, func, select

from placesense.alerts.ack_links import AckLinks, LinkRefused
from placesense.alerts.channels.base import Channel
from placesense.alerts.channels.chat import AppriseChannel
from placesense.alerts.channels.govuk_notify import NotifySmsChannel
from placesense.alerts.channels.smtp import SmtpChannel, SmtpConfig
from placesense.alerts.channels.webhook import WebhookChannel
from placesense.alerts.dispatch import Dispatcher
from placesense.alerts.lifecycle import AlertService
from placesense.alerts.outbox import Outbox
from placesense.alerts.routing import Router
from placesense.alerts.store import AlertStore
from placesense.alerts.tables import links_table
from placesense.basics.clock import EventClock
from placesense.basics.db import make_engine
from placesense.basics.findings import Finding
from placesense.tools.localstack.process import free_port
from rules.config import rules_from_data
from tests.alerts.fake_services import FakeNotify, fake_notify, fake_teams
from tests.helpers import eventually, webhook_receiver
from tests.rules.factory import local_ms

pytestmark = pytest.mark.both_databases

HOME = "h-0001"
DAY_CARER, NIGHT_CARER, TEAM_LEADER, MANAGER = "07700900001", "07700900002", "07700900003", "07700900004"
ROTAS: dict[str, Any] = {
    "escalation": {"after_minutes": {"care": 30}},
    "notifications": {
        "people": {
            "amira": {"name": "Amira Khan", "sms": DAY_CARER},
            "dan": {"name": "Dan Evans", "sms": NIGHT_CARER},
            "bob": {"name": "Bob Jones", "sms": TEAM_LEADER, "email": "bob@council.example"},
            "cath": {"name": "Cath Price", "sms": MANAGER},
        },
        "rotas": [{
            "name": "care-north", "audience": "care", "care_team": "north",
            "shifts": [
                {"start": "08:00", "end": "20:00", "chain": ["amira", "bob", "cath"]},
                {"start": "20:00", "end": "08:00", "chain": ["dan", "bob", "cath"]},
            ],
            "fallback": ["cath"],
            "chat": ["care-north-teams"],
        }],
    },
}


def _help(at_ms: int) -> Finding:
    return Finding("help_button", "care", HOME, "warning", "Help button pressed (hallway). Call or visit now.", at_ms,
                   new_event=True)


class Rig:
    """The alert lifecycle with an outbox and a dispatcher over the channels given, on one database."""

    def __init__(self, engine: Engine, channels: list[Channel], clock: EventClock, links: AckLinks | None = None,
                 router: Router | None = None, **dispatch: Any) -> None:
        config = rules_from_data(ROTAS)
        self.router = router or Router(
            config.notifications, contacts=frozenset(c.name for c in channels if c.name in ("sms", "email")),
            chats=frozenset({"care-north-teams"} if any(c.name == "chat" for c in channels) else ()),
            care_teams={HOME: "north"}, links=links is not None,
        )
        self.outbox = Outbox(engine, self.router, links)
        self.dispatcher = Dispatcher(self.outbox, channels, poll_s=0.05, backoff_s=0.05, **dispatch)
        self.alerts = AlertService(AlertStore(engine), clock, config, outbox=self.outbox)


@pytest.fixture
def notify() -> Iterator[FakeNotify]:
    with fake_notify() as server:
        yield server


def _sms(server: FakeNotify) -> NotifySmsChannel:
    client = NotificationsAPIClient(server.api_key, base_url=server.url)
    return NotifySmsChannel(client, server.sms_template_id)


def test_the_rota_texts_whoever_is_on_call_at_two_in_the_morning_and_at_two_in_the_afternoon(
    database_url: str, notify: FakeNotify
) -> None:
    clock = EventClock()
    rig = Rig(make_engine(database_url), [_sms(notify)], clock)
    rig.dispatcher.start()
    try:
        night = local_ms(6, 2, 0, month=3)  # a Friday in March, 02:00 London time
        clock.observe(night)
        first = rig.alerts.apply(_help(night))
        assert first is not None
        eventually(lambda: notify.texts_to(NIGHT_CARER), what="the night carer's text")
        rig.alerts.resolve(first.id, "Dan Evans")
        afternoon = local_ms(6, 14, 0, month=3)
        clock.observe(afternoon)
        second = rig.alerts.apply(_help(afternoon))
        assert second is not None
        eventually(lambda: notify.texts_to(DAY_CARER), what="the day carer's text")
    finally:
        rig.dispatcher.stop()
    assert [t.split(".")[0] for t in notify.texts_to(NIGHT_CARER)] == ["Warning"]
    assert notify.texts_to(DAY_CARER)[0].startswith("Warning. h-0001 (care): Help button pressed")
    assert notify.texts_to(TEAM_LEADER) == [] and notify.texts_to(MANAGER) == []
    # GOV.UK Notify received our outbox id as its reference: a resend is recognisably the same message.
    references = {m["reference"] for m in notify.sent}
    assert references == {d.message_id for a in (first, second) for d in rig.outbox.for_alert(a.id)
                          if d.channel == "sms"}


def test_escalation_walks_the_chain_until_someone_acknowledges(database_url: str, notify: FakeNotify) -> None:
    clock = EventClock()
    rig = Rig(make_engine(database_url), [_sms(notify)], clock)
    rig.dispatcher.start()
    try:
        opened_at = local_ms(9, 10, 0, month=3)
        clock.observe(opened_at)
        alert = rig.alerts.apply(_help(opened_at))
        assert alert is not None
        eventually(lambda: notify.texts_to(DAY_CARER), what="the carer's text")
        clock.observe(opened_at + 29 * 60_000)
        assert rig.alerts.tick() == []  # not yet: the care team's escalation time is 30 minutes
        clock.observe(opened_at + 31 * 60_000)
        assert [a.id for a in rig.alerts.tick()] == [alert.id]
        leader = eventually(lambda: notify.texts_to(TEAM_LEADER), what="the team leader's text")
        assert "Not acknowledged after 31 min" in leader[0] and "Nobody has acknowledged it yet" in leader[0]
        assert notify.texts_to(MANAGER) == []
        rig.alerts.ack(alert.id, "Bob Jones", "on my way")
        # Everyone told before hears who has it (the one who acknowledged does not need telling).
        eventually(lambda: any("Bob Jones has acknowledged" in t for t in notify.texts_to(DAY_CARER)),
                   what="the carer told who has it")
        clock.observe(opened_at + 120 * 60_000)
        assert rig.alerts.tick() == []  # acknowledged: the chain stops here
        rig.dispatcher.send_due("sms")
    finally:
        rig.dispatcher.stop()
    assert notify.texts_to(MANAGER) == []
    assert len(notify.texts_to(TEAM_LEADER)) == 1
    steps = [(d.person, d.step, d.action, d.state) for d in rig.outbox.for_alert(alert.id)]
    assert steps == [("amira", 0, "opened", "sent"), ("bob", 1, "escalated", "sent"),
                     ("amira", 1, "acknowledged", "sent")]


def test_a_failed_text_is_reported_with_who_was_not_reached(database_url: str, notify: FakeNotify) -> None:
    notify.fail_numbers.add(DAY_CARER)
    clock = EventClock()
    rig = Rig(make_engine(database_url), [_sms(notify)], clock, people={"amira": "Amira Khan"})
    at = local_ms(9, 11, 0, month=3)
    clock.observe(at)
    alert = rig.alerts.apply(_help(at))
    assert alert is not None
    assert rig.dispatcher.send_due("sms") == 1
    assert rig.dispatcher.failing_since_ms() is None  # Notify took it; it does not know yet
    assert rig.dispatcher.check_receipts("sms") == 1
    assert rig.dispatcher.failing_since_ms() is not None
    assert "text messages to Amira Khan about alert" in rig.dispatcher.name
    assert "permanent-failure" in rig.dispatcher.name
    [delivery] = rig.outbox.for_alert(alert.id)
    assert delivery.state == "failed" and delivery.detail is not None and "permanent-failure" in delivery.detail


def test_a_restart_between_storing_the_alert_and_sending_loses_nothing_and_resends_with_the_same_id(
    database_url: str, notify: FakeNotify
) -> None:
    clock = EventClock()
    at = local_ms(9, 12, 0, month=3)
    clock.observe(at)
    before = Rig(make_engine(database_url), [_sms(notify)], clock)
    alert = before.alerts.apply(_help(at))  # stored, with its text in the outbox, and then the process dies
    assert alert is not None
    before.outbox.engine.dispose()
    assert notify.sent == []

    after = Rig(make_engine(database_url), [_sms(notify)], clock)
    [owed] = after.outbox.for_alert(alert.id)
    assert owed.state == "pending"
    # This run dies after the provider took the message and before marking it: the next run sends it again.
    after.dispatcher.channels["sms"].send(owed)
    again = Rig(make_engine(database_url), [_sms(notify)], clock)
    again.dispatcher.start()
    try:
        eventually(lambda: len(notify.texts_to(DAY_CARER)) == 2, what="the resend")
    finally:
        again.dispatcher.stop()
    assert [m["reference"] for m in notify.sent] == [owed.message_id, owed.message_id]
    [settled] = again.outbox.for_alert(alert.id)
    assert settled.state in ("sent", "delivered")  # delivered once the receipt check has run


def test_the_acknowledge_link_works_once_for_its_person_and_then_says_it_was_used(
    database_url: str, notify: FakeNotify
) -> None:
    engine = make_engine(database_url)
    links = AckLinks(engine, b"a-test-secret-of-32-characters!!", "https://placesense.test", valid_ms=3_600_000)
    clock = EventClock()
    rig = Rig(engine, [_sms(notify)], clock, links=links)
    at = local_ms(9, 13, 0, month=3)
    clock.observe(at)
    alert = rig.alerts.apply(_help(at))
    assert alert is not None
    rig.dispatcher.send_due("sms")
    [text] = notify.texts_to(DAY_CARER)
    link = text.rsplit("Acknowledge: ", 1)[1]
    assert link.startswith("https://placesense.test/ack/") and len(link) < 80  # short enough for a text
    token = link.rsplit("/", 1)[1]
    now = clock.now_ms() + 60_000
    target = links.use(token, now, "test")
    assert (target.alert_id, target.person) == (alert.id, "amira")
    with pytest.raises(LinkRefused) as used:
        links.use(token, now + 1, "test")
    assert used.value.why == "used"
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(LinkRefused) as unknown:
        links.check(forged, now)
    assert unknown.value.why == "unknown"


def test_links_expire(database_url: str) -> None:
    engine = make_engine(database_url)
    links = AckLinks(engine, b"another-secret-32-characters-long", "https://placesense.test", valid_ms=60_000)
    store = AlertStore(engine)
    with store.transaction() as conn:
        alert = store.insert(conn, rule="help_button", audience="care", subject=HOME, severity="critical", at_ms=1,
                             message="m", evidence={}, device_id=None, who="t", note=None)
        url = links.create(conn, alert.id, "amira", "msg_x", 1_000)
    token = url.rsplit("/", 1)[1]
    assert links.check(token, 60_999).alert_id == alert.id
    with pytest.raises(LinkRefused) as expired:
        links.use(token, 61_000, "test")
    assert expired.value.why == "expired"


class SmtpInbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


def test_email_goes_out_through_a_real_smtp_server(database_url: str) -> None:
    unused_tcp_port = free_port()
    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=unused_tcp_port)
    controller.start()
    try:
        smtp = SmtpChannel(SmtpConfig(host="127.0.0.1", port=unused_tcp_port, sender="alerts@council.example",
                                      security="none"))
        engine = make_engine(database_url)
        links = AckLinks(engine, b"a-test-secret-of-32-characters!!", "https://placesense.test", valid_ms=3_600_000)
        clock = EventClock()
        rig = Rig(engine, [smtp], clock, links=links)
        at = local_ms(9, 14, 0, month=3)
        clock.observe(at)
        alert = rig.alerts.apply(_help(at))
        assert alert is not None
        clock.observe(at + 31 * 60_000)
        rig.alerts.tick()  # the team leader has an email address
        assert rig.dispatcher.send_due("email") == 1
    finally:
        controller.stop()
    [message] = inbox.messages
    [delivery] = [d for d in rig.outbox.for_alert(alert.id) if d.channel == "email"]
    assert message["To"] == "bob@council.example" and message["From"] == "alerts@council.example"
    assert message["Message-ID"] == f"<{delivery.message_id}@placesense>"
    assert message["Subject"] == "URGENT: help button at h-0001"  # raised a step by the escalation
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes) and b"Acknowledge: https://placesense.test/ack/" in body
    assert delivery.state == "sent"


def test_teams_channel_gets_an_adaptive_card_through_apprise(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_teams(tmp_path) as teams:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(teams.certificate))  # trust the stand-in's own certificate
        chat = AppriseChannel({"care-north-teams": teams.apprise_url})
        clock = EventClock()
        rig = Rig(make_engine(database_url), [chat], clock)
        at = local_ms(9, 15, 0, month=3)
        clock.observe(at)
        alert = rig.alerts.apply(_help(at))
        assert alert is not None
        assert rig.dispatcher.send_due("chat") == 1
        assert teams.refused == 0
        [card_text] = teams.texts()
    assert "Help button pressed (hallway)" in card_text and HOME in card_text
    assert [d.state for d in rig.outbox.for_alert(alert.id)] == ["delivered"]


def test_a_lane_keeps_its_order_through_a_failed_attempt(database_url: str) -> None:
    with webhook_receiver() as (base, handler):
        url = f"{base}/hook"
        try:
            clock = EventClock()
            rig = Rig(make_engine(database_url), [WebhookChannel("a-webhook-secret-of-24-bytes")], clock,
                      router=Router(webhook_urls=[url]))
            at = local_ms(9, 16, 0, month=3)
            clock.observe(at)
            alert = rig.alerts.apply(_help(at))
            assert alert is not None
            rig.alerts.ack(alert.id, "Amira Khan")
            rig.alerts.resolve(alert.id, "Amira Khan")
            rig.dispatcher.start()
            eventually(lambda: len([c for c in handler.calls if c[0] == 204]) == 3, what="three deliveries")
        finally:
            rig.dispatcher.stop()
    # The first attempt failed; the acknowledgement waited for the opening to get through, and so on.
    assert [(status, orjson.loads(body)["action"]) for status, body, _ in handler.calls] == [
        (500, "opened"), (204, "opened"), (204, "acknowledged"), (204, "resolved")]
    assert handler.calls[0][2]["webhook-id"] == handler.calls[1][2]["webhook-id"]


def test_erasing_a_home_erases_what_was_sent_about_it(database_url: str, notify: FakeNotify) -> None:
    engine = make_engine(database_url)
    links = AckLinks(engine, b"a-test-secret-of-32-characters!!", "https://placesense.test", valid_ms=3_600_000)
    clock = EventClock()
    rig = Rig(engine, [_sms(notify)], clock, links=links)
    at = local_ms(9, 17, 0, month=3)
    clock.observe(at)
    alert = rig.alerts.apply(_help(at))
    assert alert is not None and rig.outbox.for_alert(alert.id)
    assert AlertStore(engine).delete_subject(HOME) == 1
    assert rig.outbox.for_alert(alert.id) == []
    assert rig.outbox.summaries([alert.id]) == {}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(links_table)).scalar_one() == 0
