"""InfluxQL quoting: every identifier and string literal the storage room puts into a query goes through here.

A double-quoted identifier and a single-quoted string literal, each with its backslashes and quotes escaped, so no
text that came from a request, the registry or a file reaches InfluxDB unescaped. This module must not build
whole queries (the query modules beside it do) or talk to InfluxDB.
"""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(text: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
