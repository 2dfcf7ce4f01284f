"""Credentials are never shown: a URL's password is replaced by ``***`` wherever placesense shows, logs or raises
a URL or a message that may hold one (a third-party error that quotes its URL, for one).

``redact`` works on any text; ``split_credentials`` takes the user and password out of a URL so that clients
are built with a URL that holds none; ``RedactingFormatter`` is the log format every placesense process uses.
This module knows nothing about which settings hold URLs: callers pass text.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
# scheme://user:password@ — the password runs to the last '@' before the host (a stray '@' in an unencoded
# password must not leave its tail behind).
_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<password>[^\s/]*)@")


def redact(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it replaced by ``***``."""
    return _CREDENTIALS.sub(lambda m: f"{m['head']}{MASK}@", text)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its user and password, and those two (decoded), or ``None`` where the URL has none."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return bare, user, password


class RedactingFormatter(logging.Formatter):
    """A log formatter whose lines, tracebacks included, never carry a URL's password."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
