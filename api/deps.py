"""FastAPI dependencies: the API context (service, tokens, audit log), the caller's principal, and one port per
resource.

Routes declare what they need with the ``Annotated`` aliases (``Caller``, ``Admin``, ``Ctx``, and a resource's port
such as ``Readings`` or ``Alerts``: ``api.ports``), so a route's signature says who may call it and what of the
service it uses. This module must not contain route logic or scope decisions beyond "which roles may call this
route at all" (finer scope checks live in ``api.auth.Principal``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.audit import AuditLog
from api.auth import Principal, Role, TokenStore
from api.oidc import session_principal
from api.ports import (
    AlertsPort,
    ApiService,
    DevicesPort,
    HomesPort,
    OperationsPort,
    PushPort,
    ReadingsPort,
    StreetPort,
)
from api.problems import Problem


@dataclass
class ApiContext:
    """What routes need from the composition root, built once by ``create_app``. Routes reach the service through
    their resource's port (below), not through ``service``."""

    service: ApiService
    tokens: TokenStore
    audit: AuditLog


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.api
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]


def readings_port(ctx: Ctx) -> ReadingsPort:
    return ctx.service


def homes_port(ctx: Ctx) -> HomesPort:
    return ctx.service


def street_port(ctx: Ctx) -> StreetPort:
    return ctx.service


def alerts_port(ctx: Ctx) -> AlertsPort:
    return ctx.service


def devices_port(ctx: Ctx) -> DevicesPort:
    return ctx.service


def push_port(ctx: Ctx) -> PushPort:
    return ctx.service


def operations_port(ctx: Ctx) -> OperationsPort:
    return ctx.service


Readings = Annotated[ReadingsPort, Depends(readings_port)]
Homes = Annotated[HomesPort, Depends(homes_port)]
Street = Annotated[StreetPort, Depends(street_port)]
Alerts = Annotated[AlertsPort, Depends(alerts_port)]
Devices = Annotated[DevicesPort, Depends(devices_port)]
Push = Annotated[PushPort, Depends(push_port)]
Operations = Annotated[OperationsPort, Depends(operations_port)]

_bearer = HTTPBearer(
    auto_error=False,
    description="an API token from the tokens file (PLACESENSE_TOKENS_PATH); see docs/api.md",
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="placesense"'}


def identify(ctx: ApiContext, secret: str | None, request: Request | None = None) -> Principal:
    """The principal behind ``secret``, or a 401 problem saying what is missing or wrong (audited when the
    request is given)."""
    try:
        return _identify(ctx, secret)
    except Problem:
        if request is not None:
            who = "(no token)" if not secret else "(unknown token)"
            ctx.audit.refused(who, "none", "unauthenticated", _home_of(request), _what(request))
        raise


def _identify(ctx: ApiContext, secret: str | None) -> Principal:
    if not secret:
        detail = "send an API token as 'Authorization: Bearer <token>'"
        if not len(ctx.tokens):
            detail += "; this server has no tokens configured (set PLACESENSE_TOKENS_PATH)"
        raise Problem(401, detail, kind="unauthenticated", headers=_CHALLENGE)
    principal = ctx.tokens.identify(secret)
    if principal is None:
        raise Problem(
            401,
            "the token is not known to this server (revoked, mistyped, or from another installation)",
            kind="unknown-token",
            headers={"WWW-Authenticate": 'Bearer realm="placesense", error="invalid_token"'},
        )
    return principal


def _what(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def _home_of(request: Request) -> str:
    """The home a request names, if any (``/api/v1/homes/{home}/…``, ``?subject=``), for a refusal's row."""
    home = request.path_params.get("home") or request.query_params.get("subject") or ""
    return str(home)[:64]


def refuse_out_of_scope(ctx: ApiContext, caller: Principal, request: Request, home: str) -> None:
    """Audit a request for a home's data outside the caller's scope (it is answered 404, as if absent)."""
    ctx.audit.refused(caller.name, caller.role, "scope", home, _what(request))


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _same_origin(request: Request) -> bool:
    """The request came from one of our own pages: its ``Origin`` (or, without one, its ``Referer``) names the host
    it was sent to. Browsers set both and pages cannot forge them."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return False
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def _person_or_token(ctx: ApiContext, secret: str | None, request: Request) -> Principal:
    """A bearer token when one is sent (devices, machines); else the signed-in person's session (``api.oidc``).

    A session is a cookie the browser sends by itself, so a change made with one (acknowledge, resolve, a note)
    must come from one of our pages: another site's form or script cannot act in a carer's name (SameSite=Lax
    already stops other sites; this also stops a neighbouring subdomain and old browsers)."""
    if not secret:
        person = session_principal(request)
        if person is not None:
            if request.method not in SAFE_METHODS and not _same_origin(request):
                ctx.audit.refused(person.name, person.role, "origin", _home_of(request), _what(request))
                raise Problem(403, "a signed-in change must come from placesense's own pages", kind="forbidden-origin")
            return person
    return identify(ctx, secret, request)


def get_principal(
    request: Request, ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    principal = _person_or_token(ctx, credentials.credentials if credentials else None, request)
    if principal.role == "sensor":
        ctx.audit.refused(principal.name, principal.role, "role", _home_of(request), _what(request))
        raise Problem(403, "a sensor token may only push readings", kind="forbidden-role")
    return principal


def get_stream_principal(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access_token: Annotated[
        str | None,
        Query(
            max_length=512,
            description="the token, for browsers' EventSource which cannot send headers; prefer the header",
        ),
    ] = None,
) -> Principal:
    principal = _person_or_token(ctx, credentials.credentials if credentials else access_token, request)
    if principal.role == "sensor":
        ctx.audit.refused(principal.name, principal.role, "role", "", _what(request))
        raise Problem(403, "a sensor token may only push readings", kind="forbidden-role")
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency that admits only ``roles`` and says which roles could call the route."""

    def check(request: Request, ctx: Ctx, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            ctx.audit.refused(principal.name, principal.role, "role", _home_of(request), _what(request))
            raise Problem(
                403,
                f"a {principal.role} token may not use this; it needs one of: {', '.join(roles)}",
                kind="forbidden-role",
            )
        return principal

    return check


Caller = Annotated[Principal, Depends(get_principal)]
StreamCaller = Annotated[Principal, Depends(get_stream_principal)]
Admin = Annotated[Principal, Depends(require("admin"))]
StreetSide = Annotated[Principal, Depends(require("admin", "street", "display"))]
