"""CSV exports for reports: ``GET /api/v1/alerts.csv`` and ``GET /api/v1/readings.csv``.

Each is its JSON list (``GET /api/v1/alerts``, ``GET /api/v1/readings``) with the same parameters, the same scope
checks and the same audit rows, written as CSV (RFC 4180, UTF-8, a header row) for a spreadsheet. The JSON
routes do the work; this module only formats. Cells that a spreadsheet would run as a formula (starting with
``=``, ``+``, ``-``, ``@``, tab or carriage return) are prefixed with an apostrophe, as OWASP advises.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api import alerts as alerts_api
from api import readings as readings_api
from api.deps import Alerts, Caller, Ctx, Readings
from api.problems import AUTH_ERRORS
from placesense.basics.findings import Audience

router = APIRouter(tags=["exports"])

CSV_TYPE = "text/csv; charset=utf-8"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# place_name: a flowerbed's or air site's name; never a resident's (homes stay pseudonymous in exports)
ALERT_COLUMNS = ("id", "rule", "audience", "subject", "place_name", "severity", "state", "opened_at", "updated_at",
                 "device_id", "message")
READING_COLUMNS = ("device", "ts", "metric", "value")
CSV_RESPONSES = {**AUTH_ERRORS, 200: {"content": {"text/csv": {}}, "description": "CSV with a header row"}}


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()


def _csv(body: str, filename: str, headers: dict[str, str] | None = None) -> Response:
    return Response(body, media_type=CSV_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})})


@router.get("/api/v1/alerts.csv", response_class=Response, responses=CSV_RESPONSES)
def alerts_csv(
    ctx: Ctx,
    caller: Caller,
    service: Alerts,
    audience: Annotated[Audience | None, Query()] = None,
    state: Annotated[alerts_api.StateFilter | None, Query(description="'active' means open or acknowledged")] = None,
    subject: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """The alerts ``GET /api/v1/alerts`` gives (same parameters and scope), as CSV."""
    listed = alerts_api.list_alerts(ctx, caller, service, audience=audience, state=state, subject=subject,
                                    limit=limit)
    registry = service.registry
    places = {b.id: b.name for b in registry.flowerbeds.values()}
    places.update((site.id, site.name) for site in registry.air_sites.values())
    rows = [
        (a.id, a.rule, a.audience, a.subject, places.get(a.subject, ""), a.severity, a.state, a.opened_at,
         a.updated_at, a.device_id, a.message)
        for a in listed.alerts
    ]
    return _csv(to_csv(ALERT_COLUMNS, rows), "placesense-alerts.csv")


@router.get("/api/v1/readings.csv", response_class=Response, responses=CSV_RESPONSES)
def readings_csv(
    request: Request,
    ctx: Ctx,
    caller: Caller,
    service: Readings,
    device: readings_api.DeviceParam,
    metric: readings_api.MetricParam = None,
    start: readings_api.StartParam = None,
    end: readings_api.EndParam = None,
    limit: Annotated[int, Query(ge=1, le=readings_api.MAX_ROWS)] = readings_api.DEFAULT_ROWS,
    cursor: Annotated[str | None, Query(max_length=200, description="X-Next-Cursor of the previous page")] = None,
) -> Response:
    """A device's readings as ``GET /api/v1/readings`` gives them (same parameters and scope), as CSV; the next
    page's cursor, if any, is in the ``X-Next-Cursor`` header."""
    page = readings_api.readings(request, ctx, caller, service, device=device, metric=metric, start=start, end=end,
                                 limit=limit, cursor=cursor)
    body = to_csv(READING_COLUMNS, ((device, p.ts, p.metric, p.value) for p in page.points))
    headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else None
    return _csv(body, f"placesense-readings-{device}.csv", headers)
