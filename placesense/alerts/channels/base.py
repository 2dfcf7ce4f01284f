"""What every channel is: one attempt per ``send(delivery)``, which returns ``Sent`` (with the provider's reference
when the provider reports delivery later, as GOV.UK Notify does) or raises ``DeliveryError`` saying whether a later
attempt could succeed (connection refused, timeout, 429, 5xx) or not (a number Notify refuses, a 4xx from a
webhook, an address the mail server rejects). Retries, order and bookkeeping are the dispatcher's
(``placesense.alerts.dispatch``). ``receipt(delivery)`` asks a provider what became of a message it took.

Every delivery carries its outbox ``message_id``: in the MQTT payload, as the Standard Webhooks ``webhook-id``,
as Notify's ``reference``, and in the email's ``Message-ID``, so a resend is recognisably the same message.

The transports live beside this module, one each: ``mqtt``, ``webhook``, ``govuk_notify`` (SMS and email),
``smtp`` and ``chat`` (Microsoft Teams, Slack, Matrix, … through Apprise). The composition root builds their
clients and passes secrets in; no channel reads settings or the environment, or decides who is told.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from placesense.alerts.outbox import Delivery
from placesense.basics.errors import PlacesenseError


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


def status_retryable(status: int) -> bool:
    """Whether an HTTP status says a later attempt could succeed (429, 5xx)."""
    return status == 429 or status >= 500
