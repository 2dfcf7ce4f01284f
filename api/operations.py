"""Operations endpoints: ``/api/v1/audit`` (admin), ``/healthz`` (no token: load balancers and
``placesense doctor`` call it) and ``/metrics`` (Prometheus text; an admin token, which Prometheus sends
with ``authorization: credentials_file``).

``/metrics`` needs a token because counters by dead-letter kind and device counts describe the estate; a
loopback-only deployment can still scrape it with the admin token. This module must not change any state.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from api.deps import Admin, Ctx
from api.problems import AUTH_ERRORS
from api.timefmt import rfc3339

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    mqtt_connected: bool
    influx_up: bool
    spool_segments: int


@router.get("/healthz", response_model=Health)
def healthz(ctx: Ctx) -> Health:
    """Liveness and the state of the broker and InfluxDB connections."""
    pipeline = ctx.service.pipeline
    return Health(
        status="ok",
        mqtt_connected=pipeline.consumer.connected.is_set(),
        influx_up=pipeline.writer.influx_up,
        spool_segments=len(pipeline.writer.spool),
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={**AUTH_ERRORS, 200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(ctx: Ctx, _admin: Admin) -> PlainTextResponse:
    """Ingest counters, dead letters by kind, spool depth, and whatever the other rooms register."""
    text: Any = ctx.service.metrics.render()
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
