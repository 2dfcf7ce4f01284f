"""``placesense serve``: ingest and the API in one process, the rules and anomaly detection in a child it starts."""

from __future__ import annotations

import argparse
import logging

from placesense.settings import load_settings

log = logging.getLogger("placesense.serve")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clock",
        choices=["live", "event"],
        help="live: wall clock, so absence of events raises alerts (default); event: time follows event "
        "timestamps, for replays and simulations (PLACESENSE_CLOCK)",
    )
    parser.add_argument("--api-bind", metavar="HOST:PORT", help="where the API listens (PLACESENSE_API_BIND)")
    parser.add_argument("--registry", metavar="FILE", help="device registry file (PLACESENSE_REGISTRY_PATH)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from placesense.basics.memory import settle_memory
    from placesense.service import Service

    overrides = {}
    if args.clock:
        overrides["clock"] = args.clock
    if args.api_bind:
        overrides["api_bind"] = args.api_bind
    if args.registry:
        overrides["registry_path"] = args.registry
    settings = load_settings(**overrides)
    service = Service.build(settings)
    app = create_app(service)
    settle_memory()
    log.info("API on http://%s (clock: %s)", settings.api_bind, settings.clock)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="warning", access_log=False)
    return 0
