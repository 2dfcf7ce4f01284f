"""The Grafana datasources the dashboards use, for provisioning files and for Grafana's HTTP API.

- ``placesense InfluxDB``: Grafana's InfluxDB datasource in InfluxQL mode, which speaks the v1 HTTP API that
  every InfluxDB accepts (1.x natively, 2.x through its compatibility API and DBRP mapping, 3.x natively).
  1.x users authenticate with user and password; 2.x/3.x tokens go in an ``Authorization: Token …`` custom
  header (``httpHeaderName1``/``httpHeaderValue1``), exactly as placesense's own client sends them.
- ``placesense static``: Grafana's built-in TestData datasource, used only to serve the flowerbeds'
  coordinates as static CSV to the geomap (InfluxDB does not store them; see docs/grafana.md).

Secrets appear in two ways only: as ``${PLACESENSE_…}`` references in provisioning files, which Grafana
expands from its own environment, or as values sent once to Grafana's API by ``push``. They are never written
to disk here. This module does not read the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from grafana.model import DataSourceRef

INFLUX_UID = "placesense-influxdb"
INFLUX_NAME = "placesense InfluxDB"
STATIC_UID = "placesense-static"
STATIC_NAME = "placesense static"
# The TestData plugin's id since Grafana 10; it ships with Grafana, so nothing extra is installed.
TESTDATA_TYPE = "grafana-testdata-datasource"

INFLUX_REF = DataSourceRef(type="influxdb", uid=INFLUX_UID)
STATIC_REF = DataSourceRef(type=TESTDATA_TYPE, uid=STATIC_UID)

# The names Grafana expands in provisioning files; the same ones placesense itself reads.
PASSWORD_ENV = "PLACESENSE_INFLUX_PASSWORD"
TOKEN_ENV = "PLACESENSE_INFLUX_TOKEN"


@dataclass(frozen=True, slots=True)
class InfluxSource:
    """Where Grafana finds InfluxDB and how it authenticates. Secrets are only held for ``push``."""

    url: str
    database: str
    username: str | None = None
    password: str | None = None
    token: str | None = None

    @property
    def auth(self) -> Literal["token", "user", "none"]:
        if self.token is not None:
            return "token"
        return "user" if self.username else "none"


def influx_datasource(source: InfluxSource, secrets: Literal["env", "values"]) -> dict[str, Any]:
    """The InfluxDB datasource: ``secrets="env"`` for provisioning files, ``"values"`` for the API."""
    json_data: dict[str, Any] = {
        "version": "InfluxQL",
        "dbName": source.database,
        # POST keeps long queries out of URLs and access logs.
        "httpMode": "POST",
        "timeInterval": "1m",
    }
    secure: dict[str, str] = {}
    datasource: dict[str, Any] = {
        "name": INFLUX_NAME,
        "uid": INFLUX_UID,
        "type": "influxdb",
        "access": "proxy",
        "url": source.url,
        # Older Grafana versions read the database from here rather than jsonData.dbName.
        "database": source.database,
        "isDefault": True,
        "editable": False,
    }
    if source.auth == "token":
        json_data["httpHeaderName1"] = "Authorization"
        token = f"${{{TOKEN_ENV}}}" if secrets == "env" else source.token
        secure["httpHeaderValue1"] = f"Token {token}"
    elif source.auth == "user":
        datasource["user"] = source.username
        password = f"${{{PASSWORD_ENV}}}" if secrets == "env" else (source.password or "")
        secure["password"] = password
    datasource["jsonData"] = json_data
    if secure:
        datasource["secureJsonData"] = secure
    return datasource


def static_datasource() -> dict[str, Any]:
    """The TestData datasource that serves the dashboards' static tables (the beds' coordinates)."""
    return {
        "name": STATIC_NAME,
        "uid": STATIC_UID,
        "type": TESTDATA_TYPE,
        "access": "proxy",
        "isDefault": False,
        "editable": False,
    }


def all_datasources(source: InfluxSource, secrets: Literal["env", "values"]) -> list[dict[str, Any]]:
    return [influx_datasource(source, secrets), static_datasource()]


DATASOURCE_UIDS = frozenset({INFLUX_UID, STATIC_UID})
