"""The channels an outbox delivery goes out on: MQTT, signed webhooks, GOV.UK Notify (SMS, email), SMTP, and chat
tools through Apprise (Microsoft Teams, Slack, Matrix, …; one library rather than one client per service).

Each channel makes one attempt per ``send(delivery)``: it returns ``Sent`` (with the provider's reference when
the provider reports delivery later, as GOV.UK Notify does) or raises ``DeliveryError`` saying whether a later
attempt could succeed (connection refused, timeout, 429, 5xx) or not (a number Notify refuses, a 4xx from a
webhook, an address the mail server rejects). Retries, order and bookkeeping are the dispatcher's
(``rules.dispatch``). ``receipt(delivery)`` asks a provider what became of a message it took.

Every delivery carries its outbox ``message_id``: in the MQTT payload, as the Standard Webhooks ``webhook-id``,
as Notify's ``reference``, and in the email's ``Message-ID``, so a resend is recognisably the same message.

The composition root builds the clients and passes secrets in; this module must not read settings or the
environment, and decides nothing about who is told.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import warnings
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal, Protocol

import httpx
import orjson

from placesense.basics.errors import PlacesenseError
from rules.notify import signed_headers, signer
from rules.outbox import Delivery

log = logging.getLogger(__name__)

# GOV.UK Notify's final statuses (its "Message status" documentation); anything else is still on its way.
NOTIFY_DELIVERED = frozenset({"delivered", "sent"})  # "sent": an international text handed to the carrier
NOTIFY_FAILED = {
    "permanent-failure": "the provider could not deliver it (number or address does not exist, or blocked)",
    "temporary-failure": "the provider could not deliver it for 72 hours (phone off, inbox full)",
    "technical-failure": "GOV.UK Notify had a technical failure sending it",
    "validation-failed": "GOV.UK Notify refused it",
}


class DeliveryError(PlacesenseError):
    """One attempt failed; ``retryable`` says whether trying again later could succeed."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Sent:
    """A channel took the message. ``delivered``: the receiver confirmed it; ``sent``: a receipt may follow."""

    state: Literal["sent", "delivered"]
    provider: str
    ref: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a provider says became of a message: delivered, failed (with why), or still on its way (None)."""

    state: Literal["delivered", "failed"] | None
    detail: str


class Channel(Protocol):
    name: str  # the outbox channel this sends: mqtt, webhook, sms, email, chat
    label: str  # in plain words, for people: "GOV.UK Notify text messages"

    def send(self, delivery: Delivery) -> Sent: ...


class ReceiptChannel(Channel, Protocol):
    def receipt(self, delivery: Delivery) -> Receipt: ...


def _status_retryable(status: int) -> bool:
    return status == 429 or status >= 500


# ---- MQTT ----------------------------------------------------------------------------------------------


class MqttClientLike(Protocol):
    """The part of ``paho.mqtt.client.Client`` (v2 API) we use."""

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Any: ...

    def is_connected(self) -> bool: ...


class MqttChannel:
    """Publishes on the alert topic with QoS 1 and counts it sent once the broker has acknowledged it (PUBACK)."""

    name = "mqtt"
    label = "the alerts' MQTT connection"

    def __init__(self, client: MqttClientLike, timeout_s: float = 10.0) -> None:
        self._client = client
        self._timeout_s = timeout_s

    def send(self, delivery: Delivery) -> Sent:
        if not self._client.is_connected():
            raise DeliveryError("not connected to the MQTT broker", retryable=True)
        payload = orjson.dumps({**delivery.payload, "message_id": delivery.message_id})
        info = self._client.publish(delivery.recipient, payload, qos=1, retain=False)
        try:
            info.wait_for_publish(self._timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"MQTT publish failed: {exc}", retryable=True) from exc
        if not info.is_published():
            # paho may still send it after a reconnect: the retry then repeats it with the same message_id.
            raise DeliveryError("the broker did not acknowledge the alert in time", retryable=True)
        return Sent("delivered", "mqtt")


# ---- webhooks ------------------------------------------------------------------------------------------


class WebhookChannel:
    """POSTs the alert JSON signed the Standard Webhooks way; the outbox ``message_id`` is the ``webhook-id``.

    Signed at each attempt: a retry minutes later still carries a timestamp the receiver accepts, and the same id,
    so the receiver drops a repeat."""

    name = "webhook"
    label = "webhooks"

    def __init__(self, secret: bytes | str, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None):
        if not secret:
            raise ValueError("a webhook secret is required to sign deliveries")
        self._signer = signer(secret)
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def send(self, delivery: Delivery) -> Sent:
        body = orjson.dumps(delivery.payload)
        headers = {"Content-Type": "application/json", **signed_headers(self._signer, delivery.message_id, body)}
        try:
            response = self._client.post(delivery.recipient, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        if response.status_code < 300:
            return Sent("delivered", "webhook", detail=f"HTTP {response.status_code}")
        raise DeliveryError(f"the receiver answered HTTP {response.status_code}",
                            retryable=_status_retryable(response.status_code))

    def close(self) -> None:
        self._client.close()


# ---- GOV.UK Notify -------------------------------------------------------------------------------------


class NotifyClientLike(Protocol):
    """The part of ``notifications_python_client.NotificationsAPIClient`` we use."""

    def send_sms_notification(self, phone_number: str, template_id: str, personalisation: dict[str, str] | None = ...,
                              reference: str | None = ...) -> dict[str, Any]: ...

    def send_email_notification(self, email_address: str, template_id: str,
                                personalisation: dict[str, str] | None = ...,
                                reference: str | None = ...) -> dict[str, Any]: ...

    def get_notification_by_id(self, id: str) -> dict[str, Any]: ...


def _notify_error(exc: Exception) -> DeliveryError:
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(status, int) and status > 0:
        return DeliveryError(f"GOV.UK Notify answered {status}: {message}", retryable=_status_retryable(status))
    return DeliveryError(f"GOV.UK Notify could not be reached: {message}", retryable=True)


class _NotifyChannel:
    label = "GOV.UK Notify"

    def __init__(self, client: NotifyClientLike, template_id: str) -> None:
        self._client = client
        self._template_id = template_id

    def _personalisation(self, delivery: Delivery) -> dict[str, str]:
        # The template in Notify holds ((subject)) and ((body)) (README, Notifications): our words go in whole.
        return {"subject": str(delivery.payload.get("title", "")), "body": str(delivery.payload.get("text", ""))}

    def receipt(self, delivery: Delivery) -> Receipt:
        assert delivery.provider_ref is not None
        try:
            found = self._client.get_notification_by_id(delivery.provider_ref)
        except Exception as exc:  # the client raises its own HTTPError or requests' errors: ask again later
            log.warning("could not check GOV.UK Notify's status of %s: %s", delivery.message_id, exc)
            return Receipt(None, f"status not known: {exc}")
        status = str(found.get("status", ""))
        if status in NOTIFY_DELIVERED:
            return Receipt("delivered", status)
        if status in NOTIFY_FAILED:
            return Receipt("failed", f"{status}: {NOTIFY_FAILED[status]}")
        return Receipt(None, status)


class NotifySmsChannel(_NotifyChannel):
    name = "sms"
    label = "GOV.UK Notify text messages"

    def send(self, delivery: Delivery) -> Sent:
        try:
            response = self._client.send_sms_notification(
                phone_number=delivery.recipient, template_id=self._template_id,
                personalisation=self._personalisation(delivery), reference=delivery.message_id,
            )
        except Exception as exc:  # mapped once, here: Notify's HTTPError/APIError and requests' errors
            raise _notify_error(exc) from exc
        return Sent("sent", "notify", ref=str(response["id"]))


class NotifyEmailChannel(_NotifyChannel):
    name = "email"
    label = "GOV.UK Notify email"

    def send(self, delivery: Delivery) -> Sent:
        try:
            response = self._client.send_email_notification(
                email_address=delivery.recipient, template_id=self._template_id,
                personalisation=self._personalisation(delivery), reference=delivery.message_id,
            )
        except Exception as exc:
            raise _notify_error(exc) from exc
        return Sent("sent", "notify", ref=str(response["id"]))


# ---- SMTP ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    timeout_s: float = 20.0
    ca_file: str | None = None


class SmtpChannel:
    """Plain email through the council's own mail server (STARTTLS or implicit TLS by default)."""

    name = "email"
    label = "email (SMTP)"

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    def _connect(self) -> smtplib.SMTP:
        config = self._config
        context = ssl.create_default_context(cafile=config.ca_file)
        if config.security == "tls":
            return smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_s, context=context)
        server = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        if config.security == "starttls":
            server.starttls(context=context)
        return server

    def send(self, delivery: Delivery) -> Sent:
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = delivery.recipient
        message["Subject"] = str(delivery.payload.get("title", "placesense alert"))
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<{delivery.message_id}@placesense>"  # the same on every resend
        message.set_content(str(delivery.payload.get("text", "")))
        try:
            with self._connect() as server:
                if self._config.username:
                    server.login(self._config.username, self._config.password or "")
                server.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"the mail server refused {delivery.recipient}: {exc.recipients}", False) from exc
        except smtplib.SMTPResponseException as exc:
            reason = f"the mail server answered {exc.smtp_code}: {exc.smtp_error!r}"
            raise DeliveryError(reason, retryable=exc.smtp_code < 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"the mail server could not be reached: {exc}", retryable=True) from exc
        return Sent("sent", "smtp")


# ---- chat tools through Apprise ------------------------------------------------------------------------


class AppriseChannel:
    """Posts to chat targets named in the rotas; each name maps to an Apprise URL (``workflows://…`` for a Teams
    channel's Workflows webhook, ``slack://…``, ``matrixs://…``). The URLs hold secrets and come from the
    environment; the outbox stores only the name."""

    name = "chat"
    label = "chat (Apprise)"

    def __init__(self, targets: dict[str, str]) -> None:
        # Apprise loads its plugins here, once; its email plugin still imports the standard library's deprecated
        # imghdr on Python 3.11 and 3.12, which says so: a known warning of theirs, not ours to act on.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
            import apprise

            self._apprise = apprise
            self._targets: dict[str, Any] = {}
            for target, url in targets.items():
                notifier = apprise.Apprise()
                if not notifier.add(url):
                    raise ValueError(f"chat target {target!r}: Apprise does not understand its URL")
                self._targets[target] = notifier

    def send(self, delivery: Delivery) -> Sent:
        notifier = self._targets.get(delivery.recipient)
        if notifier is None:
            raise DeliveryError(f"no chat target {delivery.recipient!r} is set up", retryable=False)
        with self._apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            ok = notifier.notify(title=str(delivery.payload.get("title", "")), body=str(delivery.payload["text"]))
        if not ok:
            said = captured.getvalue().strip().splitlines()
            raise DeliveryError(f"the chat service did not take it: {said[-1] if said else 'no reason given'}", True)
        return Sent("delivered", "apprise")
