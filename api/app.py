"""The FastAPI application factory. Routes live in their own modules; this file assembles them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from placesense import __version__


def create_app(service: Any, *, manage_lifecycle: bool = True) -> FastAPI:
    """Build the app around a ``placesense.service.Service``; start and stop it with the app if asked."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            service.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                service.stop()

    app = FastAPI(title="placesense", version=__version__, lifespan=lifespan)
    app.state.service = service

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, Any]:
        """Liveness and the state of the broker and InfluxDB connections."""
        pipeline = service.pipeline
        return {
            "status": "ok",
            "mqtt_connected": pipeline.consumer.connected.is_set(),
            "influx_up": pipeline.writer.influx_up,
            "spool_segments": len(pipeline.writer.spool),
        }

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    def metrics() -> str:
        """Prometheus text format."""
        return str(service.metrics.render())

    return app
