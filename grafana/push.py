"""Create or update placesense's folder, datasources and dashboards in a running Grafana through its HTTP API.

Uses the grafana-client library (the maintained successor of grafana-api). Every step looks its object up by
uid first and updates it when present, so pushing twice leaves Grafana as pushing once did. grafana-client's
and niquests' errors are mapped here, once, into ``GrafanaPushError`` with what to check. This module does not
read the environment: the CLI passes the URL, token and datasource settings in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import niquests
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from grafana.model import Dashboard, dump
from placesense.basics.errors import PlacesenseError

Action = Literal["created", "updated"]


class GrafanaPushError(PlacesenseError):
    """Grafana refused a request or could not be reached."""


@dataclass
class PushReport:
    """What ``push`` did, one line per object, for the CLI to print."""

    actions: list[tuple[str, str, Action]] = field(default_factory=list)

    def add(self, kind: str, uid: str, action: Action) -> None:
        self.actions.append((kind, uid, action))

    def lines(self) -> list[str]:
        return [f"{action} {kind} {uid}" for kind, uid, action in self.actions]


def connect(url: str, token: str, timeout_s: float = 10.0) -> Any:
    """A client for ``url`` authenticating with a service-account token (sent as a Bearer token)."""
    return GrafanaApi.from_url(url.rstrip("/"), credential=token, timeout=timeout_s)


def _missing(exc: GrafanaException) -> bool:
    return isinstance(exc, GrafanaClientError) and exc.status_code == 404


def _ensure_folder(api: Any, uid: str, title: str, report: PushReport) -> None:
    try:
        folder = api.folder.get_folder(uid)
    except GrafanaException as exc:
        if not _missing(exc):
            raise
        api.folder.create_folder(title, uid=uid)
        report.add("folder", uid, "created")
        return
    if folder.get("title") != title:
        api.folder.update_folder(uid, title=title, overwrite=True)
    report.add("folder", uid, "updated")


def _ensure_datasource(api: Any, datasource: dict[str, Any], report: PushReport) -> None:
    uid = datasource["uid"]
    try:
        api.datasource.get_datasource_by_uid(uid)
    except GrafanaException as exc:
        if not _missing(exc):
            raise
        api.datasource.create_datasource(datasource)
        report.add("datasource", uid, "created")
        return
    api.datasource.update_datasource_by_uid(uid, datasource)
    report.add("datasource", uid, "updated")


def _ensure_dashboard(api: Any, dashboard: Dashboard, folder_uid: str, report: PushReport) -> None:
    try:
        api.dashboard.get_dashboard(dashboard.uid)
        action: Action = "updated"
    except GrafanaException as exc:
        if not _missing(exc):
            raise
        action = "created"
    # POST /api/dashboards/db creates or replaces by uid; "id": null lets Grafana keep its own numeric id.
    api.dashboard.update_dashboard(
        {
            "dashboard": {**dump(dashboard), "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "placesense grafana push",
        }
    )
    report.add("dashboard", dashboard.uid, action)


def push(
    api: Any,
    *,
    folder_uid: str,
    folder_title: str,
    datasources: Iterable[dict[str, Any]],
    dashboards: Sequence[Dashboard],
) -> PushReport:
    """Create or update the folder, then the datasources, then the dashboards that reference both."""
    report = PushReport()
    step = f"folder {folder_uid}"
    try:
        _ensure_folder(api, folder_uid, folder_title, report)
        for datasource in datasources:
            step = f"datasource {datasource['uid']}"
            _ensure_datasource(api, datasource, report)
        for dashboard in dashboards:
            step = f"dashboard {dashboard.uid}"
            _ensure_dashboard(api, dashboard, folder_uid, report)
    except GrafanaException as exc:
        hint = ""
        if exc.status_code in (401, 403):
            hint = " Check PLACESENSE_GRAFANA_TOKEN: a service account token with the Editor or Admin role."
        raise GrafanaPushError(f"Grafana refused {step} ({exc.status_code}): {exc.message}.{hint}") from exc
    except niquests.exceptions.RequestException as exc:
        raise GrafanaPushError(f"cannot reach Grafana while pushing {step}: {exc}") from exc
    return report
