"""InfluxDB through its v1 HTTP API: line-protocol writes to ``/write`` and InfluxQL through ``/query``.

This is the one dialect InfluxDB 1.x, 2.x (compatibility API, token auth, DBRP mapping) and 3.x all accept.
httpx errors are mapped here, once, into ``RetryableStorageError`` (unreachable, timeout, 5xx, 429) or
``PermanentStorageError`` (the data itself was refused: 400, field type conflict). This module does not retry,
spool or batch; the writer does.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any

import httpx

from placesense.errors import PermanentStorageError, RetryableStorageError


@dataclass(frozen=True)
class InfluxConfig:
    url: str
    db: str
    rp: str = ""
    username: str | None = None
    password: str | None = None
    token: str | None = None
    timeout_s: float = 10.0
    gzip_level: int = 1


class InfluxClient:
    """A thread-safe client for one database."""

    def __init__(self, config: InfluxConfig) -> None:
        self.config = config
        headers = {"User-Agent": "placesense"}
        if config.token:
            headers["Authorization"] = f"Token {config.token}"
        auth = (config.username, config.password or "") if config.username else None
        self._http = httpx.Client(
            base_url=config.url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(config.timeout_s, connect=min(3.0, config.timeout_s)),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        )

    def close(self) -> None:
        self._http.close()

    def _params(self, **extra: str) -> dict[str, str]:
        params = {"db": self.config.db, **extra}
        if self.config.rp:
            params["rp"] = self.config.rp
        return params

    def write(self, body: bytes, precision: str = "ms") -> None:
        """Write line protocol; raise a ``StorageError`` subclass saying whether retrying can help."""
        if not body:
            return
        data = gzip.compress(body, compresslevel=self.config.gzip_level) if self.config.gzip_level else body
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.config.gzip_level:
            headers["Content-Encoding"] = "gzip"
        try:
            resp = self._http.post("/write", params=self._params(precision=precision), content=data, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableStorageError(f"InfluxDB at {self.config.url} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise RetryableStorageError(f"cannot reach InfluxDB at {self.config.url}: {exc}") from exc
        if resp.status_code == 204:
            return
        message = _error_text(resp)
        if resp.status_code == 404 and "database not found" in message:
            raise RetryableStorageError(f"InfluxDB database {self.config.db!r} does not exist: {message}")
        if resp.status_code in (401, 403):
            raise RetryableStorageError(
                f"InfluxDB refused our credentials ({resp.status_code}): {message}. "
                "Check PLACESENSE_INFLUX_TOKEN or PLACESENSE_INFLUX_USERNAME/PASSWORD."
            )
        if resp.status_code >= 500 or resp.status_code == 429:
            raise RetryableStorageError(f"InfluxDB answered {resp.status_code}: {message}")
        raise PermanentStorageError(f"InfluxDB refused the data ({resp.status_code}): {message}")

    def query(self, q: str, *, epoch: str = "ms", method: str = "POST") -> list[dict[str, Any]]:
        """Run InfluxQL; return the ``results`` list. Errors in a statement raise ``PermanentStorageError``."""
        try:
            if method == "GET":
                resp = self._http.get("/query", params=self._params(q=q, epoch=epoch))
            else:
                resp = self._http.post("/query", params=self._params(epoch=epoch), data={"q": q})
        except httpx.TimeoutException as exc:
            raise RetryableStorageError(f"InfluxDB query timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise RetryableStorageError(f"cannot reach InfluxDB at {self.config.url}: {exc}") from exc
        if resp.status_code >= 500:
            raise RetryableStorageError(f"InfluxDB answered {resp.status_code}: {_error_text(resp)}")
        if resp.status_code != 200:
            raise PermanentStorageError(f"InfluxDB query failed ({resp.status_code}): {_error_text(resp)}")
        results: list[dict[str, Any]] = resp.json().get("results", [])
        for result in results:
            if "error" in result:
                raise PermanentStorageError(f"InfluxQL error: {result['error']}")
        return results

    def series(self, q: str) -> list[dict[str, Any]]:
        """The series of the first statement of ``q`` (empty when there is no data)."""
        results = self.query(q)
        return list(results[0].get("series", [])) if results else []

    def ping(self) -> bool:
        try:
            return self._http.get("/ping", timeout=2.0).status_code in (200, 204)
        except httpx.HTTPError:
            return False

    def ensure_database(self) -> None:
        """CREATE DATABASE (idempotent on 1.x; 2.x/3.x need a DBRP mapping made by their admin instead)."""
        self.query(f'CREATE DATABASE "{_quote_ident(self.config.db)}"')


def _quote_ident(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        if isinstance(body, dict) and "error" in body:
            return str(body["error"])
    except ValueError:
        pass
    return resp.text.strip()[:500] or resp.reason_phrase
