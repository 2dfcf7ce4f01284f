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

from rules.alerts import AlertChange, alert_to_json
from rules.notify import NOTIFY_ACTIONS, alert_topic
from rules.rota import NotificationsConfig

# Changes that ask the person on call to act (and so carry an acknowledge link).
CALL_ACTIONS = frozenset({"opened", "severity_raised", "escalated", "reminder", "repeated", "reopened"})
CLOSING_ACTIONS = frozenset({"acknowledged", "resolved"})
LINK_PLACEHOLDER = "{link}"
SEVERITY_WORD = {"info": "For information", "warning": "Warning", "critical": "URGENT"}


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
        text = self.text(change) + (f"\nAcknowledge: {LINK_PLACEHOLDER}" if link else "")
        return [
            Intent(how, address, {"title": self.subject_line(change), "text": text, "name": person.name},
                   person=person_id, step=step, link=link)
            for how, address in person.contacts()
            if how in self.contacts
        ]

    @staticmethod
    def subject_line(change: AlertChange) -> str:
        alert = change.alert
        what = alert.rule.replace("_", " ")
        if change.action in CLOSING_ACTIONS:
            return f"{change.action.capitalize()}: {what} at {alert.subject}"
        return f"{SEVERITY_WORD[alert.severity]}: {what} at {alert.subject}"

    @staticmethod
    def text(change: AlertChange) -> str:
        """The words a person reads, in a text message or an email."""
        alert = change.alert
        last = alert.history[-1] if alert.history else None
        place = f"{alert.subject} ({alert.audience})"
        if change.action == "acknowledged":
            who = last.who if last else "someone"
            return f"{who} has acknowledged the alert at {place}: {alert.message}"
        if change.action == "resolved":
            who = last.who if last else "someone"
            return f"Resolved by {who} at {place}: {alert.message}"
        lead = SEVERITY_WORD[alert.severity]
        if change.action == "escalated" and last is not None and last.note:
            return f"{lead} – {last.note}. Nobody has acknowledged it yet. {place}: {alert.message}"
        if change.action == "reminder":
            return f"{lead} – still open from earlier, not acknowledged. {place}: {alert.message}"
        if change.action in ("repeated", "reopened"):
            return f"{lead} – it has happened again. {place}: {alert.message}"
        return f"{lead}. {place}: {alert.message}"

    @staticmethod
    def with_link(text: str, link: str | None) -> str:
        if link is None:
            return text.replace(f"\nAcknowledge: {LINK_PLACEHOLDER}", "")
        return text.replace(LINK_PLACEHOLDER, link)
