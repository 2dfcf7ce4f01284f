"""Alerts over HTTP: list, acknowledge, resolve, and a server-sent event stream of new and changed alerts.

The alert lifecycle belongs to ``rules`` (one store, one history); this module only calls it through the
service's ``alerts`` part and filters by the caller's scope:

- ``list(audience=, state=, subject=)`` → alerts; ``get(id)`` → alert or None;
- ``acknowledge(id, by=, note=)`` and ``resolve(id, by=, note=)`` → the changed alert
  (``LookupError`` for an unknown id, ``ValueError`` for a change the lifecycle refuses);
- ``subscribe(callback)`` → an unsubscribe function; ``callback(alert)`` runs on any thread for each change.

An alert may be a dataclass, a pydantic model or a mapping; timestamps epoch ms or datetimes. The wall display
sees care alerts only as "a care alert in h-0001" — the message and evidence describe a person's day and stay
with the care team. This module must not store alerts or decide their state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.adapt import as_mapping, first, when
from api.auth import Principal
from api.deps import ApiContext, Caller, Ctx, StreamCaller
from api.problems import AUTH_ERRORS, Problem, not_available

log = logging.getLogger("placesense.api.alerts")
router = APIRouter(tags=["alerts"])

Audience = Literal["care", "street", "ops"]
State = Literal["open", "acknowledged", "resolved"]
Severity = Literal["info", "warning", "critical"]
AlertId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="the alert's id")]
HEARTBEAT_S = 15.0
STREAM_QUEUE = 1000
REDACTED_MESSAGE = "Care alert: details are shown to the care team only"


class HistoryEntry(BaseModel):
    at: str | None
    by: str | None = None
    action: str | None = None
    note: str | None = None


class AlertOut(BaseModel):
    id: str
    rule: str
    audience: Audience
    subject: str
    severity: Severity
    state: State
    opened_at: str | None
    updated_at: str | None
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    history: list[HistoryEntry] = Field(default_factory=list)
    redacted: bool = Field(default=False, description="true when details were withheld from this token (wall display)")


class AlertsOut(BaseModel):
    alerts: list[AlertOut]


class AlertAction(BaseModel):
    note: str | None = Field(default=None, max_length=2000, description="why, for the alert's history")


# --- reading the rules room's alert objects -----------------------------------------------------------


def alert_view(alert: Any, caller: Principal) -> AlertOut:
    data = as_mapping(alert)
    history = []
    for raw in first(data, "history") or ():
        entry = as_mapping(raw)
        history.append(
            HistoryEntry(
                at=when(first(entry, "at", "at_ms", "ts_ms", "when")),
                by=first(entry, "by", "actor", "who"),
                action=first(entry, "action", "change", "state", "event"),
                note=first(entry, "note"),
            )
        )
    out = AlertOut(
        id=str(data["id"]),
        rule=str(data["rule"]),
        audience=data["audience"],
        subject=str(data["subject"]),
        severity=data["severity"],
        state=data["state"],
        opened_at=when(first(data, "opened_at", "opened_ms", "opened_at_ms")),
        updated_at=when(first(data, "updated_at", "updated_ms", "updated_at_ms")),
        message=str(first(data, "message") or ""),
        evidence=dict(first(data, "evidence") or {}),
        history=history,
    )
    if caller.role == "display" and out.audience == "care":
        out = out.model_copy(update={"message": REDACTED_MESSAGE, "evidence": {}, "history": [], "redacted": True})
    return out


def _alerts_part(ctx: ApiContext) -> Any:
    part = ctx.part("alerts")
    if part is None:
        raise not_available("the alert store")
    return part


def _visible(ctx: ApiContext, caller: Principal, alert: AlertOut) -> bool:
    return caller.may_see_alert(alert.audience, alert.subject, ctx.service.registry.homes)


def _audit(ctx: ApiContext, caller: Principal, action: str, alerts: list[AlertOut], detail: str = "") -> None:
    homes = {a.subject for a in alerts if a.subject in ctx.service.registry.homes and not a.redacted}
    ctx.audit.record(caller, action, homes, detail)


def _store_id(alert_id: str) -> int | str:
    return int(alert_id) if alert_id.isdigit() else alert_id


# --- routes -------------------------------------------------------------------------------------------


@router.get("/api/v1/alerts", response_model=AlertsOut, responses=AUTH_ERRORS)
def list_alerts(
    ctx: Ctx,
    caller: Caller,
    audience: Annotated[Audience | None, Query()] = None,
    state: Annotated[State | None, Query()] = None,
    subject: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AlertsOut:
    """Alerts the token may see, as the alert store orders them (newest first)."""
    store = _alerts_part(ctx)
    out: list[AlertOut] = []
    for alert in store.list(audience=audience, state=state, subject=subject):
        view = alert_view(alert, caller)
        if _visible(ctx, caller, view):
            out.append(view)
            if len(out) >= limit:
                break
    _audit(ctx, caller, "alerts", out)
    return AlertsOut(alerts=out)


def _act(ctx: ApiContext, caller: Principal, alert_id: str, body: AlertAction | None, verb: str) -> AlertOut:
    if not caller.may_act_on_alerts():
        raise Problem(403, f"a {caller.role} token is read-only and may not change alerts", kind="forbidden-role")
    store = _alerts_part(ctx)
    key = _store_id(alert_id)
    current = store.get(key)
    if current is None or not _visible(ctx, caller, alert_view(current, caller)):
        raise Problem(404, f"no alert {alert_id!r} that this token may see", kind="unknown-alert")
    method = getattr(store, verb, None) or getattr(store, "ack" if verb == "acknowledge" else verb)
    try:
        changed = method(key, by=caller.name, note=body.note if body else None)
    except LookupError as exc:
        raise Problem(404, f"no alert {alert_id!r}", kind="unknown-alert") from exc
    except ValueError as exc:
        raise Problem(409, f"cannot {verb} alert {alert_id}: {exc}", kind="invalid-transition") from exc
    view = alert_view(changed if changed is not None else store.get(key), caller)
    _audit(ctx, caller, f"alert.{'ack' if verb == 'acknowledge' else verb}", [view], detail=view.id)
    return view


ActionBody = Annotated[AlertAction | None, Body(description="optional note for the history")]


@router.post("/api/v1/alerts/{alert_id}/ack", response_model=AlertOut, responses=AUTH_ERRORS)
def acknowledge(ctx: Ctx, caller: Caller, alert_id: AlertId, body: ActionBody = None) -> AlertOut:
    """Acknowledge: someone is dealing with it (stops reminders and escalation)."""
    return _act(ctx, caller, alert_id, body, "acknowledge")


@router.post("/api/v1/alerts/{alert_id}/resolve", response_model=AlertOut, responses=AUTH_ERRORS)
def resolve(ctx: Ctx, caller: Caller, alert_id: AlertId, body: ActionBody = None) -> AlertOut:
    """Resolve: the situation is over."""
    return _act(ctx, caller, alert_id, body, "resolve")


@router.get(
    "/api/v1/alerts/stream",
    responses={**AUTH_ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
    response_class=StreamingResponse,
)
async def stream(request: Request, ctx: Ctx, caller: StreamCaller) -> StreamingResponse:
    """Server-sent events: ``event: alert`` with the alert as JSON on every new or changed alert the token may
    see; a comment every 15 s keeps proxies from closing the connection; ``event: resync`` means events were
    dropped (a slow client) and the list should be fetched again."""
    store = _alerts_part(ctx)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=STREAM_QUEUE)
    overflowed = asyncio.Event()

    def offer(alert: Any) -> None:
        try:
            queue.put_nowait(alert)
        except asyncio.QueueFull:
            overflowed.set()

    def on_change(alert: Any) -> None:
        # Called on the rules thread; hand over to the event loop that serves this client.
        # RuntimeError: the loop has closed, the client is gone and unsubscribe is on its way.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(offer, alert)

    unsubscribe: Callable[[], None] = store.subscribe(on_change)

    async def events() -> AsyncIterator[str]:
        try:
            yield "retry: 5000\n: connected\n\n"
            while not await request.is_disconnected():
                if overflowed.is_set():
                    overflowed.clear()
                    yield "event: resync\ndata: {}\n\n"
                try:
                    alert = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                view = alert_view(alert, caller)
                if not _visible(ctx, caller, view):
                    continue
                _audit(ctx, caller, "alerts.stream", [view], detail=view.id)
                data = orjson.dumps(view.model_dump(mode="json")).decode()
                yield f"id: {view.id}\nevent: alert\ndata: {data}\n\n"
        finally:
            unsubscribe()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
