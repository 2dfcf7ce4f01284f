"""Broker accounts from the device registry: who may log in to the broker, and what each may publish and read.

One account per canonical device (username = device id, writing its own two topics only), one per bridge of a
source format the registry uses (Zigbee2MQTT, The Things Stack, ChirpStack), the ingest account, the alerts
publisher's account and an alerts-reader account. From them come the ``passwd`` file (mosquitto's own
PBKDF2-SHA512 hashes, ``$7$``), the ``acl`` file (everything not listed is refused) and ``broker-secrets.json``
(mode 0600: the plain passwords to hand out).

``placesense serve`` uses this at run time: registering a device over the API gives it its account
(``add_device_accounts``, ``placesense.registration``). The mosquitto configuration around these files
(listeners, limits, TLS) is written by ``placesense broker-config`` (``placesense.tools.broker_config``).
This module never runs a broker and never decides what ingest accepts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from devices.registry import Registry
from devices.topics import SUBSCRIPTIONS, canonical_topic
from placesense.basics.errors import ConfigError
from placesense.basics.files import write_private

AccountRole = Literal["device", "bridge", "ingest", "alerts_publisher", "alerts_reader"]

INGEST_USER = "placesense-ingest"
ALERTS_PUBLISHER = "placesense-alerts"
ALERTS_READER = "placesense-alerts-reader"
# Topic trees of the bridges that forward other systems' messages into this broker. Sensor.Community is an HTTP
# push and needs no broker account.
BRIDGE_TREES: dict[str, tuple[str, str]] = {
    "zigbee2mqtt": ("bridge-zigbee2mqtt", "zigbee2mqtt/#"),
    "ttn": ("bridge-ttn", "v3/#"),
    "chirpstack": ("bridge-chirpstack", "application/#"),
}
# mosquitto_passwd's own default. Every password here is 32 random bytes, so the iteration count adds nothing
# against guessing, while a high count would cost the single-threaded broker CPU on every reconnect storm.
PBKDF2_ITERATIONS = 101
PASSWORD_BYTES = 32

PASSWD_FILE = "passwd"
ACL_FILE = "acl"
SECRETS_FILE = "broker-secrets.json"


@dataclass(frozen=True, slots=True)
class Account:
    """One broker login and the topics it may write and read (MQTT filters, prefix included)."""

    username: str
    role: AccountRole
    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # The password and ACL files are line-based and ':'-separated: such names would corrupt them.
        if not self.username or any(c in self.username for c in ":\n\r \t#+/"):
            raise ConfigError(f"broker username {self.username!r} must not contain ':', '/', wildcards or spaces")
        for topic in (*self.write, *self.read):
            if not topic or "\n" in topic or "\r" in topic:
                raise ConfigError(f"invalid topic filter for {self.username!r}: {topic!r}")


def check_prefix(prefix: str) -> str:
    """The topic prefix as ACL lines need it: ending in '/', and without wildcards, which in an ACL would grant
    every topic they match."""
    if any(c in prefix for c in "+#\0\n\r") or any(c.isspace() for c in prefix):
        raise ConfigError(f"the topic prefix {prefix!r} must not contain MQTT wildcards (+ #), NUL or spaces")
    if prefix.startswith("/") or "//" in prefix or "$" in prefix:
        raise ConfigError(f"the topic prefix {prefix!r} must not start with '/', hold '//' or '$'")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix


def accounts_for(
    registry: Registry,
    *,
    prefix: str = "",
    ingest_user: str = INGEST_USER,
    alerts_publisher: str = ALERTS_PUBLISHER,
    alerts_reader: str = ALERTS_READER,
) -> list[Account]:
    """Every account the registry calls for, least privilege first: devices write their own two topics only."""
    prefix = check_prefix(prefix)
    accounts: list[Account] = []
    formats: set[str] = set()
    for device in sorted(registry.devices.values(), key=lambda d: d.id):
        formats.add(device.format)
        if device.format != "canonical":
            continue  # bridged devices never talk to this broker themselves
        accounts.append(
            Account(
                device.id,
                "device",
                write=(
                    canonical_topic(device.domain, device.id, "telemetry", prefix),
                    canonical_topic(device.domain, device.id, "status", prefix),
                ),
            )
        )
    for source_format, (username, tree) in BRIDGE_TREES.items():
        if source_format in formats:
            accounts.append(Account(username, "bridge", write=(prefix + tree,)))
    accounts.append(Account(ingest_user, "ingest", read=tuple(prefix + sub for sub in SUBSCRIPTIONS)))
    # The alerts publisher may also empty devices' retained status messages: an erasure clears a home's.
    accounts.append(
        Account(
            alerts_publisher,
            "alerts_publisher",
            write=(f"{prefix}placesense/v1/alerts/#", f"{prefix}placesense/v1/+/+/status"),
        )
    )
    accounts.append(Account(alerts_reader, "alerts_reader", read=(f"{prefix}placesense/v1/alerts/#",)))
    seen: set[str] = set()
    for account in accounts:
        if account.username in seen:
            raise ConfigError(
                f"broker username {account.username!r} is used twice (a device id equal to a service account?)"
            )
        seen.add(account.username)
    return accounts


def acl_text(accounts: Iterable[Account]) -> str:
    """mosquitto's ACL file: no lines before the first ``user``, so anonymous clients get nothing."""
    lines = [
        "# Generated by 'placesense broker-config' from the device registry. Do not edit; regenerate.",
        "# Anything not granted here is refused by the broker.",
    ]
    for account in accounts:
        lines += ["", f"# {account.role}", f"user {account.username}"]
        lines += [f"topic write {topic}" for topic in account.write]
        lines += [f"topic read {topic}" for topic in account.read]
    return "\n".join(lines) + "\n"


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The password in mosquitto 2.x's PBKDF2-SHA512 form, as ``mosquitto_passwd`` writes it."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def password_file_text(accounts: Iterable[Account], passwords: Mapping[str, str]) -> str:
    return "".join(f"{a.username}:{hash_password(passwords[a.username])}\n" for a in accounts)


def load_secrets(path: Path) -> dict[str, str]:
    """Username → plain password from a secrets file written by ``placesense broker-config`` (empty if none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the broker secrets file {path}: {exc}") from exc
    accounts = data.get("accounts", {}) if isinstance(data, dict) else {}
    return {str(name): str(entry["password"]) for name, entry in accounts.items()}


def add_device_accounts(
    registry: Registry,
    out_dir: Path,
    *,
    prefix: str = "",
    ingest_user: str = INGEST_USER,
    alerts_user: str = ALERTS_PUBLISHER,
) -> dict[str, str]:
    """Give every registered device that has no account in ``out_dir`` one, keeping every other account and
    password, and rewrite the password file, ACL and secrets there (not mosquitto.conf: its listeners, TLS and
    limits stay as written). Returns the new accounts' passwords; mosquitto applies them when signalled (SIGHUP).
    """
    secrets_file = out_dir / SECRETS_FILE
    if not secrets_file.exists():
        raise ConfigError(f"{out_dir} holds no broker configuration ('placesense broker-config --out {out_dir}')")
    previous = load_secrets(secrets_file)
    accounts = accounts_for(registry, prefix=prefix, ingest_user=ingest_user, alerts_publisher=alerts_user)
    new = {a.username: secrets.token_urlsafe(PASSWORD_BYTES) for a in accounts if a.username not in previous}
    passwords = {**previous, **new}
    roles = {a.username: a.role for a in accounts}
    secrets_doc = {
        "note": "plain broker passwords: give each device its own, never commit or share this file",
        "accounts": {a.username: {"role": roles[a.username], "password": passwords[a.username]} for a in accounts},
    }
    write_private(secrets_file, (json.dumps(secrets_doc, indent=2) + "\n").encode("utf-8"))
    write_private(out_dir / PASSWD_FILE, password_file_text(accounts, passwords).encode("utf-8"))
    write_private(out_dir / ACL_FILE, acl_text(accounts).encode("utf-8"))
    return new
