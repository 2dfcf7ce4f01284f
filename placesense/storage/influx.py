"""InfluxDB through its v1 HTTP API: line-protocol writes to ``/write`` and InfluxQL through ``/query``.

This is the one dialect InfluxDB 1.x, 2.x (compatibility API, token auth, DBRP mapping) and 3.x all accept.
Transport errors and InfluxDB's answers are mapped here, once, into the types of ``placesense.storage.errors``:
retryable (``StorageUnavailable`` for unreachable, 5xx and 429, ``StorageTimeout``, ``StorageAccessRefused``,
``DatabaseNotFound``) or permanent (``DataRejected``: 400, field type conflict; ``QueryRejected``: an InfluxQL
error). Beyond the databases themselves (``ensure_database``, ``databases``) this module builds no queries
(``placesense.storage.readings`` and ``.erasure`` do), and it does not retry, spool or batch (ingest's writer
does).

Writes go through the standard library's ``http.client`` on kept-alive connections (``_WritePool``); queries use
httpx. Each httpx request left about 48 objects in reference cycles, so at ingest's 40 writes a second the
garbage collector stopped the service's process for 12–36 ms every 6–7 s to free them (docs/benchmarks.md).
``http.client`` knows nothing of proxies, so where the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``)
sends InfluxDB's URL through one, writes go through httpx too, as they always did.

Writes are compressed (gzip level 1) only when InfluxDB is on another machine: over loopback compressing costs
more CPU on both sides than the bytes it saves (docs/benchmarks.md, sixth round). ``gzip_level`` overrides that.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import ipaddress
import json
import threading
import urllib.request
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from placesense.basics.redact import split_credentials
from placesense.storage.errors import (
    DatabaseNotFound,
    DataRejected,
    QueryRejected,
    StorageAccessRefused,
    StorageTimeout,
    StorageUnavailable,
)
from placesense.storage.influxql import quote_ident


@dataclass(frozen=True)
class InfluxConfig:
    url: str
    db: str
    rp: str = ""
    username: str | None = None
    password: str | None = None
    token: str | None = None
    timeout_s: float = 10.0
    gzip_level: int | None = None  # None: 1 unless InfluxDB is on this machine (``default_gzip_level``)


class InfluxClient:
    """A thread-safe client for one database."""

    def __init__(self, config: InfluxConfig) -> None:
        # A user and password written into the URL become the login, and the URL the client keeps, shows in its
        # errors and sends requests to has none: a message quoting it never carries the password.
        url, url_user, url_password = split_credentials(config.url)
        if url_user is not None and not config.username:
            config = replace(config, url=url, username=url_user, password=url_password)
        else:
            config = replace(config, url=url)
        self.config = config
        self.gzip_level = default_gzip_level(config.url) if config.gzip_level is None else config.gzip_level
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
        write_headers = dict(headers)
        if auth is not None:
            basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            write_headers["Authorization"] = f"Basic {basic}"
        self._writes = None if _through_proxy(config.url) else _WritePool(config.url, write_headers, config.timeout_s)

    def close(self) -> None:
        if self._writes is not None:
            self._writes.close()
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
        data = gzip.compress(body, compresslevel=self.gzip_level) if self.gzip_level else body
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip_level:
            headers["Content-Encoding"] = "gzip"
        params = self._params(precision=precision)
        try:
            if self._writes is not None:
                status, reason, answer = self._writes.post("/write", params, data, headers)
            else:
                resp = self._http.post("/write", params=params, content=data, headers=headers)
                status, reason, answer = resp.status_code, resp.reason_phrase, resp.content
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise StorageTimeout(f"InfluxDB at {self.config.url} timed out: {exc}") from exc
        except (OSError, http.client.HTTPException, httpx.TransportError) as exc:
            raise StorageUnavailable(
                f"cannot reach InfluxDB at {self.config.url}: {exc or type(exc).__name__}"
            ) from exc
        if status == 204:
            return
        message = _error_message(answer, reason)
        if status == 404 and _database_missing(message):
            raise DatabaseNotFound(f"InfluxDB database {self.config.db!r} does not exist: {message}")
        if status in (401, 403):
            raise StorageAccessRefused(
                f"InfluxDB refused our credentials ({status}): {message}. "
                "Check PLACESENSE_INFLUX_TOKEN or PLACESENSE_INFLUX_USERNAME/PASSWORD."
            )
        if status >= 500 or status == 429:
            raise StorageUnavailable(f"InfluxDB answered {status}: {message}")
        raise DataRejected(f"InfluxDB refused the data ({status}): {message}")

    def query(self, q: str, *, epoch: str = "ms", method: str = "POST") -> list[dict[str, Any]]:
        """Run InfluxQL; return the ``results`` list. An error in a statement raises ``QueryRejected``, or
        ``DatabaseNotFound`` when the database does not exist."""
        try:
            if method == "GET":
                resp = self._http.get("/query", params=self._params(q=q, epoch=epoch))
            else:
                resp = self._http.post("/query", params=self._params(epoch=epoch), data={"q": q})
        except httpx.TimeoutException as exc:
            raise StorageTimeout(f"InfluxDB query timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise StorageUnavailable(f"cannot reach InfluxDB at {self.config.url}: {exc}") from exc
        if resp.status_code >= 500:
            raise StorageUnavailable(f"InfluxDB answered {resp.status_code}: {_error_text(resp)}")
        if resp.status_code != 200:
            text = _error_text(resp)
            failed = DatabaseNotFound if resp.status_code == 404 and _database_missing(text) else QueryRejected
            raise failed(f"InfluxDB query failed ({resp.status_code}): {text}")
        results: list[dict[str, Any]] = resp.json().get("results", [])
        for result in results:
            if "error" in result:
                error = str(result["error"])
                refused = DatabaseNotFound if _database_missing(error) else QueryRejected
                raise refused(f"InfluxQL error: {error}")
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
        self.query(f"CREATE DATABASE {quote_ident(self.config.db)}")

    def databases(self) -> set[str]:
        """The names of the databases this login can see (``SHOW DATABASES``)."""
        results = self.query("SHOW DATABASES")
        return {row[0] for series in results[0].get("series", []) for row in series.get("values", [])}


def _database_missing(message: str) -> bool:
    """InfluxDB's words for a database that does not exist (1.x: ``database not found: "x"``; 2.x's v1 API too)."""
    return "database not found" in message


def _error_text(resp: httpx.Response) -> str:
    return _error_message(resp.content, resp.reason_phrase)


def _error_message(body: bytes, reason: str) -> str:
    """InfluxDB's ``{"error": ...}`` text, else the start of the body, else the HTTP reason."""
    try:
        answer = json.loads(body)
        if isinstance(answer, dict) and "error" in answer:
            return str(answer["error"])
    except ValueError:
        pass
    return body.decode("utf-8", "replace").strip()[:500] or reason


def default_gzip_level(url: str) -> int:
    """Compress writes (level 1) unless ``url`` names this machine (a loopback address or ``localhost``)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return 0
    try:
        return 0 if ipaddress.ip_address(host).is_loopback else 1
    except ValueError:  # a name: it may resolve anywhere
        return 1


def _through_proxy(url: str) -> bool:
    """Whether the environment's proxy settings apply to ``url`` (as httpx, which follows them, would decide)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")  # NO_PROXY


class _WritePool:
    """Kept-alive ``http.client`` connections to one InfluxDB, each used by one thread at a time."""

    def __init__(self, url: str, headers: dict[str, str], timeout_s: float, keep: int = 4) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._headers = headers
        self._timeout_s = timeout_s
        self._keep = keep
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=min(3.0, self._timeout_s))  # the connect timeout
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(self._timeout_s)  # then each read and write
        return conn

    def post(self, path: str, params: dict[str, str], body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """POST and read the whole answer: (status, reason, body). A kept-alive connection the server closed
        meanwhile is replaced once; every other failure is raised (``TimeoutError``, ``OSError``,
        ``http.client.HTTPException``)."""
        target = f"{self._prefix}{path}?{urlencode(params)}"
        all_headers = {**self._headers, **headers}

        def send(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
            conn.request("POST", target, body, all_headers)
            return conn.getresponse()

        with self._lock:
            reused = self._idle.pop() if self._idle else None
        conn = reused or self._connect()
        try:
            try:
                resp = send(conn)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if reused is None:
                    raise
                conn.close()  # closed by the server while idle: once more on a new connection
                conn = self._connect()
                resp = send(conn)
            answer = resp.read()
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            self._release(conn)
        return resp.status, resp.reason, answer

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
