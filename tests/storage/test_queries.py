"""The storage room's queries: quoting, and the typed rows each query function returns from the real InfluxDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from placesense.storage import erasure
from placesense.storage.errors import DatabaseNotFound
from placesense.storage.influx import InfluxClient, InfluxConfig
from placesense.storage.influxql import quote_ident, quote_string
from placesense.storage.readings import (
    HourActivity,
    StoredRow,
    activity_by_hour,
    device_rows,
    device_rows_query,
    newest_values,
)
from placesense.tools.localstack.influxdb import InfluxDB

HOUR_MS = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS  # on the hour


def test_influxql_quoting() -> None:
    assert quote_ident('we"ird\\') == '"we\\"ird\\\\"'
    assert quote_string("it's\\") == "'it\\'s\\\\'"
    q = device_rows_query("soil", "bed-01-soil", "bed-01", "soil_moisture_pct", 1000, 2000, 11)
    assert q == ('SELECT "soil_moisture_pct" FROM "soil" WHERE "device" = \'bed-01-soil\' '
                 "AND \"subject\" = 'bed-01' AND time >= 1000ms AND time < 2000ms ORDER BY time ASC LIMIT 11")


@pytest.fixture
def client(influx: InfluxDB, influx_db: str) -> Iterator[InfluxClient]:
    client = InfluxClient(InfluxConfig(influx.url, influx_db, gzip_level=0))
    yield client
    client.close()


def _store(client: InfluxClient, *lines: str) -> None:
    client.ensure_database()
    client.write("\n".join(lines).encode())


def test_reads_of_a_database_not_created_yet_say_so_by_type(client: InfluxClient) -> None:
    with pytest.raises(DatabaseNotFound):
        device_rows(client, "soil", "bed-01-soil", "bed-01", None, T0, T0 + HOUR_MS, 10)
    with pytest.raises(DatabaseNotFound):
        activity_by_hour(client, "h-0001", ("motion",), "power_w", T0, T0 + HOUR_MS)


def test_device_rows_are_the_devices_numeric_fields_under_its_subject_oldest_first(client: InfluxClient) -> None:
    _store(
        client,
        f"soil,device=bed-01-soil,subject=bed-01 soil_moisture_pct=31.5,battery_pct=90i,seq=7i {T0 + 2000}",
        f"soil,device=bed-01-soil,subject=bed-01 soil_moisture_pct=30.5 {T0 + 1000}",
        f"soil,device=bed-01-soil,subject=bed-02 soil_moisture_pct=12 {T0 + 1500}",  # recorded for another bed
        f"soil,device=other,subject=bed-01 soil_moisture_pct=50 {T0 + 1200}",
    )
    rows = device_rows(client, "soil", "bed-01-soil", "bed-01", None, T0, T0 + HOUR_MS, 10)
    assert rows == [
        StoredRow(T0 + 1000, {"soil_moisture_pct": 30.5}),
        StoredRow(T0 + 2000, {"soil_moisture_pct": 31.5, "battery_pct": 90.0, "seq": 7.0}),
    ]
    one = device_rows(client, "soil", "bed-01-soil", "bed-01", "battery_pct", T0, T0 + HOUR_MS, 1)
    assert one == [StoredRow(T0 + 2000, {"battery_pct": 90.0})]  # only the points that carry the metric


def test_activity_is_summed_per_room_and_hour(client: InfluxClient) -> None:
    _store(
        client,
        f"home,device=pir-k,subject=h-0001,room=kitchen motion=1 {T0 + 1000}",
        f"home,device=pir-k,subject=h-0001,room=kitchen motion=1 {T0 + 2000}",
        f"home,device=plug,subject=h-0001,room=kitchen power_w=1800 {T0 + 3000}",
        f"home,device=door,subject=h-0001 door_open=1 {T0 + HOUR_MS + 5}",
        f"home,device=pir-x,subject=h-0002,room=kitchen motion=1 {T0 + 1000}",
    )
    found = activity_by_hour(client, "h-0001", ("motion", "door_open"), "power_w", T0, T0 + 2 * HOUR_MS)
    assert sorted(found, key=lambda a: (a.hour_ms, a.room)) == [
        HourActivity(T0, "kitchen", {"motion": 2.0, "power_w": 1800.0}),
        HourActivity(T0 + HOUR_MS, "other", {"door_open": 1.0}),
    ]


def test_newest_values_per_device_across_domains(client: InfluxClient) -> None:
    _store(
        client,
        f"soil,device=bed-01-soil,subject=bed-01 rssi_dbm=-110,snr_db=2.5 {T0 + 1000}",
        f"soil,device=bed-01-soil,subject=bed-01 rssi_dbm=-100 {T0 + 2000}",
        f"home,device=pir-k,subject=h-0001 link_quality=120 {T0 + 1000}",
        f"home,device=pir-old,subject=h-0001 link_quality=80 {T0 - 1000}",  # before the window
    )
    assert newest_values(client, ("rssi_dbm", "snr_db", "link_quality"), T0) == {
        "bed-01-soil": {"rssi_dbm": -100.0, "snr_db": 2.5},
        "pir-k": {"link_quality": 120.0},
    }


def test_a_homes_points_are_found_counted_and_erased_and_old_points_expire(client: InfluxClient) -> None:
    _store(
        client,
        f"home,device=pir-k,subject=h-0001,room=kitchen motion=1,seq=1i {T0 + 1000}",
        f"home,device=gone,subject=h-0001 door_open=0,seq=1i {T0 + 2000}",
        f"home,device=pir-x,subject=h-0002 motion=1,seq=1i {T0 + 1000}",
        f"soil,device=bed-01-soil,subject=bed-01 soil_moisture_pct=30 {T0 - 10 * HOUR_MS}",
        f"soil,device=bed-01-soil,subject=bed-01 soil_moisture_pct=31 {T0}",
    )
    assert erasure.home_device_ids(client, "h-0001") == {"pir-k", "gone"}
    points = erasure.home_points(client, "h-0001")
    assert sorted(points) == ["home"]
    assert {(p["time"], p["device"]) for p in points["home"]} == {(T0 + 1000, "pir-k"), (T0 + 2000, "gone")}
    assert all(None not in p.values() for p in points["home"])
    assert erasure.count_home_points(client, "h-0001") == 2  # the largest count of a field (seq: every point has it)
    erasure.erase_home(client, "h-0001")
    assert erasure.count_home_points(client, "h-0001") == 0
    assert erasure.count_home_points(client, "h-0002") == 1

    assert erasure.count_points_before(client, "soil", T0) == 1
    erasure.delete_points_before(client, "soil", T0)
    assert erasure.count_points_before(client, "soil", T0 + 1) == 1  # the newer one stays
