"""What simulated firmware puts on the wire: a reading encoded in the device's source format.

Each format's encoder is the mirror of its decoder in ``devices/formats``: given a device from the registry and
a simulated measurement, it returns the MQTT topic and payload bytes a real device (or its network server)
would publish, shaped like the real thing (TTN's nanosecond timestamps, ChirpStack's ``deviceInfo``,
Zigbee2MQTT's state keys), so that ``decode_message(encode(...))`` gives back the same metrics and timestamp.
Identifiers a real network server invents (DevEUIs, UUIDs, gateway ids) are derived from the device id so
every run publishes the same bytes.

Encoders must not decide what is measured (the simulations do) and must not talk to a broker.
"""

from __future__ import annotations

import base64
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from devices.codecs import codec_for
from devices.registry import DeviceSpec
from devices.topics import canonical_topic


@dataclass(frozen=True, slots=True)
class SimMeasurement:
    """One simulated measurement in placesense's own metric names and units."""

    ts_ms: int
    metrics: Mapping[str, float | bool]
    battery_pct: float | None = None
    seq: int | None = None


def rfc3339(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_canonical(device: DeviceSpec, m: SimMeasurement, prefix: str = "") -> tuple[str, bytes]:
    body: dict[str, object] = {"ts": m.ts_ms, "metrics": dict(m.metrics)}
    if m.battery_pct is not None:
        body["battery_pct"] = round(m.battery_pct, 1)
    if m.seq is not None:
        body["seq"] = m.seq
    return canonical_topic(device.domain, device.id, "telemetry", prefix), orjson.dumps(body)


def rfc3339_ns(ts_ms: int, extra_ns: int = 0, utc_suffix: str = "Z") -> str:
    """RFC 3339 with nine fractional digits, as LoRaWAN network servers write; ``extra_ns`` < 1 ms."""
    seconds, millis = divmod(ts_ms, 1000)
    whole = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{millis * 1_000_000 + extra_ns % 1_000_000:09d}{utc_suffix}"


def _stable(text: str) -> int:
    """A number that depends only on ``text``: the simulator's stand-in for ids a server would invent."""
    return zlib.crc32(text.encode())


def _dev_eui(device: DeviceSpec) -> str:
    return f"70b3d57ed0{_stable(device.id) & 0xFFFFFF:06x}"


# ---------------------------------------------------------------------------------------------- Zigbee2MQTT

_Z2M_NUMERIC = {
    "temperature_c": "temperature",
    "humidity_pct": "humidity",
    "power_w": "power",
    "energy_kwh": "energy",
}


def encode_zigbee2mqtt(
    device: DeviceSpec, m: SimMeasurement, prefix: str = "", *, last_seen: str | None = "ISO_8601"
) -> tuple[str, bytes]:
    """Zigbee2MQTT's state message for ``m``.

    ``last_seen`` mirrors the bridge option of that name: ``"ISO_8601"`` (the simulator's default, so replays
    keep event time), ``"epoch"`` (milliseconds) or ``None`` (Zigbee2MQTT's own default: no device time).
    A help button publishes only when pressed, so ``help_pressed = 0`` sends no ``action``.
    """
    state: dict[str, object] = {}
    for name, value in m.metrics.items():
        if name in ("motion", "occupied"):
            state["occupancy"] = bool(value)
        elif name == "door_open":
            state["contact"] = not value  # contact true = magnet present = door closed
        elif name == "battery_v":
            state["voltage"] = round(float(value) * 1000)
        elif name == "link_quality":
            state["linkquality"] = round(float(value))
        elif name == "help_pressed":
            if value:
                state["action"] = "single"
        elif name in _Z2M_NUMERIC:
            state[_Z2M_NUMERIC[name]] = value
        else:
            raise ValueError(f"Zigbee2MQTT has no state key for metric {name!r}")
    if device.kind in ("plug", "kettle"):
        state.setdefault("state", "ON" if float(m.metrics.get("power_w", 0)) > 0 else "OFF")
    if m.battery_pct is not None:
        state["battery"] = round(m.battery_pct, 1)
    if last_seen == "ISO_8601":
        state["last_seen"] = rfc3339(m.ts_ms)
    elif last_seen == "epoch":
        state["last_seen"] = m.ts_ms
    elif last_seen is not None:
        raise ValueError(f"unknown last_seen option {last_seen!r}: use 'ISO_8601', 'epoch' or None")
    return f"{prefix}zigbee2mqtt/{device.source_key}", orjson.dumps(state)


# ---------------------------------------------------------------------------------------------- LoRaWAN

_RADIO = ("rssi_dbm", "snr_db")


def _lorawan_payload(
    device: DeviceSpec, m: SimMeasurement, decoded: bool | None
) -> tuple[int, bytes | None, dict[str, object] | None]:
    """(fPort, raw frame or None, decoded object or None) for a LoRaWAN uplink of ``m``."""
    measured: dict[str, float] = {name: float(value) for name, value in m.metrics.items() if name not in _RADIO}
    if m.battery_pct is not None:
        measured.setdefault("battery_pct", m.battery_pct)
    codec = codec_for(device.model)
    if codec is None:
        if decoded is False:
            raise ValueError(f"model {device.model!r} has no codec, so the uplink cannot be sent as raw bytes")
        return 1, None, dict(measured)  # a council-written payload formatter emitting our own names
    frame = codec.encode(measured)
    return codec.f_port, frame, codec.to_vendor_object(measured) if decoded else None


def _radio(device: DeviceSpec, m: SimMeasurement) -> tuple[float, float]:
    """RSSI and SNR: the measurement's own if simulated, else a steady value per device."""
    spread = _stable(device.id)
    rssi = float(m.metrics.get("rssi_dbm", -60 - spread % 50))
    snr = float(m.metrics.get("snr_db", round(9.5 - (spread >> 8) % 150 / 10, 1)))
    return rssi, snr


def encode_ttn(
    device: DeviceSpec,
    m: SimMeasurement,
    prefix: str = "",
    *,
    decoded: bool | None = None,
    application: str | None = None,
    tenant: str = "ttn",
) -> tuple[str, bytes]:
    """The Things Stack's uplink message for ``m``.

    A model with a codec sends the raw ``frm_payload`` only (no payload formatter set up), unless
    ``decoded=True`` asks for the vendor decoder's ``decoded_payload`` as well. A model without a codec sends
    ``decoded_payload`` in our own metric names.
    """
    f_port, frame, obj = _lorawan_payload(device, m, decoded)
    app = application or f"placesense-{device.domain}"
    device_id = device.source_key
    noise = _stable(f"{device.id}/{m.seq}/{m.ts_ms}")
    rssi, snr = _radio(device, m)
    uplink: dict[str, object] = {
        "session_key_id": base64.b64encode(noise.to_bytes(4, "big") * 4).decode(),
        "f_port": f_port,
    }
    if m.seq is not None:
        uplink["f_cnt"] = m.seq % 2**32
    if frame is not None:
        uplink["frm_payload"] = base64.b64encode(frame).decode()
    if obj is not None:
        uplink["decoded_payload"] = obj
    uplink["rx_metadata"] = [
        {
            "gateway_ids": {"gateway_id": "placesense-gw-1", "eui": "B827EBFFFE000001"},
            "time": rfc3339_ns(m.ts_ms - 40, noise),
            "timestamp": noise,
            "rssi": rssi,
            "channel_rssi": rssi,
            "snr": snr,
            "uplink_token": base64.b64encode(f"gw-1/{noise}".encode()).decode(),
            "received_at": rfc3339_ns(m.ts_ms - 20, noise),
        }
    ]
    uplink["settings"] = {
        "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9, "coding_rate": "4/5"}},
        "frequency": "868100000",
        "timestamp": noise,
    }
    uplink["received_at"] = rfc3339_ns(m.ts_ms, noise)
    uplink["consumed_airtime"] = "0.205824s"
    uplink["network_ids"] = {"net_id": "000013", "tenant_id": tenant, "cluster_id": "eu1"}
    body = {
        "end_device_ids": {
            "device_id": device_id,
            "application_ids": {"application_id": app},
            "dev_eui": _dev_eui(device).upper(),
            "join_eui": "0000000000000000",
            "dev_addr": f"260B{noise & 0xFFFF:04X}",
        },
        "correlation_ids": [f"as:up:{uuid.uuid5(uuid.NAMESPACE_URL, f'{device.id}/{m.ts_ms}').hex.upper()}"],
        "received_at": rfc3339_ns(m.ts_ms + 2, noise),  # the application server's time, just after the NS
        "uplink_message": uplink,
    }
    return f"{prefix}v3/{app}@{tenant}/devices/{device_id}/up", orjson.dumps(body)


def _chirpstack_device_info(device: DeviceSpec) -> tuple[str, dict[str, object]]:
    application_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"placesense/application/{device.domain}"))
    profile = device.model or f"placesense-{device.kind}"
    return application_id, {
        "tenantId": str(uuid.uuid5(uuid.NAMESPACE_URL, "placesense/tenant")),
        "tenantName": "placesense",
        "applicationId": application_id,
        "applicationName": f"placesense-{device.domain}",
        "deviceProfileId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"placesense/profile/{profile}")),
        "deviceProfileName": profile,
        "deviceName": device.id,
        "devEui": device.source_key,
        "deviceClassEnabled": "CLASS_A",
        "tags": {"subject": device.subject},
    }


def encode_chirpstack(
    device: DeviceSpec, m: SimMeasurement, prefix: str = "", *, decoded: bool | None = None
) -> tuple[str, bytes]:
    """ChirpStack v4's ``up`` event for ``m``: ``data`` for a model with a codec (plus ``object`` if
    ``decoded=True``, as when the device profile has the vendor's codec), ``object`` in our names otherwise."""
    f_port, frame, obj = _lorawan_payload(device, m, decoded)
    application_id, device_info = _chirpstack_device_info(device)
    noise = _stable(f"{device.id}/{m.seq}/{m.ts_ms}")
    rssi, snr = _radio(device, m)
    body: dict[str, object] = {
        "deduplicationId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{device.id}/{m.seq}/{m.ts_ms}")),
        "time": rfc3339_ns(m.ts_ms, noise, "+00:00"),
        "deviceInfo": device_info,
        "devAddr": f"{noise & 0xFFFFFFFF:08x}",
        "adr": True,
        "dr": 3,
        "fCnt": (m.seq or 0) % 2**32,
        "fPort": f_port,
        "confirmed": False,
    }
    if frame is not None:
        body["data"] = base64.b64encode(frame).decode()
    if obj is not None:
        body["object"] = obj
    body["rxInfo"] = [
        {
            "gatewayId": "b827ebfffe000001",
            "uplinkId": noise & 0xFFFF,
            "nsTime": rfc3339_ns(m.ts_ms + 5, noise, "+00:00"),
            "rssi": round(rssi),
            "snr": snr,
            "channel": 0,
            "location": {},
            "context": base64.b64encode(noise.to_bytes(4, "big")).decode(),
            "metadata": {"region_config_id": "eu868", "region_common_name": "EU868"},
            "crcStatus": "CRC_OK",
        }
    ]
    body["txInfo"] = {
        "frequency": 868100000,
        "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 9, "codeRate": "CR_4_5"}},
    }
    topic = f"{prefix}application/{application_id}/device/{device.source_key}/event/up"
    return topic, orjson.dumps(body)


def encode_chirpstack_status(device: DeviceSpec, m: SimMeasurement, prefix: str = "") -> tuple[str, bytes]:
    """ChirpStack v4's ``status`` event (the device's answer to DevStatusReq): battery percent and margin."""
    if m.battery_pct is None:
        raise ValueError("a ChirpStack status event needs battery_pct")
    application_id, device_info = _chirpstack_device_info(device)
    body = {
        "deduplicationId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{device.id}/status/{m.ts_ms}")),
        "time": rfc3339_ns(m.ts_ms, 0, "+00:00"),
        "deviceInfo": device_info,
        "margin": 12,
        "externalPowerSource": False,
        "batteryLevelUnavailable": False,
        "batteryLevel": round(m.battery_pct, 2),
    }
    topic = f"{prefix}application/{application_id}/device/{device.source_key}/event/status"
    return topic, orjson.dumps(body)


# ---------------------------------------------------------------------------------------------- Sensor.Community

_SC_VALUES = (
    ("pm10_ugm3", "SDS_P1", 1.0),
    ("pm2_5_ugm3", "SDS_P2", 1.0),
    ("temperature_c", "BME280_temperature", 1.0),
    ("humidity_pct", "BME280_humidity", 1.0),
    ("pressure_hpa", "BME280_pressure", 100.0),
)


def sensor_community_body(device: DeviceSpec, m: SimMeasurement) -> bytes:
    """The HTTP body a Sensor.Community firmware posts for ``m`` (not MQTT, so not in ``ENCODERS``).

    Values are text with two decimals, as the firmware sends them; the chip id is the device's source id
    without an ``esp8266-`` prefix.
    """
    unknown = set(m.metrics) - {name for name, _, _ in _SC_VALUES}
    if unknown:
        raise ValueError(f"Sensor.Community bodies cannot carry {', '.join(sorted(unknown))}")
    values = [
        {"value_type": value_type, "value": f"{float(m.metrics[name]) * scale:.2f}"}
        for name, value_type, scale in _SC_VALUES
        if name in m.metrics
    ]
    values += [
        {"value_type": "samples", "value": "612345"},
        {"value_type": "min_micro", "value": "28"},
        {"value_type": "max_micro", "value": "20154"},
        {"value_type": "interval", "value": "145000"},
        {"value_type": "signal", "value": str(-50 - _stable(device.id) % 40)},
    ]
    chip = device.source_key.removeprefix("esp8266-")
    return orjson.dumps({"esp8266id": chip, "software_version": "NRZ-2024-135", "sensordatavalues": values})


Encoder = Callable[[DeviceSpec, SimMeasurement, str], tuple[str, bytes]]

ENCODERS: dict[str, Encoder] = {
    "canonical": encode_canonical,
    "zigbee2mqtt": encode_zigbee2mqtt,
    "ttn": encode_ttn,
    "chirpstack": encode_chirpstack,
}


def encode(device: DeviceSpec, m: SimMeasurement, prefix: str = "") -> tuple[str, bytes]:
    """Topic and payload for ``m`` in ``device``'s source format."""
    return ENCODERS[device.format](device, m, prefix)
