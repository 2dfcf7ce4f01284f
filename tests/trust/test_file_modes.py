"""Files that hold residents' data are private from the moment they exist: the SQLite database and its WAL, spool
segments, the saved learned state and their folders, written by a real service on a real broker. (Exports and the
audit export, over an existing wider file too: tests/trust/test_cli.py.)"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from devices.readings import Reading
from devices.registry import Registry
from ingest.journal import Journal
from placesense import evaluation_state
from placesense.evaluation_core import EvaluationCore, EvaluationSpec
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.process import free_port
from rules.config import RulesConfig
from tests.helpers import eventually


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def wide_umask() -> Iterator[None]:
    # The usual umask (022) gives new files 0644: what placesense once left its database and segments at.
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("wide_umask")
def test_database_spool_and_state_are_private(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, trust_registry: Registry, tmp_path: Path,
    settings_for: Callable[..., Settings], publisher: Callable[..., None],
) -> None:
    # InfluxDB unreachable, so readings go to the spool; a bad message makes a dead letter in SQLite.
    settings = settings_for(mosquitto, influx, influx_db, influx_url=f"http://127.0.0.1:{free_port()}",
                            influx_timeout_s=0.5, database_url=f"sqlite:///{tmp_path / 'db' / 'placesense.db'}")
    service = Service.build(settings, registry=trust_registry)
    service.start()
    try:
        assert service.pipeline.consumer.wait_connected(10)
        topic = f"{settings.topic_prefix}placesense/v1/home/h-0001-kitchen-pir/telemetry"
        publisher(topic, orjson.dumps({"ts": int(time.time() * 1000), "metrics": {"motion": 1}, "seq": 1}))
        publisher(topic, b"{not json")
        segments = eventually(lambda: list(settings.spool_dir.glob("*.lp")), what="a spooled segment")
        eventually(lambda: service.dead_letters.count() == 1, what="the dead letter")
        database = tmp_path / "db" / "placesense.db"
        wal = database.with_name("placesense.db-wal")
        assert wal.exists()
        for private in (database, wal, database.with_name("placesense.db-shm"), *segments):
            assert _mode(private) == 0o600, private
        for folder in (database.parent, settings.spool_dir, settings.state_dir):
            assert _mode(folder) == 0o700, folder
    finally:
        service.stop()


@pytest.mark.usefixtures("wide_umask")
def test_saved_evaluation_state_and_journal_are_private_and_an_existing_database_is_made_so(
    trust_registry: Registry, tmp_path: Path
) -> None:
    core = EvaluationCore(EvaluationSpec(trust_registry, RulesConfig(), "event", tmp_path / "state", 30))
    reading = Reading("home", "h-0001-kitchen-pir", "h-0001", "kitchen", 1_767_600_000_000, {"motion": 1.0})
    core.readings([tuple(reading)])
    assert core.save()
    assert _mode(evaluation_state.state_path(tmp_path / "state")) == 0o600 and _mode(tmp_path / "state") == 0o700
    journal = Journal(tmp_path / "state" / "journal")
    journal.append([reading])
    journal.close()
    assert _mode(tmp_path / "state" / "journal") == 0o700
    assert all(_mode(segment) == 0o600 for segment in journal.segments())
    # A database an older version left readable by all is made private when placesense opens it.
    from placesense.basics.db import make_engine

    old = tmp_path / "old.db"
    old.write_bytes(b"")
    old.chmod(0o644)
    make_engine(f"sqlite:///{old}").dispose()
    assert _mode(old) == 0o600
