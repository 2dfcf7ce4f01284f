"""``POST /api/v1/devices``: an admin registers a discovered device (one that published but is not in the
registry), without editing YAML or restarting; the answer carries its broker password, once.

This module only checks the request and shapes the answer; ``placesense.registration`` does the work.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field, ValidationError

from api.deps import Admin, Ctx, Devices
from api.problems import AUTH_ERRORS, Problem
from devices.registry import DeviceSpec

router = APIRouter(tags=["devices"])


class NewDevice(BaseModel):
    id: str = Field(description="the id it publishes under (as in /api/v1/devices/discovered)")
    domain: Literal["home", "soil", "air"]
    subject: str = Field(description="the home, flowerbed or air site it belongs to (already in the registry)")
    kind: str = Field(description="home: motion, door, ...; soil and air devices have their domain as kind")
    room: str | None = Field(default=None, description="home devices: the room")
    model: str | None = None
    lat: float | None = None
    lon: float | None = None


class BrokerAccount(BaseModel):
    username: str
    client_id: str = Field(description="the broker accepts this account only with this client id")
    password: str = Field(description="shown this once; kept only in the broker folder's private secrets file")


class RegisteredOut(BaseModel):
    id: str
    subject: str
    broker: BrokerAccount | None = Field(
        default=None, description="null when no broker folder is configured (PLACESENSE_BROKER_DIR)"
    )
    broker_reloaded: bool = Field(description="mosquitto was signalled to read the new account")
    evaluation_watching: bool = Field(description="the rules watch it now (false: from their next start)")


@router.post("/api/v1/devices", response_model=RegisteredOut, status_code=201, responses=AUTH_ERRORS)
def register(ctx: Ctx, caller: Admin, service: Devices, body: Annotated[NewDevice, Body()]) -> RegisteredOut:
    """Register a discovered device: the running service, the registry file, the broker's accounts and the
    rules all learn it at once."""
    heard = {row["source_id"] for row in service.dead_letters.discovered() if row["format"] == "canonical"}
    if body.id not in heard:
        raise Problem(409, f"no device {body.id!r} has been discovered: it must publish once first "
                      "(see /api/v1/devices/discovered)", kind="not-discovered")
    try:
        device = DeviceSpec.model_validate(body.model_dump(exclude_none=True))
        registered = service.register_device(device)
    except ValidationError as exc:
        raise Problem(422, "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()),
                      kind="invalid-device") from exc
    except ValueError as exc:
        raise Problem(409, str(exc), kind="device-conflict") from exc
    ctx.audit.record(caller, "device.register", [device.subject] if device.domain == "home" else [], device.id)
    account = None
    if registered.broker_password is not None:
        account = BrokerAccount(username=device.id, client_id=device.id, password=registered.broker_password)
    return RegisteredOut(id=device.id, subject=device.subject, broker=account,
                         broker_reloaded=registered.broker_reloaded,
                         evaluation_watching=registered.evaluation_watching)
