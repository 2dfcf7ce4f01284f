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
from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.auth import Principal
from api.deps import ApiContext, Caller, Ctx, StreamCaller, refuse_out_of_scope
from api.problems import AUTH_ERRORS, Problem
from api.timefmt import rfc3339
from rules.alerts import Alert, AlertChange, AlertNotFoundError, AlertStateError

log = logging.getLogger("placesense.api.alerts")
router = APIRouter(tags=["alerts"])

Audience = Literal["care", "street", "ops"]
State = Literal["open", "acknowledged", "resolved"]
StateFilter = Literal["open", "acknowledged", "resolved", "active"]
Severity = Literal["info", "warning", "critical"]
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the alert's id")]
HEARTBEAT_S = 15.0
STREAM_QUEUE = 1000
REDACTED_MESSAGE = "Alert about a home: details are shown to the care team only"


class HistoryEntryOut(BaseModel):
    at: str
    by: str
    action: str
    note: str | None = None
    severity: Severity


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
    evidence: dict[str, Any] = Field(default_factory=dict)
    device_id: str | None = None
    history: list[HistoryEntryOut] = Field(default_factory=list)
    redacted: bool = Field(default=False, description="true when details were withheld from this token (wall display)")


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


def _visible(ctx: ApiContext, caller: Principal, alert: Alert) -> bool:
    return caller.may_see_alert(alert.audience, alert.subject, ctx.service.registry.homes)


def _audit(ctx: ApiContext, caller: Principal, action: str, alerts: list[AlertOut], detail: str = "") -> None:
    homes = {a.subject for a in alerts if a.subject in ctx.service.registry.homes and not a.redacted}
    ctx.audit.record(caller, action, homes, detail)


def visible_alerts(
    ctx: ApiContext,
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
    service = ctx.service.alerts
    subjects = caller.homes if caller.role == "care" else None
    fetch = limit
    while True:
        found = service.list_alerts(audience=audience, state=state, subject=subject, subjects=subjects, limit=fetch)
        shown = [a for a in found if _visible(ctx, caller, a)]
        if len(shown) >= limit or len(found) < fetch:
            return shown[:limit]
        fetch *= 4


# --- routes -------------------------------------------------------------------------------------------


@router.get("/api/v1/alerts", response_model=AlertsOut, responses=AUTH_ERRORS)
def list_alerts(
    ctx: Ctx,
    caller: Caller,
    audience: Annotated[Audience | None, Query()] = None,
    state: Annotated[StateFilter | None, Query(description="'active' means open or acknowledged")] = None,
    subject: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AlertsOut:
    """Alerts the token may see, most recently changed first."""
    alerts = visible_alerts(ctx, caller, audience=audience, state=state, subject=subject, limit=limit)
    out = [alert_view(a, caller, ctx.service.registry.homes) for a in alerts]
    _audit(ctx, caller, "alerts", out)
    return AlertsOut(alerts=out)


def _unknown(alert_id: int) -> Problem:
    return Problem(404, f"no alert {alert_id} that this token may see", kind="unknown-alert")


def _act(
    ctx: ApiContext, caller: Principal, alert_id: int, body: AlertAction | None, verb: Literal["ack", "resolve"],
    request: Request,
) -> AlertOut:
    if not caller.may_act_on_alerts():
        raise Problem(403, f"a {caller.role} token is read-only and may not change alerts", kind="forbidden-role")
    service = ctx.service.alerts
    try:
        current = service.get(alert_id)
    except AlertNotFoundError as exc:
        raise _unknown(alert_id) from exc
    if not _visible(ctx, caller, current):
        if current.subject in ctx.service.registry.homes:
            refuse_out_of_scope(ctx, caller, request, current.subject)
        raise _unknown(alert_id)  # not yours is answered as "no such alert": ids reveal nothing
    act = service.ack if verb == "ack" else service.resolve
    note = body.note if body else None
    try:
        changed = act(alert_id, caller.name, note)
    except AlertNotFoundError as exc:
        raise _unknown(alert_id) from exc
    except AlertStateError as exc:
        raise Problem(409, f"cannot {verb} alert {alert_id}: {exc}", kind="invalid-transition") from exc
    view = alert_view(changed, caller, ctx.service.registry.homes)
    _audit(ctx, caller, f"alert.{verb}", [view], detail=str(view.id))
    return view


ActionBody = Annotated[AlertAction | None, Body(description="optional note for the history")]


@router.post("/api/v1/alerts/{alert_id}/ack", response_model=AlertOut, responses=AUTH_ERRORS)
def acknowledge(request: Request, ctx: Ctx, caller: Caller, alert_id: AlertId, body: ActionBody = None) -> AlertOut:
    """Acknowledge: someone is dealing with it (stops reminders and escalation)."""
    return _act(ctx, caller, alert_id, body, "ack", request)


@router.post("/api/v1/alerts/{alert_id}/resolve", response_model=AlertOut, responses=AUTH_ERRORS)
def resolve(request: Request, ctx: Ctx, caller: Caller, alert_id: AlertId, body: ActionBody = None) -> AlertOut:
    """Resolve: the situation is over."""
    return _act(ctx, caller, alert_id, body, "resolve", request)


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
        self._queue: asyncio.Queue[AlertChange] = asyncio.Queue(maxsize=maxsize)
        self._overflowed = False

    def push(self, change: AlertChange) -> None:
        """Any thread. Never blocks the publisher."""
        # RuntimeError: the loop has closed; the client is gone and the listener is being removed.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._offer, change)

    def _offer(self, change: AlertChange) -> None:
        try:
            self._queue.put_nowait(change)
        except asyncio.QueueFull:
            self._overflowed = True

    async def next(self, timeout_s: float) -> AlertChange | Resync | None:
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


@router.get(
    "/api/v1/alerts/stream",
    responses={**AUTH_ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
    response_class=StreamingResponse,
)
async def stream(request: Request, ctx: Ctx, caller: StreamCaller) -> StreamingResponse:
    """Server-sent events: ``event: alert`` with the alert as JSON on every new or changed alert the token may
    see; a comment every 15 s keeps proxies from closing the connection; ``event: resync`` means events were
    dropped (a slow client) and the list should be fetched again."""

    async def events() -> AsyncIterator[str]:
        # Listen from inside the body: a client gone before the body starts leaves no listener behind.
        inbox = StreamInbox(asyncio.get_running_loop(), STREAM_QUEUE)
        stop_listening = ctx.service.alert_feed.listen(inbox.push)
        try:
            yield "retry: 5000\n: connected\n\n"  # after listen(): a client that saw this misses no change
            while not await request.is_disconnected():
                change = await inbox.next(HEARTBEAT_S)
                if change is None:
                    yield ": keep-alive\n\n"
                    continue
                if isinstance(change, str):
                    yield "event: resync\ndata: {}\n\n"
                    continue
                if not _visible(ctx, caller, change.alert):
                    continue
                view = alert_view(change.alert, caller, ctx.service.registry.homes)
                await run_in_threadpool(_audit, ctx, caller, "alerts.stream", [view], str(view.id))
                data = orjson.dumps(view.model_dump(mode="json")).decode()
                yield f"id: {view.id}\nevent: alert\ndata: {data}\n\n"
        finally:
            stop_listening()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
