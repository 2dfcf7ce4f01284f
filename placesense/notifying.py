"""Composition of notifications: the outbox, its channels and the dispatcher, built from settings and the rules file.

Part of the composition root: the only place that builds the GOV.UK Notify, SMTP and Apprise clients and hands
them their secrets (from settings, so from the environment or the config file). What is sent to whom is the
rules file's ``notifications:`` section (``rules.rota``); which channels exist is what the settings set up. A rota
that names a chat target or a person no channel can reach fails the start with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from devices.registry import Registry
from placesense.alerts.ack_links import AckLinks
from placesense.alerts.channels.base import Channel
from placesense.alerts.channels.chat import AppriseChannel
from placesense.alerts.channels.govuk_notify import NotifyEmailChannel, NotifySmsChannel
from placesense.alerts.channels.mqtt import MqttChannel, MqttClientLike
from placesense.alerts.channels.smtp import SmtpChannel, SmtpConfig
from placesense.alerts.channels.webhook import WebhookChannel
from placesense.alerts.dispatch import Dispatcher
from placesense.alerts.outbox import Outbox
from placesense.alerts.routing import Router
from placesense.basics.errors import ConfigError
from placesense.settings import Settings
from rules.config import RulesConfig


@dataclass
class Notifications:
    outbox: Outbox
    dispatcher: Dispatcher
    links: AckLinks | None


def person_channels(settings: Settings) -> list[Channel]:
    """The channels that reach people (SMS, email) this installation has set up."""
    channels: list[Channel] = []
    if settings.notify_api_key is not None:
        from notifications_python_client.notifications import NotificationsAPIClient

        key = settings.notify_api_key.get_secret_value()
        client = NotificationsAPIClient(key, base_url=settings.notify_base_url)  # type: ignore[no-untyped-call]
        if settings.notify_sms_template_id:
            channels.append(NotifySmsChannel(client, settings.notify_sms_template_id))
        if settings.notify_email_template_id:
            channels.append(NotifyEmailChannel(client, settings.notify_email_template_id))
    if settings.smtp_host:
        assert settings.smtp_from is not None  # settings refuse a host without a From address
        channels.append(SmtpChannel(SmtpConfig(
            host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
            security=settings.smtp_security, username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        )))
    return channels


def build_notifications(
    settings: Settings, registry: Registry, rules: RulesConfig, engine: Engine, alert_client: MqttClientLike | None
) -> Notifications:
    """The outbox and the dispatcher of this installation's channels; ``alert_client`` is the alerts' MQTT client
    (None: no MQTT alert topic)."""
    channels: list[Channel] = []
    if alert_client is not None:
        channels.append(MqttChannel(alert_client))
    if settings.webhook_urls:
        assert settings.webhook_secret is not None  # settings refuse URLs without a secret
        channels.append(WebhookChannel(settings.webhook_secret.get_secret_value()))
    channels.extend(person_channels(settings))
    chat_urls = {name: url.get_secret_value() for name, url in settings.chat_urls.items()}
    if chat_urls:
        try:
            channels.append(AppriseChannel(chat_urls))
        except ValueError as exc:
            raise ConfigError(f"PLACESENSE_CHAT_URLS: {exc}") from exc
    contacts = frozenset(c.name for c in channels if c.name in ("sms", "email"))
    notifications = rules.notifications
    subjects = {*registry.homes, *registry.flowerbeds, *registry.air_sites}
    care_teams = {home.id: home.care_team for home in registry.homes.values() if home.care_team}
    problems = notifications.problems_with(subjects, set(care_teams.values()), set(chat_urls), set(contacts))
    if problems:
        raise ConfigError("notifications in the rules file cannot work as written:\n  " + "\n  ".join(problems))
    links = None
    if settings.public_url and settings.ack_link_secret is not None:
        links = AckLinks(engine, settings.ack_link_secret.get_secret_value().encode(), settings.public_url,
                         int(notifications.link_valid_minutes * 60_000))
    router = Router(
        notifications, mqtt_prefix=settings.topic_prefix if alert_client is not None else None,
        webhook_urls=settings.webhook_urls, contacts=contacts, chats=frozenset(chat_urls), care_teams=care_teams,
        links=links is not None,
    )
    outbox = Outbox(engine, router, links)
    dispatcher = Dispatcher(
        outbox, channels, receipt_every_s=settings.notify_receipt_every_s, grace_s=settings.notify_failing_after_s,
        people={person_id: person.name for person_id, person in notifications.people.items()},
    )
    return Notifications(outbox, dispatcher, links)
