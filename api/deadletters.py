"""``GET /api/v1/dead-letters`` (admin): refused messages with topic, reason and the raw payload.

Payloads are bytes from a device; they are shown as text when they are valid UTF-8 and as base64 otherwise
(``payload_encoding`` says which), so a binary LoRaWAN frame survives the trip intact. A source that keeps
sending the same kind of bad message has a few whole samples listed, with ``repeats`` counting the rest. Offset
pagination with a total is enough here: the list is newest first and an admin reads the top of it. This module
only reads.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import Admin, Devices
from api.problems import AUTH_ERRORS
from api.timefmt import rfc3339

router = APIRouter(tags=["operations"])


class DeadLetterOut(BaseModel):
    id: int
    received: str | None
    topic: str
    kind: str = Field(description="why, as a code: malformed_json, unknown_device, out_of_range, ...")
    reason: str = Field(description="why, in plain English")
    device_id: str | None
    payload: str
    payload_encoding: Literal["utf-8", "base64"]
    payload_size: int = Field(description="bytes received (the stored payload is capped at 64 KiB)")
    payload_truncated: bool
    subject: str | None = Field(default=None, description="the home, bed or site of the device, when known")
    repeats: int = Field(
        default=0, description="further letters of the same source and kind counted onto this one, not stored"
    )
    last_received: str | None = Field(default=None, description="when the last of those repeats arrived")


class DeadLettersPage(BaseModel):
    total: int
    offset: int
    limit: int
    dead_letters: list[DeadLetterOut]


def _payload_text(payload: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode("ascii"), "base64"


@router.get("/api/v1/dead-letters", response_model=DeadLettersPage, responses=AUTH_ERRORS)
def dead_letters(
    service: Devices,
    _admin: Admin,
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,40}$", description="only this kind")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DeadLettersPage:
    """Refused messages, newest first."""
    store = service.dead_letters
    rows = store.recent(limit=limit, offset=offset, kind=kind)
    out = []
    for row in rows:
        payload = bytes(row["payload"])
        text, encoding = _payload_text(payload)
        out.append(
            DeadLetterOut(
                id=row["id"],
                received=rfc3339(row["received_ms"]),
                topic=row["topic"],
                kind=row["kind"],
                reason=row["reason"],
                device_id=row["device_id"],
                payload=text,
                payload_encoding=encoding,
                payload_size=row["payload_size"],
                payload_truncated=row["payload_size"] > len(payload),
                subject=row["subject"],
                repeats=row["repeats"] or 0,
                last_received=rfc3339(row["last_received_ms"]),
            )
        )
    return DeadLettersPage(total=store.count(kind), offset=offset, limit=limit, dead_letters=out)
