"""What an alert change owes whom: the MQTT alert topic, each webhook, the person on call and the rota's chats.

``Router.intents(change, at_ms, told)`` lists the deliveries of one change, with their words, for the outbox to
store in the change's transaction:

- MQTT and webhooks get the alert JSON (with ``action`` and the delivery's ``message_id``) for every change worth
  interrupting someone for (``NOTIFY_ACTIONS``);
- the person on call (``rules.rota``) at the change's time and escalation step gets a text message and/or an email
  when the alert opens, is raised, escalated, reminded, repeated or reopened, with an acknowledge link; when
  someone acknowledges or resolves it, everyone told before hears who did (no link), so the manager woken at
  step two knows the carer has it;
- the rota's chat targets (Teams and the like, through Apprise) see every one of those changes.

Words are plain: what happened, where (the pseudonymous home id or the bed), and what to do. Names of residents
never leave the registry, so they are not in any message. This module decides and words; it must not store or send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from placesense.alerts.changes import AlertChange, alert_to_json
from placesense.basics import texts
from rules.rota import NotificationsConfig

# Changes worth interrupting someone for; a repeat that only refreshes the wording goes to the feed only.
NOTIFY_ACTIONS = frozenset({
    "opened", "severity_raised", "escalated", "acknowledged", "resolved", "reminder", "repeated", "reopened",
})
# Changes that ask the person on call to act (and so carry an acknowledge link).
CALL_ACTIONS = frozenset({"opened", "severity_raised", "escalated", "reminder", "repeated", "reopened"})
CLOSING_ACTIONS = frozenset({"acknowledged", "resolved"})
LINK_PLACEHOLDER = "{link}"


def alert_topic(audience: str, subject: str, prefix: str = "") -> str:
    """The MQTT topic of an alert, ``{prefix}placesense/v1/alerts/{audience}/{subject}``; refuses subjects that
    would break out of their topic level."""
    for part in (audience, subject):
        if not part or any(c in part for c in "/+#\0"):
            raise ValueError(f"{part!r} cannot be an MQTT topic level")
    return f"{prefix}placesense/v1/alerts/{audience}/{subject}"


@dataclass(frozen=True, slots=True)
class Intent:
    """One delivery to write: ``channel`` is mqtt, webhook, sms, email or chat."""

    channel: str
    recipient: str
    payload: dict[str, Any]
    person: str | None = None
    step: int = 0
    link: bool = False


@dataclass
class Router:
    """Who is told what, from the rules file's rotas and the channels this installation has set up."""

    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    mqtt_prefix: str | None = None  # None: no MQTT alert topic
    webhook_urls: Sequence[str] = ()
    contacts: frozenset[str] = frozenset()  # "sms", "email": the person channels set up
    chats: frozenset[str] = frozenset()  # chat target names set up
    care_teams: Mapping[str, str] = field(default_factory=dict)  # home -> care team (registry)
    links: bool = False  # whether messages to people carry acknowledge links

    def intents(self, change: AlertChange, at_ms: int, told: Sequence[str] = ()) -> list[Intent]:
        if change.action not in NOTIFY_ACTIONS:
            return []
        alert = change.alert
        body = alert_to_json(alert, change.action)
        found: list[Intent] = []
        if self.mqtt_prefix is not None:
            topic = alert_topic(alert.audience, alert.subject, self.mqtt_prefix)
            found.append(Intent("mqtt", topic, body))
        found.extend(Intent("webhook", url, body) for url in self.webhook_urls)
        on_call = self.notifications.on_call(alert.audience, alert.subject, at_ms, alert.reminders, self.care_teams)
        if change.action in CALL_ACTIONS:
            if on_call is not None and on_call.person is not None:
                found.extend(self._to_person(change, on_call.person, alert.reminders, link=self.links))
        elif change.action in CLOSING_ACTIONS:
            actor = alert.history[-1].who if alert.history else ""
            for person_id in told:
                person = self.notifications.people.get(person_id)
                # The one who acted (by name, or by the link in their message: "Name (link in message)") knows.
                if person is not None and actor != person.name and not actor.startswith(f"{person.name} ("):
                    found.extend(self._to_person(change, person_id, alert.reminders, link=False))
        if on_call is not None:
            chat_text = self.text(change)
            for target in on_call.chat:
                if target in self.chats:
                    found.append(Intent("chat", target, {"title": self.subject_line(change), "text": chat_text}))
        return found

    def _to_person(self, change: AlertChange, person_id: str, step: int, link: bool) -> list[Intent]:
        person = self.notifications.people[person_id]
        lang = person.lang
        words = self.text(change, lang)
        if link:
            words += "\n" + texts.text("notify.link", link=LINK_PLACEHOLDER).render(lang)
        return [
            Intent(how, address, {"title": self.subject_line(change, lang), "text": words, "name": person.name},
                   person=person_id, step=step, link=link)
            for how, address in person.contacts()
            if how in self.contacts
        ]

    @staticmethod
    def subject_line(change: AlertChange, lang: texts.Lang = "en") -> str:
        alert = change.alert
        if change.action in CLOSING_ACTIONS:
            closed = texts.text("notify.subject.closed", action=change.action, rule=alert.rule, place=alert.subject)
            return closed.render(lang)
        return texts.text("notify.subject", lead=alert.severity, rule=alert.rule, place=alert.subject).render(lang)

    @staticmethod
    def text(change: AlertChange, lang: texts.Lang = "en") -> str:
        """The words a person reads, in a text message or an email, in their language (``lang`` on the person in
        the notifications set-up); the alert's own message in that language when it has it
        (``placesense.basics.texts``)."""
        alert = change.alert
        last = alert.history[-1] if alert.history else None
        message = texts.renderings(alert.text, alert.message).get(lang, alert.message)
        place = texts.text("notify.place", subject=alert.subject, audience=alert.audience)
        who = last.who if last else texts.text("notify.someone")
        if change.action in ("acknowledged", "resolved"):
            return texts.text(f"notify.{change.action}", who=who, place=place, message=message).render(lang)
        key = "notify.opened"
        note = None
        if change.action == "escalated" and last is not None and last.note:
            key, note = "notify.escalated", last.note
        elif change.action == "reminder":
            key = "notify.reminder"
        elif change.action in ("repeated", "reopened"):
            key = "notify.again"
        return texts.text(key, lead=alert.severity, note=note, place=place, message=message).render(lang)

    @staticmethod
    def with_link(text: str, link: str | None) -> str:
        """Fill in (or, with no link, take out) the acknowledge line, in whichever language it was written."""
        if link is None:
            return "\n".join(line for line in text.split("\n") if not line.endswith(f": {LINK_PLACEHOLDER}"))
        return text.replace(LINK_PLACEHOLDER, link)
