"""A minimal stand-in for Grafana's HTTP API, because no Grafana server can run in this environment.

It is not Grafana: it keeps folders, datasources and dashboards in dictionaries and answers only the
endpoints ``placesense grafana push`` calls, with the status codes and JSON shapes of Grafana's documented API
(404 with a ``message`` for unknown uids, 409 for a duplicate datasource name, 401 without the right Bearer
token). Every request is recorded so tests can check what push sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers import http_server


@dataclass
class GrafanaState:
    token: str
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)


def _handler(state: GrafanaState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.requests.append((method, self.path, body))
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                self._reply(401, {"message": "Unauthorized"})
                return
            status, answer = self._route(method, self.path.split("?")[0], body)
            self._reply(status, answer)

        def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
            if m := re.fullmatch(r"/api/folders/([\w-]+)", path):
                uid = m.group(1)
                if uid not in state.folders:
                    return 404, {"message": "folder not found"}
                if method == "PUT":
                    state.folders[uid] |= {"title": body["title"], "version": state.folders[uid]["version"] + 1}
                return 200, state.folders[uid]
            if path == "/api/folders" and method == "POST":
                if body["uid"] in state.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                state.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "version": 1}
                return 200, state.folders[body["uid"]]
            if m := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path):
                uid = m.group(1)
                if uid not in state.datasources:
                    return 404, {"message": "Data source not found"}
                if method == "PUT":
                    state.datasources[uid] = body
                    return 200, {"message": "Datasource updated", "datasource": body}
                return 200, {k: v for k, v in state.datasources[uid].items() if k != "secureJsonData"}
            if path == "/api/datasources" and method == "POST":
                if any(d["name"] == body["name"] for d in state.datasources.values()):
                    return 409, {"message": "data source with the same name already exists"}
                state.datasources[body["uid"]] = body
                return 200, {"message": "Datasource added", "datasource": body}
            if m := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path):
                entry = state.dashboards.get(m.group(1))
                if entry is None:
                    return 404, {"message": "Dashboard not found"}
                return 200, {"dashboard": entry["dashboard"], "meta": {"folderUid": entry["folderUid"]}}
            if path == "/api/dashboards/db" and method == "POST":
                dashboard = body["dashboard"]
                if body.get("folderUid") not in state.folders:
                    return 400, {"message": "folder not found"}
                previous = state.dashboards.get(dashboard["uid"])
                if previous is not None and not body.get("overwrite"):
                    return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
                version = previous["version"] + 1 if previous else 1
                state.dashboards[dashboard["uid"]] = {
                    "dashboard": dashboard, "folderUid": body["folderUid"], "version": version
                }
                return 200, {"status": "success", "uid": dashboard["uid"], "version": version}
            return 404, {"message": f"no such endpoint in the stand-in: {method} {path}"}

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

    return Handler


@contextmanager
def fake_grafana(token: str) -> Iterator[tuple[str, GrafanaState]]:
    """Start the stand-in on 127.0.0.1 and a free port; yield its base URL and its state."""
    state = GrafanaState(token=token)
    with http_server(_handler(state)) as url:
        yield url, state
