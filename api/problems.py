"""Problem details (RFC 9457): every error the API returns is ``application/problem+json``.

One exception, ``Problem``, carries a status, a short title, a plain-English detail and a type slug. The
handlers installed by ``install_problem_handlers`` turn it, FastAPI's validation errors, Starlette's HTTP errors
(404 for an unknown path, 405) and placesense storage errors into the same shape, so a client needs one code path
for failures. This module must not know about routes, tokens or stores.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from placesense.basics.errors import EvaluationUnavailable, StorageError
from placesense.basics.redact import redact

log = logging.getLogger("placesense.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Relative type URIs (allowed by RFC 9457) keep the API free of a made-up domain; docs/api.md lists them.
TYPE_PREFIX = "/problems/"

_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    502: "Bad gateway",
    503: "Service unavailable",
}


class Problem(Exception):
    """An error to send as problem details. ``kind`` becomes the type slug (``/problems/<kind>``)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        detail = redact(detail)  # whatever a route quotes, a URL's password never leaves in an answer
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _slug(title or _TITLES.get(status, "error"))
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers
        self.extra = extra or {}


def _slug(text: str) -> str:
    return "-".join(text.lower().split())


def problem_response(problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + problem.kind,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        **problem.extra,
    }
    return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_MEDIA_TYPE)


# OpenAPI: the error responses every authenticated route can give, described once.
PROBLEM_SCHEMA: dict[str, Any] = {
    "content": {
        PROBLEM_MEDIA_TYPE: {
            "schema": {
                "type": "object",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                },
            }
        }
    }
}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown token", **PROBLEM_SCHEMA},
    403: {"description": "the token's role or scope excludes this", **PROBLEM_SCHEMA},
    422: {"description": "invalid parameters", **PROBLEM_SCHEMA},
}


def _describe_validation(errors: list[Any]) -> tuple[str, list[dict[str, str]]]:
    items = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "request"
        name = ".".join(loc[1:]) or where
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        items.append({"in": where, "name": name, "message": msg})
    detail = "; ".join(f"{i['name']} ({i['in']}): {i['message']}" for i in items) or "the request is invalid"
    return detail, items


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, items = _describe_validation(list(exc.errors()))
        return problem_response(Problem(422, detail, kind="invalid-parameters", extra={"errors": items}))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "error")
        if exc.status_code == 404 and detail == "Not Found":
            detail = "there is nothing at this path; see /docs for the API"
        elif exc.status_code == 405:
            detail = "this path does not accept that HTTP method"
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(Problem(exc.status_code, detail, headers=headers))

    @app.exception_handler(StorageError)
    async def _storage(_request: Request, exc: StorageError) -> JSONResponse:
        # A store that is down is the server's state, not the client's mistake: 503 and a retry hint. Whoever
        # asked (a wall display too) learns which store, never a URL's password.
        log.warning("storage error answering a request: %s", exc)
        return problem_response(
            Problem(503, f"a store placesense reads is unavailable: {redact(str(exc))}", kind="storage-unavailable",
                    headers={"Retry-After": "10"})
        )

    @app.exception_handler(EvaluationUnavailable)
    async def _evaluation(_request: Request, exc: EvaluationUnavailable) -> JSONResponse:
        # The rules and detectors run in their own process; after a crash it is started again within seconds.
        log.warning("rule state unavailable answering a request: %s", exc)
        return problem_response(
            Problem(503, f"the rules and detectors are not answering ({redact(str(exc))}); try again in a few seconds",
                    kind="evaluation-unavailable", headers={"Retry-After": "5"})
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering a request")
        return problem_response(Problem(500, "an unexpected error occurred; it has been logged", kind="internal"))
