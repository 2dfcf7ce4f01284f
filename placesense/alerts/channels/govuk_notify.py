"""GOV.UK Notify as two channels, text messages and email: each delivery is sent through one template whose
((subject)) and ((body)) take our words whole, with the outbox ``message_id`` as Notify's ``reference``. Notify
reports delivery later, so these channels also answer ``receipt(delivery)`` from Notify's message status.

This module must not build the Notify client or read its key (the composition root does), or decide who is told.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from placesense.alerts.channels.base import DeliveryError, Receipt, Sent, status_retryable
from placesense.alerts.outbox import Delivery

log = logging.getLogger(__name__)

# GOV.UK Notify's final statuses (its "Message status" documentation); anything else is still on its way.
NOTIFY_DELIVERED = frozenset({"delivered", "sent"})  # "sent": an international text handed to the carrier
NOTIFY_FAILED = {
    "permanent-failure": "the provider could not deliver it (number or address does not exist, or blocked)",
    "temporary-failure": "the provider could not deliver it for 72 hours (phone off, inbox full)",
    "technical-failure": "GOV.UK Notify had a technical failure sending it",
    "validation-failed": "GOV.UK Notify refused it",
}


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
        return DeliveryError(f"GOV.UK Notify answered {status}: {message}", retryable=status_retryable(status))
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
