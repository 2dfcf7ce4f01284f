"""Broker security generated from the device registry: mosquitto accounts, passwords, ACLs and TLS files.

``placesense broker-config --out DIR`` writes, for mosquitto 2.x:

- ``passwd``: one account per canonical device (username = device id), one per bridge of a source format the
  registry uses (Zigbee2MQTT, The Things Stack, ChirpStack), the ingest account, the alerts publisher's account
  and an alerts-reader account, each hashed in mosquitto's own PBKDF2-SHA512 format (``$7$``);
- ``acl``: what each account may publish and read; everything not listed is refused by the broker;
- ``broker-secrets.json`` (mode 0600): the plain passwords, to hand to each device and to the service's
  ``PLACESENSE_MQTT_PASSWORD`` and ``PLACESENSE_MQTT_ALERTS_PASSWORD``; kept across runs so regenerating after a
  registry change does not lock the fleet out (``--rotate`` makes new ones);
- ``mosquitto.conf``: anonymous access off, the two files, limits on packet size and queued messages, and the
  listeners (a plain one on loopback, and a TLS one when certificate files are given or ``--make-ca`` creates a
  local CA and server certificate), each binding client ids to usernames (``use_username_as_clientid``).

Why the binding: without it any account may connect with another client's id, and the broker then drops that
client and hands over its session — ingest's persistent session with the readings the broker already
acknowledged to devices. With it, a client's id is its username, so each account is one connection: ingest and
the alerts publisher have an account each.

This module knows accounts and topics; it does not run a broker (``placesense.localstack`` does, for the demo
and tests) and it never decides what ingest accepts (ingest still dead-letters a payload claiming another
device, for a broker that is misconfigured).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from devices.registry import Registry
from devices.topics import SUBSCRIPTIONS, canonical_topic
from placesense.basics.errors import ConfigError

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
CONF_FILE = "mosquitto.conf"


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


@dataclass(frozen=True, slots=True)
class BrokerLimits:
    """What one client may cost the broker. A packet bigger than ``max_packet_bytes`` (MQTT's whole packet, topic
    included) disconnects its sender; past ``max_queued_messages`` or ``max_queued_bytes`` waiting for one client
    (ingest while it is down), the broker drops new messages for it. Size the queue for the longest outage of
    placesense serve to ride out: messages per second x seconds x ~300 bytes."""

    max_packet_bytes: int = 128 * 1024  # twice ingest's own payload limit, so "oversized" is still dead-lettered
    max_queued_messages: int = 1_000_000
    max_queued_bytes: int = 512 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_packet_bytes < 20 or self.max_queued_messages < 1 or self.max_queued_bytes < 1:
            raise ConfigError("broker limits must be positive (mosquitto refuses a packet limit under 20 bytes)")

    def lines(self) -> list[str]:
        return [
            f"max_packet_size {self.max_packet_bytes}",
            f"max_queued_messages {self.max_queued_messages}",
            f"max_queued_bytes {self.max_queued_bytes}",
        ]


@dataclass(frozen=True, slots=True)
class Listener:
    """A plain listener: loopback by default, since passwords cross it in the clear."""

    host: str = "127.0.0.1"
    port: int = 1883

    @classmethod
    def parse(cls, text: str) -> Listener:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
            raise ConfigError(f"--listen wants HOST:PORT, e.g. 127.0.0.1:1883, not {text!r}")
        return cls(host or "127.0.0.1", int(port))


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files for a TLS listener: the CA that signed the server certificate, the certificate and its key."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """What ``write_broker_config`` wrote."""

    directory: Path
    conf: Path
    password_file: Path
    acl_file: Path
    secrets_file: Path
    accounts: tuple[Account, ...]
    tls: TlsFiles | None = None

    def password(self, username: str) -> str:
        """The plain password of ``username`` from the secrets file."""
        return load_secrets(self.secrets_file)[username]


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
    """Username → plain password from a secrets file written by ``write_broker_config`` (empty if none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the broker secrets file {path}: {exc}") from exc
    accounts = data.get("accounts", {}) if isinstance(data, dict) else {}
    return {str(name): str(entry["password"]) for name, entry in accounts.items()}


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` so that no other user can read it at any moment, then swap it in atomically."""
    partial = path.with_name(path.name + ".tmp")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def conf_text(
    password_file: Path,
    acl_file: Path,
    tls: TlsFiles | None = None,
    tls_port: int = 8883,
    *,
    listen: Listener | None = None,
    limits: BrokerLimits | None = None,
) -> str:
    """mosquitto 2's configuration: global security and limits first, then each listener with its own options.

    Options mosquitto 2 applies per listener (use_username_as_clientid, the TLS files) must follow their own
    ``listener`` line: written before any, such an option opens a default listener on every interface at 1883 for
    itself and does not reach the listeners defined after it."""
    limits = limits or BrokerLimits()
    lines = [
        "# Generated by 'placesense broker-config'. Run mosquitto with it (mosquitto -c FILE), or include its folder",
        "# (include_dir) from a configuration that defines no listener of its own: every listener must bind client",
        "# ids to usernames, as these do. After a registry change, regenerate and send mosquitto SIGHUP to reload",
        "# the password and ACL files (a change of listeners needs a restart).",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {password_file.resolve()}",
        f"acl_file {acl_file.resolve()}",
        "",
        "# What one client may cost the broker's memory.",
        *limits.lines(),
        "",
        "# Per-listener options follow their own 'listener' line (mosquitto 2 scoping).",
    ]
    if listen is not None:
        lines += [
            "# Plain MQTT: keep it on loopback, passwords cross it in the clear.",
            f"listener {listen.port} {listen.host}",
            "use_username_as_clientid true",
            "",
        ]
    if tls is not None:
        lines += [
            "# TLS for devices and services outside this host (TLS 1.2 or later).",
            f"listener {tls_port}",
            "use_username_as_clientid true",
            f"cafile {tls.ca_cert.resolve()}",
            f"certfile {tls.server_cert.resolve()}",
            f"keyfile {tls.server_key.resolve()}",
            "tls_version tlsv1.2",
            "",
        ]
    if listen is None and tls is None:
        raise ConfigError("the broker needs a listener: a plain one (--listen) or TLS (--make-ca or --tls-*)")
    return "\n".join(lines).rstrip("\n") + "\n"


def write_broker_config(
    registry: Registry,
    out_dir: Path,
    *,
    prefix: str = "",
    ingest_user: str = INGEST_USER,
    ingest_password: str | None = None,
    alerts_user: str = ALERTS_PUBLISHER,
    alerts_password: str | None = None,
    tls: TlsFiles | None = None,
    tls_port: int = 8883,
    listen: Listener | None = Listener(),
    limits: BrokerLimits | None = None,
    rotate: bool = False,
) -> BrokerFiles:
    """Write the password file, ACL, secrets and mosquitto configuration into ``out_dir``; return their paths.

    Existing passwords in ``out_dir``'s secrets file are kept unless ``rotate``; ``ingest_password`` and
    ``alerts_password`` (the service's ``PLACESENSE_MQTT_PASSWORD`` and ``PLACESENSE_MQTT_ALERTS_PASSWORD``) are
    used for those accounts when given.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    accounts = accounts_for(registry, prefix=prefix, ingest_user=ingest_user, alerts_publisher=alerts_user)
    secrets_file = out_dir / SECRETS_FILE
    previous = {} if rotate else load_secrets(secrets_file)
    passwords = {a.username: previous.get(a.username) or secrets.token_urlsafe(PASSWORD_BYTES) for a in accounts}
    if ingest_password:
        passwords[ingest_user] = ingest_password
    if alerts_password:
        passwords[alerts_user] = alerts_password
    roles = {a.username: a.role for a in accounts}
    secrets_doc = {
        "note": "plain broker passwords: give each device its own, never commit or share this file",
        "accounts": {name: {"role": roles[name], "password": pw} for name, pw in passwords.items()},
    }
    _write_private(secrets_file, json.dumps(secrets_doc, indent=2) + "\n")
    # The hashes are not secret in the usual sense, but mosquitto reads them as this user: no reason to share.
    password_file = out_dir / PASSWD_FILE
    _write_private(password_file, password_file_text(accounts, passwords))
    acl_file = out_dir / ACL_FILE
    _write_private(acl_file, acl_text(accounts))
    conf = out_dir / CONF_FILE
    conf.write_text(conf_text(password_file, acl_file, tls, tls_port, listen=listen, limits=limits), encoding="utf-8")
    return BrokerFiles(out_dir, conf, password_file, acl_file, secrets_file, tuple(accounts), tls)


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
    _write_private(secrets_file, json.dumps(secrets_doc, indent=2) + "\n")
    _write_private(out_dir / PASSWD_FILE, password_file_text(accounts, passwords))
    _write_private(out_dir / ACL_FILE, acl_text(accounts))
    return new


def make_local_ca(
    directory: Path,
    *,
    hostnames: Sequence[str] = ("localhost",),
    ips: Sequence[str] = ("127.0.0.1",),
    days: int = 825,
) -> TlsFiles:
    """A private CA and a server certificate it signed, made with the ``openssl`` command (Debian's openssl).

    For a local demo, tests, or a council network without a public CA; production may use any CA instead.
    Keys are written 0600. The CA key stays in ``directory``: move it offline once the certificate is made.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ConfigError("the openssl command is not installed: apt-get install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    san = [f"DNS:{h}" for h in hostnames] + [f"IP:{ip}" for ip in ips]
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(san)}\n"
    )
    old_umask = os.umask(0o077)  # keys must never exist readable by others, not even for a moment
    try:
        _openssl(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_cert,
                 "-days", str(days), "-subj", "/CN=placesense local CA",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        _openssl(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                 "-subj", f"/CN={hostnames[0] if hostnames else ips[0]}")
        _openssl(openssl, "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                 "-out", cert, "-days", str(days), "-extfile", ext)
    finally:
        os.umask(old_umask)
    for public in (ca_cert, cert):
        public.chmod(0o644)
    csr.unlink(missing_ok=True)
    ext.unlink(missing_ok=True)
    return TlsFiles(ca_cert, cert, key)


def _openssl(binary: str, *args: str | Path) -> None:
    result = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ConfigError(f"openssl {args[0]} failed: {result.stderr.strip()[-500:]}")


# -- placesense broker-config ---------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to write the files into")
    parser.add_argument("--registry", type=Path, help="device registry (default: PLACESENSE_REGISTRY_PATH)")
    parser.add_argument("--prefix", help="topic prefix (default: PLACESENSE_TOPIC_PREFIX)")
    parser.add_argument(
        "--ingest-user", help="ingest's broker username (default: PLACESENSE_MQTT_USERNAME, else the client id)"
    )
    parser.add_argument(
        "--alerts-user",
        help="the alerts publisher's broker username "
        f"(default: PLACESENSE_MQTT_ALERTS_USERNAME, else {ALERTS_PUBLISHER})",
    )
    parser.add_argument("--listen", default="127.0.0.1:1883", type=_listen_arg,
                        help="plain listener HOST:PORT (default 127.0.0.1:1883)")
    parser.add_argument("--no-plain-listener", action="store_true", help="TLS listener only")
    parser.add_argument("--max-packet-kb", type=int, default=128, help="largest MQTT packet in KiB (default 128)")
    parser.add_argument("--max-queued-mb", type=int, default=512,
                        help="messages queued for one client (ingest while down), in MiB (default 512)")
    parser.add_argument("--rotate", action="store_true", help="new passwords for every account")
    parser.add_argument("--make-ca", action="store_true", help="also make a local CA and server certificate")
    parser.add_argument("--hostname", action="append", default=[], help="server name for --make-ca (repeatable)")
    parser.add_argument("--tls-ca", type=Path, help="existing CA certificate (PEM) for the TLS listener")
    parser.add_argument("--tls-cert", type=Path, help="existing server certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="existing server key (PEM)")
    parser.add_argument("--tls-port", type=int, default=8883, help="TLS listener port (default 8883)")


def _listen_arg(text: str) -> Listener:
    try:
        return Listener.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    from devices.registry import load_registry
    from placesense.settings import load_settings

    settings = load_settings()
    registry = load_registry(args.registry or settings.registry_path)
    tls: TlsFiles | None = None
    given = [args.tls_ca, args.tls_cert, args.tls_key]
    if any(given):
        if not all(given):
            raise ConfigError("--tls-ca, --tls-cert and --tls-key go together")
        tls = TlsFiles(args.tls_ca, args.tls_cert, args.tls_key)
    elif args.make_ca:
        tls = make_local_ca(args.out / "tls", hostnames=args.hostname or ["localhost"])
    files = write_broker_config(
        registry,
        args.out,
        prefix=settings.topic_prefix if args.prefix is None else args.prefix,
        ingest_user=args.ingest_user or settings.mqtt_username or settings.mqtt_client_id,
        ingest_password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None,
        alerts_user=args.alerts_user or settings.mqtt_alerts_username or ALERTS_PUBLISHER,
        alerts_password=(
            settings.mqtt_alerts_password.get_secret_value() if settings.mqtt_alerts_password else None
        ),
        tls=tls,
        tls_port=args.tls_port,
        listen=None if args.no_plain_listener else args.listen,
        limits=BrokerLimits(max_packet_bytes=args.max_packet_kb * 1024,
                            max_queued_bytes=args.max_queued_mb * 1024 * 1024),
        rotate=args.rotate,
    )
    by_role: dict[str, int] = {}
    for account in files.accounts:
        by_role[account.role] = by_role.get(account.role, 0) + 1
    print(f"wrote {files.conf}, {files.password_file}, {files.acl_file}")
    print(f"      {files.secrets_file} (mode 0600: plain passwords, hand out and keep safe)")
    if files.tls:
        print(f"      TLS: CA {files.tls.ca_cert}, certificate {files.tls.server_cert}, key {files.tls.server_key}")
    print("accounts: " + ", ".join(f"{n} {role}" for role, n in sorted(by_role.items())))
    return 0
