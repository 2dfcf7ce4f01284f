"""Acknowledge from the message: the page behind the link in an SMS or email, and who was told about an alert.

``GET /ack/{token}`` shows what the link acknowledges and one button; ``POST /ack/{token}`` acknowledges the alert
in the name of the person the message went to. A GET never acknowledges: mail scanners and chat previews open
links before people do. The link is checked and used by ``placesense.alerts.ack_links`` (signed, expires, single
use); the acknowledgement goes through the alert lifecycle, so its history says who, and the use is written to the
API audit log. Used, expired or unknown links are answered 410 or 404 with the reason in plain words.

``GET /api/v1/alerts/{id}/notifications`` lists the deliveries of one alert (who was told, on which channel,
when, and whether it arrived) for tokens that may see the alert; addresses and phone numbers only for admins.

This module must not decide alert state or send anything.
"""

from __future__ import annotations

import html
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from api.auth import Principal
from api.deps import Alerts, Caller, Ctx
from api.problems import AUTH_ERRORS, Problem
from api.timefmt import rfc3339
from placesense.alerts.ack_links import LinkRefused
from placesense.alerts.lifecycle import AlertNotFoundError, AlertStateError
from placesense.alerts.outbox import Delivery

router = APIRouter(tags=["notifications"])

Token = Annotated[str, Path(min_length=10, max_length=64, pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
PAGE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
               "base-uri 'none'")
REFUSED = {
    "used": "This link has already been used: the alert was acknowledged with it.",
    "expired": "This link has expired. Open the care or street page to acknowledge the alert.",
    "unknown": "This link is not known here. Check it was copied whole, or open the care or street page.",
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)} – placesense</title>"
        "<body style='font:1.2rem/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem'>"
        f"<h1 style='font-size:1.5rem'>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(text, status_code=status, headers={"Content-Security-Policy": PAGE_POLICY,
                                                           "Cache-Control": "no-store"})


def _now() -> int:
    return time.time_ns() // 1_000_000


@router.get("/ack/{token}", response_class=HTMLResponse, include_in_schema=True,
            responses={404: {"description": "unknown link"}, 410: {"description": "used or expired link"}})
def ack_page(service: Alerts, token: Token) -> HTMLResponse:
    """The page a link in a message opens: what it acknowledges, and a button. Opening it changes nothing."""
    links = service.notifications.links
    if links is None:
        return _page("Link not available", f"<p>{REFUSED['unknown']}</p>", 404)
    try:
        target = links.check(token, _now())
        alert = service.alerts.get(target.alert_id)
    except LinkRefused as exc:
        return _page("Link not usable", f"<p>{REFUSED[exc.why]}</p>", 404 if exc.why == "unknown" else 410)
    except AlertNotFoundError:
        return _page("Link not usable", f"<p>{REFUSED['unknown']}</p>", 404)
    name = service.notifications.dispatcher.people.get(target.person, target.person)
    body = (
        f"<p><strong>{html.escape(alert.rule.replace('_', ' '))}</strong> at {html.escape(alert.subject)} "
        f"({alert.state})</p><p>{html.escape(alert.message)}</p>"
        f"<form method=post><button style='font-size:1.3rem;padding:.6rem 1.2rem'>"
        f"I am dealing with it ({html.escape(name)})</button></form>"
    )
    return _page("Acknowledge this alert", body)


@router.post("/ack/{token}", response_class=HTMLResponse,
             responses={404: {"description": "unknown link"}, 409: {"description": "the alert is resolved"},
                        410: {"description": "used or expired link"}})
def ack_with_link(request: Request, ctx: Ctx, service: Alerts, token: Token) -> HTMLResponse:
    """Acknowledge the alert as the person the link was sent to; the link then stops working."""
    links = service.notifications.links
    if links is None:
        return _page("Link not available", f"<p>{REFUSED['unknown']}</p>", 404)
    client = request.client.host if request.client else "unknown"
    try:
        target = links.use(token, _now(), client)
    except LinkRefused as exc:
        return _page("Link not usable", f"<p>{REFUSED[exc.why]}</p>", 404 if exc.why == "unknown" else 410)
    name = service.notifications.dispatcher.people.get(target.person, target.person)
    try:
        alert = service.alerts.ack(target.alert_id, f"{name} (link in message)", None)
    except AlertNotFoundError:
        return _page("Link not usable", f"<p>{REFUSED['unknown']}</p>", 404)
    except AlertStateError:
        return _page("Already resolved", "<p>Someone has already resolved this alert. Nothing more to do.</p>", 409)
    role: Literal["care", "street", "admin"] = alert.audience if alert.audience != "ops" else "admin"
    homes = [alert.subject] if alert.subject in service.registry.homes else []
    ctx.audit.record(Principal(f"link:{target.person}", role), "alert.ack.link", homes, str(alert.id))
    who = alert.history[-1].who if alert.history else name
    return _page("Acknowledged", f"<p>Thank you. The alert at {html.escape(alert.subject)} is acknowledged by "
                                 f"{html.escape(who)}; reminders and escalation have stopped.</p>")


# --- who was told ----------------------------------------------------------------------------------------------

Channel = Literal["mqtt", "webhook", "sms", "email", "chat"]
DeliveryStateOut = Literal["pending", "sent", "delivered", "failed"]


class NotificationOut(BaseModel):
    message_id: str = Field(description="the same on every retry and resend (webhook-id, Notify reference)")
    action: str = Field(description="the alert change it tells of: opened, escalated, acknowledged, …")
    channel: Channel
    person: str | None = Field(description="the rota's person id, for messages to people")
    name: str | None = Field(description="that person's name")
    recipient: str | None = Field(description="number, address, topic, URL or chat target (admin tokens only)")
    step: int = Field(description="escalation step: 0 the first person on call, 1 the next, …")
    state: DeliveryStateOut = Field(description="pending (waiting or retrying), sent (the provider took it), "
                                                "delivered (confirmed), failed")
    created_at: str
    sent_at: str | None
    settled_at: str | None = Field(description="when it was confirmed delivered or given up")
    attempts: int
    detail: str | None = Field(description="the last error, or the provider's status")


class NotificationsOut(BaseModel):
    alert_id: int
    notifications: list[NotificationOut]


def notification_view(delivery: Delivery, caller: Principal, names: dict[str, str]) -> NotificationOut:
    return NotificationOut(
        message_id=delivery.message_id, action=delivery.action, channel=delivery.channel,  # type: ignore[arg-type]
        person=delivery.person, name=names.get(delivery.person) if delivery.person else None,
        recipient=delivery.recipient if caller.role == "admin" else None, step=delivery.step,
        state=delivery.state, created_at=rfc3339(delivery.created_at_ms) or "",
        sent_at=rfc3339(delivery.sent_at_ms) if delivery.sent_at_ms else None,
        settled_at=rfc3339(delivery.settled_at_ms) if delivery.settled_at_ms else None,
        attempts=delivery.attempts, detail=delivery.detail,
    )


@router.get("/api/v1/alerts/{alert_id}/notifications", response_model=NotificationsOut, responses=AUTH_ERRORS)
def alert_notifications(
    ctx: Ctx, caller: Caller, service: Alerts, alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> NotificationsOut:
    """Who was told about this alert, on which channel, when, and whether it arrived (oldest first). Not for
    display tokens: it names staff."""
    unknown = Problem(404, f"no alert {alert_id} that this token may see", kind="unknown-alert")
    if caller.role == "display":
        raise Problem(403, "a display token may not see who was told", kind="forbidden-role")
    try:
        alert = service.alerts.get(alert_id)
    except AlertNotFoundError as exc:
        raise unknown from exc
    if not caller.may_see_alert(alert.audience, alert.subject, service.registry.homes):
        raise unknown
    names = service.notifications.dispatcher.people
    deliveries = service.notifications.outbox.for_alert(alert_id)
    if alert.subject in service.registry.homes:
        ctx.audit.record(caller, "alert.notifications", [alert.subject], str(alert_id))
    return NotificationsOut(alert_id=alert_id,
                            notifications=[notification_view(d, caller, names) for d in deliveries])
