"""``GET /api/v1/devices`` and ``/api/v1/devices/discovered``: the registry joined with what ingest last saw.

Each device the caller may see, with its subject, kind, place, last message, battery and online state, and on
request (``?signal=true``, one InfluxDB query) the newest radio signal it reported in the last week: RSSI and SNR
at the LoRaWAN gateway, Zigbee link quality. Names of residents stay with admins and care teams; the wall display
sees no home devices at all (``api.auth``). A device registered since it was discovered is no longer listed as
discovered. This module must not change the registry or device state.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import Principal
from api.deps import Admin, Caller, Ctx, Devices
from api.ports import DevicesPort
from api.problems import AUTH_ERRORS
from api.timefmt import rfc3339
from devices.registry import DeviceSpec, Registry
from placesense.basics.errors import StorageError
from placesense.storage.readings import newest_values

router = APIRouter(tags=["devices"])
log = logging.getLogger(__name__)
SIGNAL_METRICS = ("rssi_dbm", "snr_db", "link_quality")
SIGNAL_WINDOW_MS = 7 * 86_400_000


class DeviceOut(BaseModel):
    id: str
    domain: Literal["home", "soil", "air"]
    subject: str = Field(description="pseudonymous home id, flowerbed id or air site id")
    subject_name: str | None = Field(
        default=None, description="bed or site name; a resident's name only for admin/care"
    )
    kind: str
    room: str | None = None
    format: str
    model: str | None = None
    lat: float | None = None
    lon: float | None = None
    last_seen: str | None = Field(default=None, description="when ingest last received a message (RFC 3339)")
    last_event: str | None = Field(default=None, description="event time of the newest reading (RFC 3339)")
    battery_pct: float | None = None
    online: bool | None = Field(
        default=None, description="from the retained status topic or recent data; null if unknown"
    )
    rssi_dbm: float | None = Field(default=None, description="with ?signal=true: LoRaWAN signal at the gateway")
    snr_db: float | None = Field(default=None, description="with ?signal=true: LoRaWAN signal-to-noise ratio")
    link_quality: float | None = Field(default=None, description="with ?signal=true: Zigbee link quality, 0-255")


class DevicesOut(BaseModel):
    devices: list[DeviceOut]


class DiscoveredOut(BaseModel):
    format: str
    source_id: str
    topic: str
    first_seen: str | None
    last_seen: str | None
    messages: int


def _subject_name(registry: Registry, spec: DeviceSpec, caller: Principal) -> str | None:
    if spec.domain == "soil":
        bed = registry.flowerbeds.get(spec.subject)
        return bed.name if bed else None
    if spec.domain == "air":
        site = registry.air_sites.get(spec.subject)
        return site.name if site else None
    home = registry.homes.get(spec.subject)
    return home.name if home and caller.sees_names else None


def _place(registry: Registry, spec: DeviceSpec) -> tuple[float | None, float | None]:
    if spec.lat is not None:
        return spec.lat, spec.lon
    place: Any = registry.flowerbeds.get(spec.subject) or registry.air_sites.get(spec.subject)
    if spec.domain != "home" and place is not None:
        return place.lat, place.lon
    return None, None


def _signals(service: DevicesPort) -> dict[str, dict[str, float]]:
    """The newest signal metrics per device over the last week; empty (and logged) when InfluxDB cannot answer,
    so the list itself never depends on it."""
    since_ms = service.clock.now_ms() - SIGNAL_WINDOW_MS
    try:
        return newest_values(service.influx, SIGNAL_METRICS, since_ms)
    except StorageError as exc:
        log.warning("device signal strengths not available: %s", exc)
        return {}


@router.get("/api/v1/devices", response_model=DevicesOut, responses=AUTH_ERRORS)
def list_devices(
    ctx: Ctx,
    caller: Caller,
    service: Devices,
    domain: Annotated[Literal["home", "soil", "air"] | None, Query(description="only this domain")] = None,
    online: Annotated[bool | None, Query(description="only devices in this online state")] = None,
    signal: Annotated[bool, Query(description="add each device's newest radio signal (one InfluxDB query)")] = False,
) -> DevicesOut:
    """Registered devices the token may see, with last seen, battery and online state."""
    registry: Registry = service.registry
    states = service.device_states.all()
    signals = _signals(service) if signal else {}
    out: list[DeviceOut] = []
    for spec in sorted(registry.devices.values(), key=lambda d: d.id):
        if not caller.may_see_device(spec) or (domain and spec.domain != domain):
            continue
        state = states.get(spec.id)
        if online is not None and (state is None or state.online is not online):
            continue
        lat, lon = _place(registry, spec)
        radio = signals.get(spec.id, {})
        out.append(
            DeviceOut(
                id=spec.id,
                domain=spec.domain,
                subject=spec.subject,
                subject_name=_subject_name(registry, spec, caller),
                kind=spec.kind,
                room=spec.room,
                format=spec.format,
                model=spec.model,
                lat=lat,
                lon=lon,
                last_seen=rfc3339(state.last_seen_ms) if state else None,
                last_event=rfc3339(state.last_event_ms) if state else None,
                battery_pct=state.battery_pct if state else None,
                online=state.online if state else None,
                rssi_dbm=radio.get("rssi_dbm"),
                snr_db=radio.get("snr_db"),
                link_quality=radio.get("link_quality"),
            )
        )
    homes = {d.subject for d in out if d.domain == "home"}
    if homes:  # care teams and admins: the list carries residents' names and when their devices last spoke
        ctx.audit.record(caller, "devices", homes)
    return DevicesOut(devices=out)


def _source_key(source_format: str, source_id: str) -> str:
    """As ``DeviceSpec.source_key`` spells it: ChirpStack DevEUIs in any case are one device."""
    return source_id.lower() if source_format == "chirpstack" else source_id


@router.get("/api/v1/devices/discovered", response_model=list[DiscoveredOut], responses=AUTH_ERRORS)
def discovered(_admin: Admin, service: Devices) -> list[DiscoveredOut]:
    """Devices that published but are not in the registry, so an admin can register them."""
    registry: Registry = service.registry
    registered = {(d.format, d.source_key) for d in registry.devices.values()}
    return [
        DiscoveredOut(
            format=row["format"],
            source_id=row["source_id"],
            topic=row["topic"],
            first_seen=rfc3339(row["first_seen_ms"]),
            last_seen=rfc3339(row["last_seen_ms"]),
            messages=row["messages"],
        )
        for row in service.dead_letters.discovered()
        if (row["format"], _source_key(row["format"], row["source_id"])) not in registered
    ]
