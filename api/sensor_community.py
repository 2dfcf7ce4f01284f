"""``POST /api/v1/push/sensor-community``: DIY air sensors (Sensor.Community / airrohr firmware) post here.

Both forms the airrohr firmware sends are accepted: its "send to own API" upload (every sensor in one body, the chip
also in ``esp8266id``) and the upload it sends to Sensor.Community itself (one per sensor, the chip only in the
``X-Sensor: esp8266-<chipid>`` header and the sensor in ``X-PIN``), so a relay or a firmware pointed here in place
of Sensor.Community works too. HTTP Basic credentials are the firmware's: the password is a placesense token with
the ``sensor`` role whose entry lists that chip (or an ``admin`` token); a bearer token works too. The chip must be
registered with ``format: sensor_community``. The body is decoded by ``devices.formats`` and checked by
``devices.decode.finish`` like any MQTT message, then stored through the service's durable path (InfluxDB or the
spool). A body that fails is dead-lettered with the reason — exactly as over MQTT — and answered with a problem; a
value refused from a body whose other values were stored is dead-lettered alone and named in the answer. This module
must not interpret metrics itself: it hands the headers to the decoder.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.auth import Principal
from api.deps import ApiContext, Ctx, Push, identify
from api.ports import PushPort
from api.problems import AUTH_ERRORS, Problem
from devices.decode import DecodeLimits, finish, parse_json_object
from devices.formats import FORMAT_DECODERS
from devices.registry import DeviceSpec
from devices.topics import TopicInfo
from ingest.deadletters import DeadLetter
from placesense.basics.errors import DecodeError

router = APIRouter(tags=["ingest"])
CHIP_RE = re.compile(r"^(esp8266|esp32)-[0-9a-z]{1,32}$")
PUSH_TOPIC = "http:/api/v1/push/sensor-community/"


class PushAccepted(BaseModel):
    device: str
    stored: int
    metrics: list[str]
    refused: list[str] = []  # values not stored, each dead-lettered with its reason


def _push_principal(ctx: ApiContext, authorization: str | None) -> Principal:
    secret: str | None = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            secret = value.strip()
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise Problem(401, "the Basic credentials are not valid base64", kind="unauthenticated") from exc
            secret = decoded.partition(":")[2]  # the user name is free text (the firmware requires one)
    principal = identify(ctx, secret)
    if principal.role not in ("sensor", "admin"):
        raise Problem(403, f"a {principal.role} token may not push readings; use a sensor token",
                      kind="forbidden-role")
    return principal


def _device_for(service: PushPort, chip: str) -> DeviceSpec | None:
    registry = service.registry
    bare = chip.split("-", 1)[1]
    spec: DeviceSpec | None = registry.lookup("sensor_community", chip) or registry.lookup("sensor_community", bare)
    return spec


def _dead_letter(
    service: PushPort, chip: str, body: bytes, reason: str, kind: str, spec: DeviceSpec | None
) -> None:
    letter = DeadLetter(
        topic=PUSH_TOPIC + chip,
        payload=body,
        reason=reason,
        kind=kind,
        received_ms=time.time_ns() // 1_000_000,
        device_id=spec.id if spec else None,
        source_format="sensor_community",
        source_id=chip,
        subject=spec.subject if spec else None,
    )
    service.dead_letters.add_many([letter])
    service.metrics.inc("placesense_dead_letters_total", kind=kind)


PUSH_PATH = "/api/v1/push/sensor-community"


@router.post(
    PUSH_PATH,
    response_model=PushAccepted,
    status_code=201,
    responses={**AUTH_ERRORS, 404: {"description": "the chip is not registered"}, 413: {"description": "too big"}},
)
async def push(
    request: Request,
    ctx: Ctx,
    service: Push,
    x_sensor: Annotated[str, Header(description="esp8266-<chipid> or esp32-<chipid>, as the firmware sends")],
    authorization: Annotated[str | None, Header(description="Basic (password = token) or Bearer")] = None,
    x_pin: Annotated[
        str | None,
        Header(description="the sensor's pin number, as the firmware sends with Sensor.Community's form (1 PM, ...)"),
    ] = None,
) -> PushAccepted:
    """Accept one Sensor.Community-style upload from a registered DIY air sensor."""
    principal = _push_principal(ctx, authorization)
    chip = x_sensor.strip().lower()
    if not CHIP_RE.fullmatch(chip):
        raise Problem(422, "X-Sensor must look like esp8266-<chipid> (or esp32-<chipid>)", kind="invalid-parameters")
    if not principal.may_push_for(chip):
        ctx.audit.refused(principal.name, principal.role, "chip", "", f"POST {PUSH_PATH} for {chip}")
        raise Problem(403, f"this token may not push readings for {chip}; list the chip under the token's chips",
                      kind="forbidden-chip")
    settings = service.settings
    limits = DecodeLimits(
        max_payload_bytes=settings.max_payload_bytes,
        max_future_ms=settings.max_future_s * 1000,
        max_past_ms=settings.max_past_days * 86_400_000,
    )
    pin: int | None = None
    if x_pin is not None:
        if not x_pin.strip().isdigit():
            raise Problem(422, "X-PIN must be the sensor's pin number", kind="invalid-parameters")
        pin = int(x_pin.strip())
    body = await _read_capped(request, limits.max_payload_bytes)
    # Decoding is quick, but storing waits on InfluxDB or the disk: keep that off the event loop.
    return await run_in_threadpool(_accept, service, chip, body, limits, pin)


def _accept(service: PushPort, chip: str, body: bytes, limits: DecodeLimits, pin: int | None) -> PushAccepted:
    received_ms = time.time_ns() // 1_000_000
    spec = _device_for(service, chip)
    if spec is None:
        reason = f"unknown device {chip!r} (sensor_community); register it in the device registry"
        _dead_letter(service, chip, body, reason, "unknown_device", None)
        raise Problem(404, reason, kind="unknown-device")
    info = TopicInfo("sensor_community", "telemetry", spec.source_key, domain=spec.domain, sensor_pin=pin)
    try:
        decoded = FORMAT_DECODERS["sensor_community"](info, parse_json_object(body), spec)
        reading = finish(decoded, info, spec, received_ms, limits)
    except DecodeError as exc:
        _dead_letter(service, chip, body, exc.reason, exc.kind, spec)
        raise Problem(422, exc.reason, kind=f"invalid-reading-{exc.kind.replace('_', '-')}") from exc
    stored = service.ingest_readings([reading])
    if not stored:
        reason = "InfluxDB refused the reading"
        _dead_letter(service, chip, body, reason, "refused_by_influxdb", spec)
        raise Problem(422, reason, kind="refused-by-storage")
    for refused in reading.refused:
        _dead_letter(service, chip, body, refused.dead_letter_reason(), refused.kind, spec)
    return PushAccepted(
        device=spec.id, stored=stored, metrics=sorted(reading.metrics), refused=[r.metric for r in reading.refused]
    )


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes without reading it all into memory."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"the body is {declared} bytes; the limit is {limit}", kind="payload-too-large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the body is over the {limit}-byte limit", kind="payload-too-large")
        chunks.append(chunk)
    return b"".join(chunks)
