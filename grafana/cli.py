"""``placesense grafana build|push``: write the dashboards and provisioning files, or push them to a Grafana.

This is the grafana room's composition root: it reads placesense's settings (InfluxDB URL, database and
credentials; the device registry) and, for ``push`` only, the Grafana token from ``PLACESENSE_GRAFANA_TOKEN``.
The token is a setting of this command alone, so it is read here by a small settings class of its own rather
than added to placesense's service settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from devices.registry import Registry, load_registry
from grafana.dashboards import FOLDER_TITLE, FOLDER_UID, all_dashboards
from grafana.datasources import InfluxSource, all_datasources
from grafana.provisioning import DASHBOARDS_PATH, write_build
from grafana.push import connect, push
from placesense.basics.errors import ConfigError
from placesense.basics.redact import split_credentials
from placesense.settings import Settings, load_settings


class GrafanaCredentials(BaseSettings):
    """``PLACESENSE_GRAFANA_TOKEN``: a Grafana service account token with the Editor or Admin role."""

    model_config = SettingsConfigDict(env_prefix="PLACESENSE_GRAFANA_", extra="ignore")

    token: SecretStr


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="grafana_command", metavar="ACTION", required=True)

    build = sub.add_parser(
        "build",
        help="write dashboard JSON and provisioning files for a Grafana that reads them from disk",
        description="Write DIR/dashboards/*.json and DIR/provisioning/{datasources,dashboards}/placesense.yaml. "
        "Secrets are written as ${PLACESENSE_INFLUX_…} references that Grafana expands from its environment.",
    )
    build.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write into")
    build.add_argument(
        "--dashboards-path",
        default=DASHBOARDS_PATH,
        help=f"where Grafana will find the dashboards' JSON (default {DASHBOARDS_PATH})",
    )
    _common(build)

    push_cmd = sub.add_parser(
        "push",
        help="create or update the folder, datasources and dashboards through Grafana's HTTP API",
        description="Idempotent: objects are looked up by uid and updated when present. The token comes from "
        "PLACESENSE_GRAFANA_TOKEN (a service account token with the Editor or Admin role).",
    )
    push_cmd.add_argument("--url", required=True, help="Grafana's base URL, e.g. https://grafana.example.org")
    push_cmd.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    _common(push_cmd)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--influx-url",
        help="InfluxDB's URL as Grafana reaches it, when that differs from PLACESENSE_INFLUX_URL "
        "(e.g. Grafana in a container)",
    )
    parser.add_argument("--registry", type=Path, help="device registry (default PLACESENSE_REGISTRY_PATH)")


def influx_source(settings: Settings, influx_url: str | None = None) -> InfluxSource:
    # A password written into the URL becomes Grafana's secure password field, never part of the datasource's
    # URL, which Grafana shows to everyone who may edit dashboards and which provisioning files keep in clear.
    url, url_user, url_password = split_credentials((influx_url or settings.influx_url).rstrip("/"))
    password = settings.influx_password.get_secret_value() if settings.influx_password else None
    return InfluxSource(
        url=url,
        database=settings.influx_db,
        username=settings.influx_username or url_user,
        password=password if settings.influx_username else (url_password or password),
        token=settings.influx_token.get_secret_value() if settings.influx_token else None,
    )


def _registry(settings: Settings, path: Path | None) -> Registry:
    return load_registry(path or settings.registry_path)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    source = influx_source(settings, args.influx_url)
    registry = _registry(settings, args.registry)
    if args.grafana_command == "build":
        for path in write_build(args.out, registry, source, args.dashboards_path):
            print(path)
        return 0

    try:
        credentials = GrafanaCredentials()  # type: ignore[call-arg]  # the token comes from the environment
    except ValidationError as exc:
        raise ConfigError("set PLACESENSE_GRAFANA_TOKEN to a Grafana service account token") from exc
    api = connect(args.url, credentials.token.get_secret_value(), args.timeout)
    report = push(
        api,
        folder_uid=FOLDER_UID,
        folder_title=FOLDER_TITLE,
        datasources=all_datasources(source, secrets="values"),
        dashboards=all_dashboards(registry),
    )
    for line in report.lines():
        print(line)
    return 0
