"""The FastAPI application factory. Routes live in their own modules; this file assembles them.

``create_app(service)`` loads the API tokens, opens the audit log on the service's engine, installs the
problem-details error handlers and includes every router. It must not hold route logic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import (
    ack_link,
    air,
    alerts,
    bed_actions,
    deadletters,
    device_registration,
    devices,
    exports,
    flowerbeds,
    homes,
    oidc,
    operations,
    readings,
    sensor_community,
    views,
)
from api.audit import AuditLog
from api.auth import TokenStore, load_tokens
from api.deps import ApiContext
from api.headers import SecurityHeaders
from api.ports import ApiService
from api.problems import install_problem_handlers
from placesense import __version__

DESCRIPTION = """Readings, alerts, homes' routines, the watering list, air quality, devices and dead letters.

Every `/api/v1` path needs `Authorization: Bearer <token>`; roles and scopes are described in docs/api.md.
Errors are `application/problem+json`."""


def create_app(service: ApiService, *, manage_lifecycle: bool = True, tokens: TokenStore | None = None) -> FastAPI:
    """Build the app around the service (``placesense.service.Service``); start and stop it with the app if asked.

    ``tokens`` overrides the tokens file named by the service's settings (tests use this).
    """
    token_store = tokens if tokens is not None else load_tokens(service.settings.tokens_path)
    audit = AuditLog(
        service.engine,
        lambda why: service.metrics.inc("placesense_api_refused_total", reason=why),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            service.start()
        try:
            yield
        finally:
            if getattr(app.state, "sign_in", None) is not None:
                app.state.sign_in.close()
            if manage_lifecycle:
                service.stop()

    # /docs is served by api.views from local files (no CDN); FastAPI's own pages load scripts from a CDN.
    app = FastAPI(title="placesense", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    app.add_middleware(SecurityHeaders)
    app.state.service = service
    app.state.api = ApiContext(service=service, tokens=token_store, audit=audit)
    oidc_settings = oidc.OidcSettings()
    if oidc_settings.enabled:  # people sign in as themselves (api.oidc); tokens stay for devices and machines
        app.state.sign_in = oidc.SignIn(oidc_settings, token_store)
    install_problem_handlers(app)
    for module in (
        operations, readings, devices, deadletters, alerts, ack_link, homes, flowerbeds, air, sensor_community, views,
        bed_actions, exports, oidc, device_registration,
    ):
        app.include_router(module.router)
    return app
