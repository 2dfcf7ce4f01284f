"""Acknowledge links: a short signed link in an SMS or email that acknowledges one alert as the person it was sent to.

A link is ``{public_url}/ack/{token}`` with ``token = <link id>.<signature>``: the link id is 10 random bytes, and
the signature is an HMAC-SHA256, with the installation's link secret, over the link id, the alert, the person
and the expiry, cut to 12 bytes (both base64url: 31 characters in all, short enough for a text message). The
row stored with the message (in the same transaction) says which alert and person the link is for and when it
expires; a token is accepted only if its row exists, the signature over that row's values matches, it has not
expired and it has not been used. Using it marks it used in one conditional UPDATE, so two taps at once
acknowledge once and the second is told the link was used. The acknowledgement itself goes through the alert
lifecycle in the person's name (its history is the audit), and the API audits the use.

This module makes and checks links; it must not change alerts itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from placesense.alerts.tables import links_table, metadata
from placesense.basics.errors import StorageError

LinkRefusal = Literal["unknown", "expired", "used"]


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """What a valid link acknowledges, and as whom."""

    link_id: str
    alert_id: int
    person: str
    message_id: str
    expires_at_ms: int
    used_at_ms: int | None


class LinkRefused(Exception):
    """The link is unknown (or forged), expired, or already used."""

    def __init__(self, why: LinkRefusal, target: LinkTarget | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.target = target


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class AckLinks:
    """Signed, single-use, expiring links, stored beside the outbox."""

    def __init__(self, engine: Engine, secret: bytes, public_url: str, valid_ms: int) -> None:
        if len(secret) < 16:
            raise ValueError("the acknowledge-link secret must be at least 16 bytes")
        self.engine = engine
        self._secret = secret
        self.public_url = public_url.rstrip("/")
        self.valid_ms = valid_ms
        try:
            metadata.create_all(engine)
        except SQLAlchemyError as exc:
            raise StorageError(f"acknowledge links: {type(exc).__name__}: {exc}") from exc

    def _sign(self, link_id: str, alert_id: int, person: str, expires_at_ms: int) -> str:
        message = f"{link_id}|{alert_id}|{person}|{expires_at_ms}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest()[:12])

    def create(self, conn: Connection, alert_id: int, person: str, message_id: str, now_ms: int) -> str:
        """Store a new link for ``person`` to acknowledge ``alert_id`` and return its URL."""
        link_id = _b64(secrets.token_bytes(10))
        expires = now_ms + self.valid_ms
        conn.execute(links_table.insert().values(
            link_id=link_id, alert_id=alert_id, person=person, message_id=message_id, created_at=now_ms,
            expires_at=expires,
        ))
        return f"{self.public_url}/ack/{link_id}.{self._sign(link_id, alert_id, person, expires)}"

    def check(self, token: str, now_ms: int) -> LinkTarget:
        """The link's target if it may be used now; ``LinkRefused`` says why not."""
        link_id, _, signature = token.partition(".")
        with self.engine.begin() as conn:
            row = conn.execute(select(links_table).where(links_table.c.link_id == link_id)).mappings().first()
        if row is None or not signature:
            raise LinkRefused("unknown")
        target = LinkTarget(row["link_id"], row["alert_id"], row["person"], row["message_id"], row["expires_at"],
                            row["used_at"])
        expected = self._sign(target.link_id, target.alert_id, target.person, target.expires_at_ms)
        if not hmac.compare_digest(expected, signature):
            raise LinkRefused("unknown")
        if target.used_at_ms is not None:
            raise LinkRefused("used", target)
        if now_ms >= target.expires_at_ms:
            raise LinkRefused("expired", target)
        return target

    def use(self, token: str, now_ms: int, used_from: str) -> LinkTarget:
        """Check the link and mark it used, once: of two uses at the same moment, one wins, the other is refused."""
        target = self.check(token, now_ms)
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(links_table)
                .where(links_table.c.link_id == target.link_id, links_table.c.used_at.is_(None))
                .values(used_at=now_ms, used_from=used_from[:100])
            ).rowcount
        if claimed != 1:
            raise LinkRefused("used", target)
        return target
