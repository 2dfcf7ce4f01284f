"""Alerts over HTTP: list, acknowledge, resolve, and a server-sent event stream of new and changed alerts.

The alert lifecycle belongs to ``rules`` (one store, one history): this module lists through
``AlertService.list_alerts``, acts through ``ack``/``resolve`` in the caller's name, streams the changes the
``AlertFeed`` pushes, and filters everything by the caller's scope. The wall display sees an alert about a home
only as "an alert of this kind in h-0001" — the message, evidence and device describe a person's day and stay
with the care team.
This module must not store alerts or decide their state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Container
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.auth import Principal
from api.deps import Alerts, ApiContext, Caller, Ctx, StreamCaller, refuse_out_of_scope
from api.ports import AlertsPort
from api.problems import AUTH_ERRORS, Problem
from api.timefmt import rfc3339
from placesense.alerts.changes import AlertChange
from placesense.alerts.lifecycle import AlertNotFoundError, AlertStateError
from placesense.alerts.store import Alert
from placesense.basics.findings import Audience, Severity
from placesense.basics.texts import renderings

log = logging.getLogger("placesense.api.alerts")
router = APIRouter(tags=["alerts"])

State = Literal["open", "acknowledged", "resolved"]
StateFilter = Literal["open", "acknowledged", "resolved", "active"]
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the alert's id")]
HEARTBEAT_S = 15.0
STREAM_QUEUE = 1000
REDACTED_MESSAGE = "Alert about a home: details are shown to the care team only"
REDACTED_TEXTS = {
    "en": REDACTED_MESSAGE,
    "cy": "Rhybudd am gartref: dim ond y tîm gofal sy'n gweld y manylion",
}


class HistoryEntryOut(BaseModel):
    at: str
    by: str
    action: str
    note: str | None = None
    severity: Severity


class NotificationSummaryOut(BaseModel):
    told: list[str] = Field(description="names of the people told, in the order they were first told")
    pending: int = Field(description="messages waiting or being retried")
    sent: int = Field(description="taken by the provider, no receipt yet")
    delivered: int
    failed: int
    last_at: str | None = Field(description="when the latest message was sent or written")


class AlertOut(BaseModel):
    id: int
    rule: str
    audience: Audience
    subject: str
    severity: Severity
    state: State
    opened_at: str
    updated_at: str
    message: str
    texts: dict[str, str] = Field(
        default_factory=dict,
        description="the message in each language it can be read in: always 'en' (the same as message), and 'cy' "
        "(Welsh) when the alert was built from a template (see docs/welsh.md)",
    )
    evidence: dict[str, Any] = Field(default_factory=dict)
    device_id: str | None = None
    history: list[HistoryEntryOut] = Field(default_factory=list)
    redacted: bool = Field(default=False, description="true when details were withheld from this token (wall display)")
    notifications: NotificationSummaryOut | None = Field(
        default=None, description="who was told and whether it arrived (GET /api/v1/alerts/{id}/notifications has "
        "each message); in lists for care, street and admin tokens, not on stream events",
    )


class AlertsOut(BaseModel):
    alerts: list[AlertOut]


class AlertAction(BaseModel):
    note: str | None = Field(default=None, max_length=2000, description="why, for the alert's history")


def alert_view(alert: Alert, caller: Principal, homes: Container[str]) -> AlertOut:
    """The alert as this caller may see it: alerts about a home (care ones, and operations ones such as a home's
    device gone silent) reach the wall display without their details. ``homes``: the registry's home ids."""
    redact = caller.role == "display" and (alert.audience == "care" or alert.subject in homes)
    return AlertOut(
        id=alert.id,
        rule=alert.rule,
        audience=alert.audience,
        subject=alert.subject,
        severity=alert.severity,
        state=alert.state,
        opened_at=_at(alert.opened_at_ms),
        updated_at=_at(alert.updated_at_ms),
        message=REDACTED_MESSAGE if redact else alert.message,
        texts=REDACTED_TEXTS if redact else renderings(alert.text, alert.message),
        evidence={} if redact else dict(alert.evidence),
        device_id=None if redact else alert.device_id,
        history=[] if redact else [
            HistoryEntryOut(at=_at(h.at_ms), by=h.who, action=h.action, note=h.note, severity=h.severity)
            for h in alert.history
        ],
        redacted=redact,
    )


def _at(ts_ms: int) -> str:
    return rfc3339(ts_ms) or ""


def _visible(service: AlertsPort, caller: Principal, alert: Alert) -> bool:
    return caller.may_see_alert(alert.audience, alert.subject, service.registry.homes)


def _audit(
    ctx: ApiContext, service: AlertsPort, caller: Principal, action: str, alerts: list[AlertOut], detail: str = ""
) -> None:
    homes = {a.subject for a in alerts if a.subject in service.registry.homes and not a.redacted}
    ctx.audit.record(caller, action, homes, detail)


def visible_alerts(
    service: AlertsPort,
    caller: Principal,
    *,
    audience: str | None,
    state: str | None,
    subject: str | None,
    limit: int,
) -> list[Alert]:
    """Up to ``limit`` alerts the caller may see, newest first.

    A care token's homes go to the store as a filter. Other scopes cannot be said in the store's terms (a street
    token sees ``ops`` alerts unless they are about a home), so a page that scope thinned out is fetched again,
    larger, until it is full or the store has no more.
    """
    lifecycle = service.alerts
    subjects = caller.homes if caller.role == "care" else None
    fetch = limit
    while True:
        found = lifecycle.list_alerts(audience=audience, state=state, subject=subject, subjects=subjects, limit=fetch)
        shown = [a for a in found if _visible(service, caller, a)]
        if len(shown) >= limit or len(found) < fetch:
            return shown[:limit]
        fetch *= 4


# --- routes -------------------------------------------------------------------------------------------


@router.get("/api/v1/alerts", response_model=AlertsOut, responses=AUTH_ERRORS)
def list_alerts(
    ctx: Ctx,
    caller: Caller,
    service: Alerts,
    audience: Annotated[Audience | None, Query()] = None,
    state: Annotated[StateFilter | None, Query(description="'active' means open or acknowledged")] = None,
    subject: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AlertsOut:
    """Alerts the token may see, most recently changed first."""
    alerts = visible_alerts(service, caller, audience=audience, state=state, subject=subject, limit=limit)
    out = [alert_view(a, caller, service.registry.homes) for a in alerts]
    if caller.role != "display":
        _with_notifications(service, out)
    _audit(ctx, service, caller, "alerts", out)
    return AlertsOut(alerts=out)


def _with_notifications(service: AlertsPort, views: list[AlertOut]) -> None:
    """Add who was told to each alert (one query for the page)."""
    names = service.notifications.dispatcher.people
    summaries = service.notifications.outbox.summaries(v.id for v in views)
    for view in views:
        found = summaries.get(view.id)
        if found is not None:
            view.notifications = NotificationSummaryOut(
                told=[names.get(p, p) for p in found.people], pending=found.pending, sent=found.sent,
                delivered=found.delivered, failed=found.failed,
                last_at=_at(found.last_at_ms) if found.last_at_ms else None,
            )


def _unknown(alert_id: int) -> Problem:
    return Problem(404, f"no alert {alert_id} that this token may see", kind="unknown-alert")


def _act(
    ctx: ApiContext, service: AlertsPort, caller: Principal, alert_id: int, body: AlertAction | None,
    verb: Literal["ack", "resolve"], request: Request,
) -> AlertOut:
    if not caller.may_act_on_alerts():
        raise Problem(403, f"a {caller.role} token is read-only and may not change alerts", kind="forbidden-role")
    lifecycle = service.alerts
    try:
        current = lifecycle.get(alert_id)
    except AlertNotFoundError as exc:
        raise _unknown(alert_id) from exc
    if not _visible(service, caller, current):
        if current.subject in service.registry.homes:
            refuse_out_of_scope(ctx, caller, request, current.subject)
        raise _unknown(alert_id)  # not yours is answered as "no such alert": ids reveal nothing
    act = lifecycle.ack if verb == "ack" else lifecycle.resolve
    note = body.note if body else None
    try:
        changed = act(alert_id, caller.name, note)
    except AlertNotFoundError as exc:
        raise _unknown(alert_id) from exc
    except AlertStateError as exc:
        raise Problem(409, f"cannot {verb} alert {alert_id}: {exc}", kind="invalid-transition") from exc
    view = alert_view(changed, caller, service.registry.homes)
    _audit(ctx, service, caller, f"alert.{verb}", [view], detail=str(view.id))
    return view


ActionBody = Annotated[AlertAction | None, Body(description="optional note for the history")]


@router.post("/api/v1/alerts/{alert_id}/ack", response_model=AlertOut, responses=AUTH_ERRORS)
def acknowledge(
    request: Request, ctx: Ctx, caller: Caller, service: Alerts, alert_id: AlertId, body: ActionBody = None
) -> AlertOut:
    """Acknowledge: someone is dealing with it (stops reminders and escalation)."""
    return _act(ctx, service, caller, alert_id, body, "ack", request)


@router.post("/api/v1/alerts/{alert_id}/resolve", response_model=AlertOut, responses=AUTH_ERRORS)
def resolve(
    request: Request, ctx: Ctx, caller: Caller, service: Alerts, alert_id: AlertId, body: ActionBody = None
) -> AlertOut:
    """Resolve: the situation is over."""
    return _act(ctx, service, caller, alert_id, body, "resolve", request)


# --- the event stream ---------------------------------------------------------------------------------

Resync = Literal["resync"]
RESYNC: Resync = "resync"


class StreamInbox:
    """One stream client's changes: pushed on the alert lifecycle's thread, read on the client's event loop.

    Bounded: a client too slow to keep up does not grow memory. On overflow the queued changes are dropped and
    the next read says ``"resync"`` — the client fetches the list again, which holds everything it missed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self._overflowed = False

    def push(self, change: Any) -> None:
        """Any thread. Never blocks the publisher."""
        # RuntimeError: the loop has closed; the client is gone and the listener is being removed.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._offer, change)

    def _offer(self, change: Any) -> None:
        try:
            self._queue.put_nowait(change)
        except asyncio.QueueFull:
            self._overflowed = True

    async def next(self, timeout_s: float) -> Any:
        """The next change, ``"resync"`` after an overflow, or ``None`` after ``timeout_s`` with nothing new."""
        if self._overflowed:
            self._overflowed = False
            while not self._queue.empty():
                self._queue.get_nowait()
            return RESYNC
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None


def _keep_alive() -> ServerSentEvent:
    return ServerSentEvent(comment="keep-alive")


@router.get(
    "/api/v1/alerts/stream",
    responses={**AUTH_ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
    response_class=EventSourceResponse,
)
async def stream(
    ctx: Ctx,
    caller: StreamCaller,
    service: Alerts,
    last_event_id: Annotated[str | None, Header(max_length=64, description="resume after this event id")] = None,
) -> EventSourceResponse:
    """Server-sent events: ``event: alert`` with the alert as JSON on every new or changed alert the token may
    see, each with an ``id``; a comment every 15 s keeps proxies from closing the connection. A client that
    reconnects with ``Last-Event-ID`` (browsers do by themselves) is sent what it missed; ``event: resync`` means
    events could not be given (a slow client, an id from before a restart or too old) and the list should be
    fetched again."""
    feed = service.alert_feed
    homes = service.registry.homes

    async def events() -> AsyncIterator[ServerSentEvent]:
        # Listen from inside the body: a client gone before the body starts leaves no listener behind.
        inbox = StreamInbox(asyncio.get_running_loop(), STREAM_QUEUE)
        missed, stop_listening = feed.listen_from(last_event_id, lambda event_id, change: inbox.push((event_id,
                                                                                                     change)))
        try:
            # After listen_from(): a client that saw this misses no change.
            yield ServerSentEvent(comment="connected", retry=5000)
            if missed is None:
                yield ServerSentEvent(data="{}", event="resync")
            for event_id, change in missed or ():
                if (event := await _alert_event(ctx, service, caller, homes, event_id, change)) is not None:
                    yield event
            while True:
                item = await inbox.next(HEARTBEAT_S)
                if item is None:
                    continue  # the keep-alive comments are sse-starlette's pings
                if isinstance(item, str):
                    yield ServerSentEvent(data="{}", event="resync")
                    continue
                if (event := await _alert_event(ctx, service, caller, homes, *item)) is not None:
                    yield event
        finally:
            stop_listening()

    # sse-starlette sends the keep-alive pings, notices a client that went away (and ends this generator, so the
    # listener is removed), and gives up on a client that takes no data for send_timeout.
    return EventSourceResponse(
        events(), ping=HEARTBEAT_S, ping_message_factory=_keep_alive, sep="\n", send_timeout=30,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _alert_event(
    ctx: ApiContext, service: AlertsPort, caller: Principal, homes: Container[str], event_id: str, change: AlertChange
) -> ServerSentEvent | None:
    if not _visible(service, caller, change.alert):
        return None
    view = alert_view(change.alert, caller, homes)
    if view.subject in homes and not view.redacted:
        await run_in_threadpool(_audit, ctx, service, caller, "alerts.stream", [view], str(view.id))
    return ServerSentEvent(data=orjson.dumps(view.model_dump(mode="json")).decode(), event="alert", id=event_id)
