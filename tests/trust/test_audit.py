"""The audit log on SQLite and PostgreSQL: admins' reads of residents' devices and every refused attempt are
written down, a flood of refusals cannot fill the disk, and the log stays append-only. Through the real API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy
from sqlalchemy.exc import DatabaseError

from api.app import create_app
from api.audit import REFUSALS_PER_MINUTE, api_audit
from devices.registry import Registry
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.api.conftest import REGISTRY, make_tokens, serve

pytestmark = pytest.mark.both_databases


@dataclass
class Api:
    service: Service
    base_url: str
    tokens: dict[str, str]

    def get(self, path: str, who: str | None, secret: str | None = None) -> httpx.Response:
        token = secret or (self.tokens[who] if who else None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.base_url + path, headers=headers, timeout=20)

    def rows(self) -> list[dict[str, object]]:
        with self.service.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sqlalchemy.select(api_audit).order_by(api_audit.c.id))]


@pytest.fixture
def api(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, settings_for: Callable[..., Settings]
) -> Iterator[Api]:
    service = Service.build(settings_for(mosquitto, influx, influx_db), registry=Registry.from_data(REGISTRY))
    service.start()
    secrets, tokens = make_tokens()
    server, base_url = serve(create_app(service, manage_lifecycle=False, tokens=tokens))
    yield Api(service, base_url, secrets)
    server.should_exit = True
    service.stop()


def test_admin_reads_of_residents_devices_are_audited(api: Api) -> None:
    # The devices list gives an admin residents' names: who looked is written down, as for a care team.
    assert api.get("/api/v1/devices", "admin").status_code == 200
    assert {(r["token_name"], r["action"], r["home_id"]) for r in api.rows()} == {
        ("ops-admin", "devices", "h-0001"), ("ops-admin", "devices", "h-0002")}


def test_refused_attempts_are_audited(api: Api) -> None:
    assert api.get("/api/v1/readings?device=h-0002-kitchen-pir", "care").status_code == 404  # another home's
    assert api.get("/api/v1/homes/h-0002/routine", "care").status_code == 404
    assert api.get("/api/v1/homes", "street").status_code == 403
    assert api.get("/api/v1/dead-letters", "display").status_code == 403
    assert api.get("/api/v1/homes/h-0001/activity", None).status_code == 401
    assert api.get("/api/v1/homes/h-0001/routine", None, secret="x" * 40).status_code == 401
    refused = [(r["token_name"], r["role"], r["action"], r["home_id"]) for r in api.rows()]
    assert refused == [
        ("north-care", "care", "refused.scope", "h-0002"),
        ("north-care", "care", "refused.scope", "h-0002"),
        ("parks-team", "street", "refused.role", ""),
        ("ops-wall", "display", "refused.role", ""),
        ("(no token)", "none", "refused.unauthenticated", "h-0001"),
        ("(unknown token)", "none", "refused.unauthenticated", "h-0001"),
    ]
    assert [r["detail"] for r in api.rows()][:2] == [
        "GET /api/v1/readings", "GET /api/v1/homes/h-0002/routine"]


def test_a_flood_of_refusals_is_counted_not_all_written(api: Api) -> None:
    sent = REFUSALS_PER_MINUTE + 40
    for _ in range(sent):
        assert api.get("/api/v1/homes", None, secret="y" * 40).status_code == 401
    written = [r for r in api.rows() if r["action"] == "refused.unauthenticated"]
    # At most a minute's rows (two if the run crossed into the next minute); every attempt counted.
    assert REFUSALS_PER_MINUTE <= len(written) <= 2 * REFUSALS_PER_MINUTE < sent + REFUSALS_PER_MINUTE
    assert any("only counted" in str(r["detail"]) for r in written)
    assert api.service.metrics.value("placesense_api_refused_total") == sent


def test_the_audit_log_refuses_to_be_rewritten(api: Api) -> None:
    assert api.get("/api/v1/homes", "care").status_code == 200
    engine = api.service.engine
    for statement in (sqlalchemy.update(api_audit).values(home_id="h-9999"), sqlalchemy.delete(api_audit)):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    if engine.dialect.name == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE api_audit")
    assert [r["action"] for r in api.rows()] == ["homes"]
