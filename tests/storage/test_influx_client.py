"""The InfluxDB client against the real InfluxDB: what is stored, and the type each failure is raised as."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from placesense.basics.errors import PermanentStorageError, RetryableStorageError
from placesense.storage.errors import (
    DatabaseNotFound,
    DataRejected,
    QueryRejected,
    StorageTimeout,
    StorageUnavailable,
)
from placesense.storage.influx import InfluxClient, InfluxConfig, default_gzip_level
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.process import free_port
from tests.helpers import influx_query


def _client(url: str, db: str, *, timeout_s: float = 5.0, gzip_level: int | None = 1) -> InfluxClient:
    return InfluxClient(InfluxConfig(url=url, db=db, timeout_s=timeout_s, gzip_level=gzip_level))


def _first_write_fails(client: InfluxClient, error: type[RetryableStorageError], match: str) -> None:
    """The client's first write raises ``error`` (a retryable one) matching ``match``; the client is closed after."""
    try:
        with pytest.raises(error, match=match):
            client.write(b"m,t=a v=1 1700000000000\n")
    finally:
        client.close()


def _count(influx: InfluxDB, db: str) -> int:
    series = influx_query(influx.url, db, 'SELECT count("v") FROM "m"')
    return int(series[0]["values"][0][1]) if series else 0


@pytest.mark.parametrize("gzip_level", [1, 0])
def test_writes_are_stored_on_kept_alive_connections(influx: InfluxDB, influx_db: str, gzip_level: int) -> None:
    client = _client(influx.url, influx_db, gzip_level=gzip_level)
    client.ensure_database()
    try:
        for n in range(50):
            client.write(f"m,t=a v={n} {1_700_000_000_000 + n}\n".encode())
        assert len(client._writes._idle) == 1  # one connection, given back after every write
    finally:
        client.close()
    assert _count(influx, influx_db) == 50


def test_a_refused_line_is_permanent_with_influxdbs_reason(influx: InfluxDB, influx_db: str) -> None:
    client = _client(influx.url, influx_db)
    client.ensure_database()
    try:
        client.write(b"m,t=a v=1 1700000000000\n")
        with pytest.raises(DataRejected, match="field type conflict") as refused:
            client.write(b'm,t=a v="text" 1700000000001\n')
        assert isinstance(refused.value, PermanentStorageError)
        client.write(b"m,t=a v=2 1700000000002\n")  # the connection is still good after a refusal
    finally:
        client.close()
    assert _count(influx, influx_db) == 2


def test_a_missing_database_is_retryable(influx: InfluxDB, influx_db: str) -> None:
    _first_write_fails(_client(influx.url, influx_db), DatabaseNotFound, "does not exist")


def test_nothing_listening_is_retryable() -> None:
    _first_write_fails(_client(f"http://127.0.0.1:{free_port()}", "nowhere"), StorageUnavailable,
                       "cannot reach InfluxDB")


def test_a_server_that_answers_nothing_times_out_as_retryable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts connections (the kernel does) but never answers
        _first_write_fails(_client(f"http://127.0.0.1:{listener.getsockname()[1]}", "silent", timeout_s=0.3),
                           StorageTimeout, "timed out")


def test_a_restarted_server_is_written_to_again(own_influx: InfluxDB, unique: str) -> None:
    db = f"t_{unique}"
    client = _client(own_influx.url, db)
    client.ensure_database()
    try:
        client.write(b"m,t=a v=1 1700000000000\n")
        own_influx.restart()  # the kept-alive connection is now closed at the server's end
        client.write(b"m,t=a v=2 1700000000001\n")
    finally:
        client.close()
    assert _count(own_influx, db) == 2


def test_a_query_on_a_missing_database_is_its_own_type(influx: InfluxDB, influx_db: str) -> None:
    client = _client(influx.url, influx_db)
    try:
        with pytest.raises(DatabaseNotFound, match="database not found"):
            client.series('SELECT * FROM "m"')
        assert influx_db not in client.databases()
        client.ensure_database()
        assert influx_db in client.databases()
        assert client.series('SELECT * FROM "m"') == []
    finally:
        client.close()


def test_a_query_influxdb_cannot_run_is_rejected_for_good(influx: InfluxDB, influx_db: str) -> None:
    client = _client(influx.url, influx_db)
    client.ensure_database()
    try:
        with pytest.raises(QueryRejected) as rejected:
            client.series("SELECT FROM WHERE")
        assert isinstance(rejected.value, PermanentStorageError)
    finally:
        client.close()


def test_a_query_to_nothing_listening_is_unavailable() -> None:
    client = _client(f"http://127.0.0.1:{free_port()}", "nowhere")
    try:
        with pytest.raises(StorageUnavailable, match="cannot reach InfluxDB"):
            client.series('SELECT * FROM "m"')
    finally:
        client.close()


class _ForwardProxy:
    """A plain-HTTP forward proxy on loopback: takes requests for absolute URLs and sends them on."""

    def __init__(self) -> None:
        seen: list[str]
        encodings: list[str | None]
        seen = self.seen = []
        encodings = self.encodings = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                seen.append(self.path)
                encodings.append(self.headers.get("Content-Encoding"))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "content-encoding")}
                answer = httpx.post(self.path, content=body, headers=headers, trust_env=False)
                self.send_response(answer.status_code)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def proxy() -> Iterator[_ForwardProxy]:
    server = _ForwardProxy()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _send_through(proxy: _ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the environment's plain-HTTP proxy at ``proxy`` and nothing else."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)


def test_writes_follow_the_environments_proxy(
    influx: InfluxDB, influx_db: str, proxy: _ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _send_through(proxy, monkeypatch)
    client = _client(influx.url, influx_db)
    try:
        client.ensure_database()
        client.write(b"m,t=a v=1 1700000000000\n")
    finally:
        client.close()
    assert any(path.startswith(f"{influx.url}/write?") for path in proxy.seen)
    assert _count(influx, influx_db) == 1


@pytest.mark.parametrize(
    ("url", "level"),
    [
        ("http://127.0.0.1:8086", 0),
        ("http://127.8.0.1:8086", 0),
        ("http://[::1]:8086", 0),
        ("http://localhost:8086", 0),
        ("https://LOCALHOST", 0),
        ("http://10.0.0.5:8086", 1),
        ("https://influx.council.example", 1),
        ("https://eu-central-1-1.aws.cloud2.influxdata.com", 1),
    ],
)
def test_writes_are_compressed_only_when_influxdb_is_on_another_machine(url: str, level: int) -> None:
    assert default_gzip_level(url) == level


@pytest.mark.parametrize(("gzip_level", "encoding"), [(None, None), (1, "gzip")])
def test_the_chosen_compression_is_what_influxdb_receives(
    influx: InfluxDB, influx_db: str, proxy: _ForwardProxy, monkeypatch: pytest.MonkeyPatch,
    gzip_level: int | None, encoding: str | None,
) -> None:
    _send_through(proxy, monkeypatch)  # the proxy sees the headers InfluxDB gets
    client = _client(influx.url, influx_db, gzip_level=gzip_level)
    try:
        client.ensure_database()
        client.write(b"m,t=a v=1 1700000000000\n")
    finally:
        client.close()
    writes = [enc for path, enc in zip(proxy.seen, proxy.encodings, strict=True) if "/write?" in path]
    assert writes == [encoding]
    assert _count(influx, influx_db) == 1
