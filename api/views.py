"""The built-in pages: ``/display`` (operations-room wall), ``/street`` (a phone in a park) and ``/care``.

Plain HTML, CSS and JavaScript files from ``api/pages/``, no build step and no server of their own. The pages
carry no data: their scripts call the API with a token kept in the browser (see docs/api.md), so serving them
needs no token. A strict Content-Security-Policy allows only same-origin scripts and connections. This module
must not render data into HTML.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

PAGES_DIR = Path(__file__).parent / "pages"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
_ASSETS = {
    "common.css": "text/css",
    "common.js": "text/javascript",
    "display.js": "text/javascript",
    "street.js": "text/javascript",
    "care.js": "text/javascript",
}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(PAGES_DIR / name, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/display")
def display() -> FileResponse:
    return _page("display.html")


@router.get("/street")
def street() -> FileResponse:
    return _page("street.html")


@router.get("/care")
def care() -> FileResponse:
    return _page("care.html")


def _asset_route(name: str, media_type: str) -> None:
    def serve() -> FileResponse:
        return FileResponse(PAGES_DIR / name, media_type=media_type, headers=SECURITY_HEADERS)

    router.add_api_route(f"/pages/{name}", serve, methods=["GET"], name=f"asset:{name}")


for _name, _type in _ASSETS.items():
    _asset_route(_name, _type)
