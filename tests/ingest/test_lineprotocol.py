"""The line-protocol encoder: exact escaping, checked by round trips through the real InfluxDB."""

from __future__ import annotations

import math

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devices.readings import Reading
from ingest.lineprotocol import encode_reading
from placesense.tools.localstack.influxdb import InfluxDB
from tests.helpers import influx_query

# Everything a tag value can faithfully carry: any printable text, including the characters line protocol
# escapes (space, comma, equals sign, quotes, backslashes) and non-ASCII letters.
tag_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")) | st.sampled_from(' ,="\\\''),
    min_size=1,
    max_size=24,
).filter(lambda s: s.strip() == s and s != "" and not s.endswith("\\"))
values = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _reading(device: str, subject: str, room: str, temperature: float, ts: int) -> Reading:
    return Reading(
        domain="home", device_id=device, subject=subject, room=room, ts_ms=ts,
        metrics={"temperature_c": temperature, "motion": 1.0}, battery_pct=55.5, seq=2**40, source="canonical",
    )


def test_known_escapes() -> None:
    line = encode_reading(_reading("dev 1,a=b", "h\\x", 'liv"ing', 20.25, 1_700_000_000_000))
    assert line == (
        'home,device=dev\\ 1\\,a\\=b,room=liv"ing,source=canonical,subject=h\\x '
        "motion=1.0,temperature_c=20.25,battery_pct=55.5,seq=1099511627776i 1700000000000"
    )


def test_control_characters_are_refused_not_mangled() -> None:
    with pytest.raises(ValueError, match="control character"):
        encode_reading(_reading("dev\n1", "h", "kitchen", 1.0, 1))


def test_a_trailing_backslash_is_refused_because_influxdb_cannot_read_it_back() -> None:
    with pytest.raises(ValueError, match="backslash"):
        encode_reading(_reading("ends\\", "h", "kitchen", 1.0, 1))


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_reading(_reading("d", "h", "kitchen", math.nan, 1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(device=tag_text, subject=tag_text, room=tag_text, temperature=values)
@example(device="a\\,b", subject="x\\ y", room="mid\\\\dle", temperature=-0.0)
@example(device="Ysbyty Maelor, Ward 3", subject="h=1", room='"quoted"', temperature=1e-300)
def test_any_reading_round_trips_through_influxdb(
    influx: InfluxDB, influx_db: str, device: str, subject: str, room: str, temperature: float
) -> None:
    httpx.post(f"{influx.url}/query", data={"q": f'CREATE DATABASE "{influx_db}"'}).raise_for_status()
    httpx.post(f"{influx.url}/query", params={"db": influx_db}, data={"q": "DROP MEASUREMENT home"})
    line = encode_reading(_reading(device, subject, room, temperature, 1_700_000_000_123))
    resp = httpx.post(f"{influx.url}/write", params={"db": influx_db, "precision": "ms"}, content=line.encode())
    assert resp.status_code == 204, (line, resp.text)
    series = influx_query(influx.url, influx_db, "SELECT * FROM home")
    assert len(series) == 1 and len(series[0]["values"]) == 1, line
    row = dict(zip(series[0]["columns"], series[0]["values"][0], strict=True))
    # InfluxDB's JSON prints integral floats without a decimal point; compare the numbers as floats.
    assert float(row.pop("temperature_c")) == temperature
    assert row == {
        "time": 1_700_000_000_123, "device": device, "subject": subject, "room": room, "source": "canonical",
        "motion": 1.0, "battery_pct": 55.5, "seq": 2**40,
    }
