"""The built-in pages: ``/display`` (operations-room wall), ``/street`` (a phone in a park), ``/care``,
``/devices`` (the fleet for admins), and the interactive API docs at ``/docs``.

Plain HTML, CSS and JavaScript files from ``api/pages/``, no build step and no server of their own. The pages
carry no data: their scripts call the API with a token kept in the browser (see docs/api.md), so serving them
needs no token. A strict Content-Security-Policy allows only same-origin scripts and connections, and no inline
script; the street page may also show OpenStreetMap's tile images. Vendored libraries (``api/pages/vendor/``, see
its README) are served from here too. The docs are Swagger UI from the ``fastapi-offline`` package's copy of its
files, served from here: a CDN's script would run on the origin that keeps the tokens. This module must not render
data into HTML.

The pages read in English or Welsh: ``/pages/texts.js`` carries the Welsh dictionary (``api/pages/i18n/cy.json``,
English text to Welsh) as a script, so a page has its words before its own script runs; see docs/welsh.md.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

PAGES_DIR = Path(__file__).parent / "pages"
SWAGGER_UI_DIR = Path(str(resources.files("fastapi_offline") / "static"))
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
# The street page's map draws OpenStreetMap tiles when the phone is online: images from the tile server only.
OSM_TILES = "https://tile.openstreetmap.org"
STREET_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"].replace(
        "img-src 'self' data:", f"img-src 'self' data: {OSM_TILES}"
    ),
}
VENDOR_DIR = PAGES_DIR / "vendor"
I18N_DIR = PAGES_DIR / "i18n"
_VENDOR_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}
_ASSETS = {
    "common.css": "text/css",
    "common.js": "text/javascript",
    "display.js": "text/javascript",
    "street.js": "text/javascript",
    "street.css": "text/css",
    "care.js": "text/javascript",
    "care-charts.js": "text/javascript",
    "devices.js": "text/javascript",
    "docs.js": "text/javascript",
    "docs.css": "text/css",
}
_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(PAGES_DIR / name, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/display")
def display() -> FileResponse:
    return _page("display.html")


@router.get("/street")
def street() -> FileResponse:
    return FileResponse(PAGES_DIR / "street.html", media_type="text/html; charset=utf-8", headers=STREET_HEADERS)


@router.get("/care")
def care() -> FileResponse:
    return _page("care.html")


@router.get("/devices")
def devices() -> FileResponse:
    return _page("devices.html")


@router.get("/docs")
def docs() -> FileResponse:
    return _page("docs.html")


def _asset_route(name: str, media_type: str) -> None:
    def serve() -> FileResponse:
        return FileResponse(PAGES_DIR / name, media_type=media_type, headers=SECURITY_HEADERS)

    router.add_api_route(f"/pages/{name}", serve, methods=["GET"], name=f"asset:{name}")


for _name, _type in _ASSETS.items():
    _asset_route(_name, _type)


def _docs_asset_route(name: str, media_type: str) -> None:
    def serve() -> FileResponse:
        return FileResponse(SWAGGER_UI_DIR / name, media_type=media_type, headers=SECURITY_HEADERS)

    router.add_api_route(f"/docs/assets/{name}", serve, methods=["GET"], name=f"docs-asset:{name}")


for _name, _type in _DOCS_ASSETS.items():
    _docs_asset_route(_name, _type)


@cache
def page_texts() -> str:
    """Every page dictionary (``api/pages/i18n/{lang}.json``) as one script: ``window.PLACESENSE_TEXTS``."""
    dictionaries = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(I18N_DIR.glob("*.json"))}
    return f"window.PLACESENSE_TEXTS = {json.dumps(dictionaries, ensure_ascii=False, sort_keys=True)};\n"


@router.get("/pages/texts.js")
def texts() -> Response:
    return Response(page_texts(), media_type="text/javascript; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/pages/vendor/{path:path}")
def vendor(path: str) -> FileResponse:
    """A vendored library's file (``api/pages/vendor/``): only files inside that folder, of known types."""
    target = (VENDOR_DIR / path).resolve()
    if not target.is_relative_to(VENDOR_DIR.resolve()) or not target.is_file() or target.suffix not in _VENDOR_TYPES:
        raise HTTPException(404)
    return FileResponse(target, media_type=_VENDOR_TYPES[target.suffix], headers=SECURITY_HEADERS)
