"""Operations endpoints: ``/api/v1/audit`` (admin), ``/healthz`` (no token: load balancers and
``placesense doctor`` call it) and ``/metrics`` (Prometheus text; an admin token, which Prometheus sends
with ``authorization: credentials_file``).

``/metrics`` needs a token because counters by dead-letter kind and device counts describe the estate; a
loopback-only deployment can still scrape it with the admin token. This module must not change any state.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from api.deps import Admin, Caller, Ctx, Operations
from api.problems import AUTH_ERRORS
from api.timefmt import now_ms, rfc3339
from placesense.basics.texts import Lang

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="'ok' only when placesense can see everything")
    reasons: list[str] = Field(description="why it is degraded, in plain words (empty when ok)")
    since: str | None = Field(description="when the oldest reason began (RFC 3339)")
    mqtt_connected: bool
    influx_up: bool
    spool_segments: int
    evaluation: str = Field(description="the rules process: running, stalled, restarting or stopped")
    evaluation_backlog: int = Field(description="stored readings the rules have not evaluated yet")
    homes_unmonitored: int = Field(description="homes whose every sensor is silent")
    instance: str = Field(description="this instance's name (PLACESENSE_INSTANCE_NAME)")
    role: Literal["single", "leader", "standby"] = Field(
        description="single: one instance; leader or standby with several (docs/scaling.md)"
    )
    leader: str | None = Field(description="the instance that leads evaluation now, if any")


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "degraded: placesense cannot see something (see reasons)"}},
)
def healthz(service: Operations, response: Response) -> Health:
    """200 only when all is well; 503, with the reasons, whenever placesense cannot see (the rules process stalled
    or restarting, InfluxDB unreachable, the broker lost, notifications failing, a home with no sensor reporting),
    so a load balancer or uptime monitor notices. Carries no home ids: it needs no token."""
    pipeline = service.pipeline
    status = service.health.status()
    reasons = [blind.reason for blind in status.blind]
    if status.homes:
        count = len(status.homes)
        reasons.append(f"{count} home{'s' if count > 1 else ''} with no sensor reporting")
    if not status.ok:
        response.status_code = 503
    evaluation = service.evaluator.health()
    role = service.role()
    instance = service.settings.instance_name
    leader: str | None = instance
    if service.leadership is not None:
        holder = service.leadership.lease.holder_now()
        leader = holder.instance if holder is not None and holder.expires_ms > now_ms() else None
    return Health(
        instance=instance,
        role=role,  # type: ignore[arg-type]
        leader=leader,
        status="ok" if status.ok else "degraded",
        reasons=reasons,
        since=rfc3339(status.since_ms) if status.since_ms is not None else None,
        mqtt_connected=pipeline.consumer.connected.is_set(),
        influx_up=pipeline.writer.influx_up,
        spool_segments=len(pipeline.writer.spool),
        evaluation=evaluation.state,
        evaluation_backlog=evaluation.pending_readings,
        homes_unmonitored=len(status.homes),
    )


@router.get(
    "/healthz/leader",
    response_model=Health,
    responses={503: {"model": Health, "description": "this instance does not lead evaluation (a standby)"}},
)
def healthz_leader(service: Operations, response: Response) -> Health:
    """For a load balancer in front of active/standby instances: 200 on the instance that leads (and on a single
    instance), 503 on a standby, so people's pages and the API go to the one that ingests and evaluates."""
    answer = healthz(service, response)
    response.status_code = 200 if answer.role != "standby" else 503
    return answer


class HomeMonitoring(BaseModel):
    home: str
    since: str
    reason: str


class MonitoringStatus(BaseModel):
    ok: bool = Field(description="false while placesense cannot see everything this token may see")
    since: str | None
    reasons: list[str] = Field(description="service-wide reasons, in plain words")
    homes: list[HomeMonitoring] = Field(description="homes (of this token's) with no sensor reporting")
    homes_unmonitored: int = Field(description="how many homes have no sensor reporting (all tokens see the count)")


@router.get("/api/v1/status", response_model=MonitoringStatus, responses=AUTH_ERRORS)
def monitoring_status(service: Operations, caller: Caller) -> MonitoringStatus:
    """Whether placesense can see, for the pages' banner: "monitoring degraded since 09:12 …". A care token sees
    its own homes by id; other roles see how many homes are affected, never which (a silent home says something
    about a resident)."""
    status = service.health.status()
    homes = [
        HomeMonitoring(home=home, since=rfc3339(blind.since_ms) or "", reason=blind.reason)
        for home, blind in sorted(status.homes.items())
        if caller.role == "admin" or (caller.role == "care" and caller.may_see_home(home))
    ]
    visible_since = [b.since_ms for b in status.blind] + [
        status.homes[h.home].since_ms for h in homes
    ]
    return MonitoringStatus(
        ok=not status.blind and not homes,
        since=rfc3339(min(visible_since)) if visible_since else None,
        reasons=[blind.reason for blind in status.blind],
        homes=homes,
        homes_unmonitored=len(status.homes),
    )


class Me(BaseModel):
    name: str = Field(description="the token's or signed-in person's name, as the audit log records it")
    role: str
    lang: Lang | None = Field(description="the pages' language set for this token or sign-in (en, cy), or null: "
                              "the pages follow the person's choice in the browser, else the browser's languages")


@router.get("/api/v1/me", response_model=Me, responses=AUTH_ERRORS)
def me(caller: Caller) -> Me:
    """Who the caller is to placesense, and the language the pages should open in for them."""
    return Me(name=caller.name, role=caller.role, lang=caller.lang)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={**AUTH_ERRORS, 200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(service: Operations, _admin: Admin) -> PlainTextResponse:
    """Ingest counters, dead letters by kind, spool depth, and whatever the other rooms register."""
    text: Any = service.metrics.render()
    return PlainTextResponse(str(text), media_type="text/plain; version=0.0.4; charset=utf-8")


class AuditEntryOut(BaseModel):
    id: int
    at: str | None
    token_name: str
    role: str
    action: str
    home_id: str
    detail: str


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_before_id: int | None


@router.get("/api/v1/audit", response_model=AuditPage, responses=AUTH_ERRORS)
def audit_log(
    ctx: Ctx,
    _admin: Admin,
    home: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="only this home")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="next_before_id of the previous page")
    ] = None,
) -> AuditPage:
    """Who read or acted on which home's data, newest first (append-only)."""
    rows = ctx.audit.list(home_id=home, limit=limit, before_id=before_id)
    entries = [
        AuditEntryOut(id=r.id, at=rfc3339(r.at_ms), token_name=r.token_name, role=r.role, action=r.action,
                      home_id=r.home_id, detail=r.detail)
        for r in rows
    ]
    return AuditPage(entries=entries, next_before_id=rows[-1].id if len(rows) == limit else None)
