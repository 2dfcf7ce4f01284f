"""FastAPI dependencies: the API context (service, tokens, audit log) and the caller's principal.

Routes declare what they need with the ``Annotated`` aliases at the bottom (``Caller``, ``Admin``, ``Ctx``), so a
route's signature says who may call it. This module must not contain route logic or scope decisions beyond
"which roles may call this route at all" (finer scope checks live in ``api.auth.Principal``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.audit import AuditLog
from api.auth import Principal, Role, TokenStore
from api.problems import Problem
from placesense.service import Service


@dataclass
class ApiContext:
    """What routes need from the composition root, built once by ``create_app``."""

    service: Service
    tokens: TokenStore
    audit: AuditLog


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.api
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]

_bearer = HTTPBearer(
    auto_error=False,
    description="an API token from the tokens file (PLACESENSE_TOKENS_PATH); see docs/api.md",
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="placesense"'}


def identify(ctx: ApiContext, secret: str | None) -> Principal:
    """The principal behind ``secret``, or a 401 problem saying what is missing or wrong."""
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


def get_principal(
    ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    principal = identify(ctx, credentials.credentials if credentials else None)
    if principal.role == "sensor":
        raise Problem(403, "a sensor token may only push readings", kind="forbidden-role")
    return principal


def get_stream_principal(
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
    principal = identify(ctx, credentials.credentials if credentials else access_token)
    if principal.role == "sensor":
        raise Problem(403, "a sensor token may only push readings", kind="forbidden-role")
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency that admits only ``roles`` and says which roles could call the route."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
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
