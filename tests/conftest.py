"""Test set-up: a real mosquitto, a real InfluxDB and (when a test asks) a real PostgreSQL, started once per run
on free loopback ports.

Each test gets its own InfluxDB database, relational database and MQTT topic prefix, so tests never see each
other's data. Tests that restart or kill a server ask for their own instance (``own_mosquitto``, ``own_influx``).

``database_url`` is a SQLite file by default. A test, module or class marked ``both_databases`` runs twice, on
SQLite and on PostgreSQL (``[sqlite]``/``[postgresql]`` in its id): each PostgreSQL run gets a fresh database on
the session's ``postgres`` server, dropped afterwards. Tests that need PostgreSQL alone ask for
``postgres_url``.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.postgres import PostgreSQL
from tests.helpers import eventually, serve_env, stack_settings


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    server = InfluxDB(tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "own-mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def own_influx(tmp_path: Path) -> Iterator[InfluxDB]:
    server = InfluxDB(tmp_path / "own-influxdb")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def unique() -> str:
    """A short id unique to this test, for topic prefixes, client ids and database names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def influx_db(influx: InfluxDB, unique: str) -> Iterator[str]:
    name = f"t_{unique}"
    yield name
    httpx.post(f"{influx.url}/query", data={"q": f'DROP DATABASE "{name}"'}, timeout=30)


DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("database_url", DATABASES, indirect=True)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgreSQL]:
    server = PostgreSQL(tmp_path_factory.mktemp("postgresql"))
    server.start()
    yield server
    server.remove()


@pytest.fixture
def postgres_url(postgres: PostgreSQL, unique: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test."""
    name = f"t_{unique}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The relational database of this test: SQLite, or PostgreSQL for the ``[postgresql]`` run of a test marked
    ``both_databases``."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'placesense.db'}"


@pytest.fixture
def settings_for(
    tmp_path: Path, unique: str, database_url: str
) -> Callable[..., Settings]:
    def build(broker: Mosquitto, influx: InfluxDB, db: str, **overrides: Any) -> Settings:
        return stack_settings(broker, influx, db, tmp_path, unique, **{"database_url": database_url, **overrides})

    return build


@pytest.fixture
def publisher(mosquitto: Mosquitto, unique: str) -> Iterator[Callable[..., None]]:
    """Publish QoS 1 messages and wait until the broker has them all."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{unique}")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()

    def publish(topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    yield publish
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real ``placesense serve`` processes (settings as ``tests.helpers.serve_settings`` gives them); each
    is ready once its /healthz says the broker is connected. Those still running are stopped afterwards."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(settings: dict[str, str], own_session: bool = False) -> subprocess.Popen[bytes]:
        log_path = tmp_path / f"serve-{len(procs)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "placesense.cli", "serve"], env=serve_env(settings), stdout=log,
                stderr=subprocess.STDOUT, start_new_session=own_session,
            )
        procs.append(proc)
        url = f"http://{settings['api_bind']}/healthz"

        def ready() -> bool:
            assert proc.poll() is None, f"placesense serve exited: {log_path.read_text()[-3000:]}"
            try:
                health = httpx.get(url, timeout=1).json()
                return bool(health["mqtt_connected"] or health.get("role") == "standby")  # a standby ingests nothing
            except httpx.HTTPError:
                return False

        eventually(ready, 60, "placesense serve to connect")
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
