"""Payload codecs: known frames decode to the documented values, bad frames fail with a plain reason.

The byte strings are written by hand from the vendors' published layouts (see each codec's docstring); the
vendors' own examples run in ``tests/devices/vendor``.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from devices.codecs import (
    CODECS,
    battery_pct_from_volts,
    codec_for,
    dragino_soil,
    metrics_from_frame,
    metrics_from_vendor_object,
    milesight,
    volts_from_battery_pct,
)
from placesense.basics.errors import DecodeError


def test_model_table_names_every_codec() -> None:
    assert set(CODECS) == {
        "dragino-lse01", "dragino-se01-lb", "dragino-lht65n", "milesight-em500-smtc", "milesight-am103",
        "milesight-am307", "milesight-ws301", "elsys-ers",
    }
    assert codec_for("Dragino-SE01-LB") is CODECS["dragino-se01-lb"]
    assert codec_for(None) is None
    assert codec_for("acme-unknown") is None


# ------------------------------------------------------------------------------------------------- Dragino


def test_dragino_calibrated_frame() -> None:
    # 3300 mV, no DS18B20, 26.00 %, 22.00 °C, 300 µS/cm, probe detected
    assert dragino_soil.decode(bytes.fromhex("0ce4 0000 0a28 0898 012c 10")).metrics == {
        "battery_v": 3.3,
        "battery_pct": 70.0,
        "soil_moisture_pct": 26.0,
        "soil_temperature_c": 22.0,
        "soil_conductivity_us_cm": 300.0,
    }


def test_dragino_frost_and_flag_bits_in_battery_word() -> None:
    # top two bits of the battery word are flags; soil at -1.50 °C is two's complement 0xff6a
    metrics = dragino_soil.decode(bytes.fromhex("cdac 00e1 0500 ff6a 0000 10")).metrics
    assert metrics["battery_v"] == 3.5
    assert metrics["soil_temperature_c"] == -1.5
    assert metrics["soil_moisture_pct"] == 12.8
    assert metrics["battery_pct"] == pytest.approx(90.0)


@pytest.mark.parametrize(
    "flags, kind",
    [("00", "probe_absent"), ("90", "raw_mode"), ("80", "probe_absent")],
    ids=["probe-missing", "raw-mode", "raw-mode-no-probe"],
)
def test_dragino_frames_without_trustworthy_soil_values_keep_only_the_battery(flags: str, kind: str) -> None:
    # a missing probe reads 0 %: storing that would send a crew out to water a bed that may be wet; and saying
    # so in a dead letter per soil value tells the crew the probe is the problem, not the soil
    values = dragino_soil.decode(bytes.fromhex(f"0e10 0000 0000 0000 0000 {flags}"))
    assert values.metrics == {"battery_v": 3.6, "battery_pct": 100.0}
    assert {(r.metric, r.kind) for r in values.refused} == {(m, kind) for m in dragino_soil.SOIL_METRICS}


def test_dragino_status_frame_carries_the_battery() -> None:
    # fPort 5: model 0x26 (SE01-LB), firmware 1.0.0, EU868, no sub-band, 3.062 V
    values = dragino_soil.decode(bytes.fromhex("26 01 00 01 ff 0bf6"), 5)
    assert values.metrics == {"battery_v": 3.062, "battery_pct": pytest.approx(46.2)}


def test_dragino_datalog_is_refused_with_its_reason() -> None:
    with pytest.raises(DecodeError, match="does not backfill") as err:
        dragino_soil.decode(bytes(11), 3)
    assert err.value.kind == "history_record"


@pytest.mark.parametrize("size", [0, 1, 10, 12, 22])
def test_dragino_wrong_length_is_refused(size: int) -> None:
    with pytest.raises(DecodeError, match=r"11 bytes; this one is") as err:
        dragino_soil.decode(bytes(size))
    assert err.value.kind == "bad_bytes"


def test_dragino_encode_is_the_inverse() -> None:
    frame = dragino_soil.encode(
        {"soil_moisture_pct": 26.0, "soil_temperature_c": 22.0, "soil_conductivity_us_cm": 300, "battery_v": 3.3}
    )
    assert frame.hex() == "0ce400000a280898012c10"


def test_dragino_encode_takes_percent_when_no_volts() -> None:
    frame = dragino_soil.encode({"soil_moisture_pct": 30, "soil_temperature_c": 10, "battery_pct": 50})
    assert dragino_soil.decode(frame).metrics["battery_v"] == 3.1
    assert dragino_soil.decode(frame).metrics["soil_conductivity_us_cm"] == 0


@pytest.mark.parametrize(
    "metrics, reason",
    [
        ({"soil_temperature_c": 1, "battery_v": 3.6}, "needs soil_moisture_pct"),
        ({"soil_moisture_pct": 1, "soil_temperature_c": 1}, "needs battery_v or battery_pct"),
        ({"soil_moisture_pct": 1, "soil_temperature_c": 1, "battery_v": 3.6, "pm10_ugm3": 3}, "cannot carry"),
        ({"soil_moisture_pct": 1000, "soil_temperature_c": 1, "battery_v": 3.6}, "does not fit"),
    ],
)
def test_dragino_encode_refuses_what_the_frame_cannot_hold(metrics: dict[str, float], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        dragino_soil.encode(metrics)


# ------------------------------------------------------------------------------------------------- Milesight


def test_milesight_old_firmware_frame() -> None:
    # battery 92 %, -1.0 °C, moisture 0x73 half-percents = 57.5 %, EC 240 µS/cm
    frame = bytes.fromhex("01755c 0367f6ff 046873 057ff000")
    assert milesight.EM500_SMTC.decode(frame, 85).metrics == {
        "battery_pct": 92.0,
        "soil_temperature_c": -1.0,
        "soil_moisture_pct": 57.5,
        "soil_conductivity_us_cm": 240.0,
    }


def test_milesight_new_firmware_moisture_and_device_info_records() -> None:
    info = "ff0101 ff090110 ff0a0102 ff0f00 ff16" + "6136d19056380000" + "ff0b01"
    frame = bytes.fromhex(info + "0367d200 04ca2909 057f2c01")
    assert milesight.EM500_SMTC.decode(frame, 85).metrics == {
        "soil_temperature_c": 21.0,
        "soil_moisture_pct": 23.45,
        "soil_conductivity_us_cm": 300.0,
    }


def test_milesight_temperature_alarm_record_carries_the_temperature() -> None:
    assert milesight.EM500_SMTC.decode(bytes.fromhex("83d7 2c01 3200 00"), 85).metrics == {"soil_temperature_c": 30.0}


@pytest.mark.parametrize("failed", ["ffff", "fdff"], ids=["collection-failed", "out-of-range"])
def test_milesight_probe_failure_refuses_the_metric(failed: str) -> None:
    values = milesight.EM500_SMTC.decode(bytes.fromhex(f"017550 0367{failed} 04ca{failed} 057f{failed}"), 85)
    assert values.metrics == {"battery_pct": 80.0}
    # with moisture and EC failed, the same word in the temperature is the failure marker too, not frost
    assert {(r.metric, r.kind) for r in values.refused} == {
        ("soil_moisture_pct", "no_value"), ("soil_conductivity_us_cm", "no_value"), ("soil_temperature_c", "no_value")
    }


def test_milesight_temperature_just_below_zero_is_a_temperature() -> None:
    values = milesight.EM500_SMTC.decode(bytes.fromhex("0367ffff 0367fdff 04ca2909"), 85)
    assert values.metrics == {"soil_temperature_c": -0.3, "soil_moisture_pct": 23.45}
    assert not values.refused


def test_milesight_history_records_are_refused_beside_live_values() -> None:
    values = milesight.EM500_SMTC.decode(bytes.fromhex("017564 20ce" + "00" * 10), 85)
    assert values.metrics == {"battery_pct": 100.0}
    assert [(r.metric, r.kind) for r in values.refused] == [("history", "history_record")]


@pytest.mark.parametrize(
    "hex_frame, reason",
    [
        ("", "empty"),
        ("01", "ends inside a record header"),
        ("0175", "needs 1 bytes"),
        ("0367d2", "needs 2 bytes"),
        ("017564 0799 00", "unknown Milesight record 0x07/0x99 at byte 3"),
    ],
)
def test_milesight_bad_frames(hex_frame: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as err:
        milesight.EM500_SMTC.decode(bytes.fromhex(hex_frame), 85)
    assert err.value.kind == "bad_bytes"


def test_milesight_encode_is_the_inverse_and_leaves_out_absent_channels() -> None:
    assert milesight.EM500_SMTC.encode({"battery_pct": 92, "soil_moisture_pct": 23.45}).hex() == "01755c04ca2909"
    with pytest.raises(ValueError, match="battery is in percent"):
        milesight.EM500_SMTC.encode({"battery_v": 3.6})


# ------------------------------------------------------------------------------------------------- shared


def test_dragino_battery_curve_puts_the_vendors_replace_point_at_critical() -> None:
    # Dragino: replace below 2.7 V; its manuals' example reading, 2.885 V, is a working battery
    assert battery_pct_from_volts(2.7) == 10
    assert battery_pct_from_volts(2.69) < 10
    assert 20 < battery_pct_from_volts(2.885) < 30
    assert battery_pct_from_volts(2.5) == 0
    assert battery_pct_from_volts(3.6) == 100
    assert battery_pct_from_volts(2.1) == 0
    assert battery_pct_from_volts(3.7) == 100
    assert volts_from_battery_pct(55) == pytest.approx(3.15)
    for pct in (0, 5, 10, 33.3, 100):
        assert battery_pct_from_volts(volts_from_battery_pct(pct)) == pytest.approx(pct, abs=0.05)


def test_frame_of_a_model_without_codec_is_refused_with_the_known_models() -> None:
    with pytest.raises(DecodeError, match=r"has no payload codec.*dragino-lse01") as err:
        metrics_from_frame("acme-soil-9", b"\x01", 2)
    assert err.value.kind == "no_codec"


def test_frame_on_another_port_is_not_a_measurement() -> None:
    with pytest.raises(DecodeError, match="fPort 42 is not a frame of a Dragino soil sensor") as err:
        metrics_from_frame("dragino-se01-lb", bytes(7), 42)
    assert err.value.kind == "unsupported_port"


def test_vendor_object_renames_and_ignores() -> None:
    lse01 = {
        "Bat": 3.42,
        "TempC_DS18B20": "327.6",
        "water_SOIL": "31.07",
        "temp_SOIL": "9.81",
        "conduct_SOIL": 187,
        "Sensor_flag": 1,
        "Interrupt_flag": 0,
    }
    assert metrics_from_vendor_object("dragino-lse01", lse01, "decoded_payload").metrics == {
        "battery_v": 3.42,
        "battery_pct": pytest.approx(82.0),
        "soil_moisture_pct": 31.07,
        "soil_temperature_c": 9.81,
        "soil_conductivity_us_cm": 187.0,
    }
    # no codec: our own names still pass, anything else is ignored, null means "not measured"
    values = metrics_from_vendor_object(None, {"soil_moisture_pct": 40, "foo": 1, "battery_v": None}, "o")
    assert values.metrics == {"soil_moisture_pct": 40.0}
    assert [(r.metric, r.kind) for r in values.refused] == [("battery_v", "no_value")]


@pytest.mark.parametrize("value", ["wet", True, [1], {"v": 1}, "nan", "inf", "1e999"])
def test_vendor_object_refuses_values_that_are_not_finite_numbers(value: object) -> None:
    values = metrics_from_vendor_object("milesight-em500-smtc", {"moisture": value, "battery": 90}, "decoded_payload")
    assert values.metrics == {"battery_pct": 90.0}
    [refused] = values.refused
    assert refused.metric == "soil_moisture_pct" and "decoded_payload.moisture" in refused.reason
    assert refused.kind in ("wrong_type", "not_finite")


@settings(max_examples=200, deadline=None)
@given(frame=st.binary(max_size=40), model=st.sampled_from(sorted(CODECS)))
def test_codecs_raise_only_decode_errors_on_arbitrary_bytes(frame: bytes, model: str) -> None:
    try:
        values = CODECS[model].decode(frame, None)
    except DecodeError as exc:
        assert exc.reason
    else:
        assert all(isinstance(v, float) for v in values.metrics.values())
        assert all(r.reason and r.kind for r in values.refused)


HALF_STEP_FLOAT_ERROR = 1e-9


@settings(max_examples=100, deadline=None)
@given(
    moisture=st.floats(0, 100),
    temperature=st.floats(-40, 85),
    conductivity=st.integers(0, 20_000),
    battery=st.floats(0, 100),
    model=st.sampled_from(["dragino-lse01", "dragino-se01-lb", "milesight-em500-smtc"]),
)
@example(moisture=0.0, temperature=1.25, conductivity=0, battery=0.0, model="milesight-em500-smtc")  # halfway
def test_codec_round_trip_within_resolution(
    moisture: float, temperature: float, conductivity: int, battery: float, model: str
) -> None:
    codec = CODECS[model]
    sent = {
        "soil_moisture_pct": moisture,
        "soil_temperature_c": temperature,
        "soil_conductivity_us_cm": conductivity,
        "battery_pct": battery,
    }
    back = codec.decode(codec.encode(sent), None).metrics
    # Within half a step of each field's resolution (0.01 % and 0.1 °C). A value exactly halfway (1.25 °C) is off
    # by exactly half a step, which decimal steps such as 1.2 cannot hold exactly in binary: allow for that.
    assert back["soil_moisture_pct"] == pytest.approx(moisture, abs=0.005 + HALF_STEP_FLOAT_ERROR)
    assert back["soil_temperature_c"] == pytest.approx(temperature, abs=0.05 + HALF_STEP_FLOAT_ERROR)
    assert back["soil_conductivity_us_cm"] == conductivity
    assert back["battery_pct"] == pytest.approx(battery, abs=0.55)
