"""Sensor.Community HTTP push bodies (SDS011 + BME280, DHT22, other particle sensors)."""

from __future__ import annotations

from typing import Any

import pytest

from placesense.basics.errors import DecodeError
from tests.devices.support import NOW_MS, air_device, decode_sensor_community

AIR = air_device()


def _body(*values: tuple[str, str], chip: object = "1520847") -> dict[str, Any]:
    return {
        "esp8266id": chip,
        "software_version": "NRZ-2020-133",
        "sensordatavalues": [{"value_type": t, "value": v} for t, v in values],
    }


def test_sds011_and_bme280() -> None:
    body = _body(
        ("SDS_P1", "17.43"),
        ("SDS_P2", "8.90"),
        ("BME280_temperature", "11.62"),
        ("BME280_humidity", "78.35"),
        ("BME280_pressure", "100934.56"),
        ("samples", "5133822"),
        ("min_micro", "28"),
        ("max_micro", "20079"),
        ("interval", "145000"),
        ("signal", "-71"),
    )
    reading = decode_sensor_community(body, AIR)
    assert reading.metrics == pytest.approx(
        {
            "pm10_ugm3": 17.43,
            "pm2_5_ugm3": 8.9,
            "temperature_c": 11.62,
            "humidity_pct": 78.35,
            "pressure_hpa": 1009.3456,
        }
    )
    assert reading.ts_ms == NOW_MS  # no clock in the body
    assert reading.domain == "air"
    assert reading.subject == "mold-road"


def test_bare_names_numeric_chip_id_and_other_particle_sensors() -> None:
    body = _body(
        ("PMS_P0", "3"), ("PMS_P1", "12"), ("PMS_P2", "9"), ("temperature", "9.80"), ("humidity", "91.10"), chip=1520847
    )
    reading = decode_sensor_community(body, AIR, chip="1520847")
    assert reading.metrics == {"pm10_ugm3": 12.0, "pm2_5_ugm3": 9.0, "temperature_c": 9.8, "humidity_pct": 91.1}


def test_first_sensor_wins_when_two_report_the_same_quantity() -> None:
    body = _body(("P1", "20.0"), ("SPS30_P1", "99.0"), ("DHT22_temperature", "12.0"), ("BME280_temperature", "13"))
    assert decode_sensor_community(body, AIR).metrics == {"pm10_ugm3": 20.0, "temperature_c": 12.0}


def test_another_chip_is_the_wrong_device() -> None:
    with pytest.raises(DecodeError) as err:
        decode_sensor_community(_body(("SDS_P1", "1"), chip="999"), AIR)
    assert err.value.kind == "wrong_device"
    assert "'999'" in err.value.reason


@pytest.mark.parametrize(
    "body, kind, words",
    [
        (_body(("SDS_P1", "nan")), "not_finite", "SDS_P1"),
        (_body(("SDS_P1", "Infinity")), "not_finite", "SDS_P1"),
        (_body(("SDS_P2", "1e999")), "not_finite", "SDS_P2"),
        (_body(("SDS_P2", "n/a")), "wrong_type", "SDS_P2 must be a number"),
        (_body(("SDS_P2", "-4.0")), "out_of_range", "pm2_5_ugm3"),
        (_body(("SDS_P1", "12345678")), "out_of_range", "pm10_ugm3"),
        (_body(("BME280_pressure", "1013")), "out_of_range", "pressure_hpa"),  # sent in hPa by mistake
        (_body(("signal", "-70")), "empty", "no metrics"),
        ({"esp8266id": "1520847", "sensordatavalues": "SDS_P1=3"}, "wrong_type", "list"),
        ({"esp8266id": "1520847", "sensordatavalues": [["SDS_P1", "3"]]}, "wrong_type", "sensordatavalues[0]"),
        ({"esp8266id": "1520847", "sensordatavalues": [{"value_type": "SDS_P1"}]}, "missing_field", "no 'value'"),
        ({"software_version": "x", "sensordatavalues": []}, "missing_field", "chip id"),
        (_body(("SDS_P1", "3"), chip=True), "wrong_type", "chip id"),
        (_body(*[("SDS_P1", "3")] * 65), "oversized", "65 entries"),
    ],
)
def test_bad_bodies(body: dict[str, Any], kind: str, words: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_sensor_community(body, AIR)
    assert err.value.kind == kind
    assert words in err.value.reason
