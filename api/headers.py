"""Security headers on every response: a Content-Security-Policy, no MIME sniffing, no referrer.

An ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which buffers and interferes with the event stream)
that adds the headers a response does not set itself: the pages and the API docs set their own, looser policy
(``api.views``); everything else (JSON, problems, the event stream) gets one that lets nothing load or run and
nothing frame it. This module must not look at or change bodies.
"""

from __future__ import annotations

from typing import Any

DEFAULT_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _value in headers}
                headers += [(name, value) for name, value in DEFAULT_HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
