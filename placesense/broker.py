"""Broker security generated from the device registry: mosquitto accounts, passwords, ACLs and TLS files.

``placesense broker-config --out DIR`` writes, for mosquitto 2.x:

- ``passwd``: one account per canonical device (username = device id), one per bridge of a source format the
  registry uses (Zigbee2MQTT, The Things Stack, ChirpStack), the ingest account and an alerts-reader account,
  each hashed in mosquitto's own PBKDF2-SHA512 format (``$7$``);
- ``acl``: what each account may publish and read; everything not listed is refused by the broker;
- ``broker-secrets.json`` (mode 0600): the plain passwords, to hand to each device and to the service's
  ``PLACESENSE_MQTT_PASSWORD``; kept across runs so regenerating after a registry change does not lock the
  fleet out (``--rotate`` makes new ones);
- ``mosquitto.conf``: the snippet that switches anonymous access off and points at the two files, plus a TLS
  listener when certificate files are given or ``--make-ca`` creates a local CA and server certificate.

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
from placesense.errors import ConfigError

AccountRole = Literal["device", "bridge", "ingest", "alerts_reader"]

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


def accounts_for(
    registry: Registry,
    *,
    prefix: str = "",
    ingest_user: str = "placesense-ingest",
    alerts_reader: str = ALERTS_READER,
) -> list[Account]:
    """Every account the registry calls for, least privilege first: devices write their own two topics only."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
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
    accounts.append(
        Account(
            ingest_user,
            "ingest",
            write=(f"{prefix}placesense/v1/alerts/#",),
            read=tuple(prefix + sub for sub in SUBSCRIPTIONS),
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
    password_file: Path, acl_file: Path, tls: TlsFiles | None = None, tls_port: int = 8883
) -> str:
    lines = [
        "# Generated by 'placesense broker-config'. Include it from mosquitto.conf (include_dir) or copy it.",
        "# After a registry change, regenerate and send mosquitto SIGHUP to reload the password and ACL files.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {password_file.resolve()}",
        f"acl_file {acl_file.resolve()}",
    ]
    if tls is not None:
        lines += [
            "",
            "# TLS for devices and services outside this host; keep any plain listener on loopback only.",
            f"listener {tls_port}",
            f"cafile {tls.ca_cert.resolve()}",
            f"certfile {tls.server_cert.resolve()}",
            f"keyfile {tls.server_key.resolve()}",
            "tls_version tlsv1.2",
        ]
    return "\n".join(lines) + "\n"


def write_broker_config(
    registry: Registry,
    out_dir: Path,
    *,
    prefix: str = "",
    ingest_user: str = "placesense-ingest",
    ingest_password: str | None = None,
    tls: TlsFiles | None = None,
    tls_port: int = 8883,
    rotate: bool = False,
) -> BrokerFiles:
    """Write the password file, ACL, secrets and conf snippet into ``out_dir``; return their paths.

    Existing passwords in ``out_dir``'s secrets file are kept unless ``rotate``; ``ingest_password`` (the
    service's ``PLACESENSE_MQTT_PASSWORD``) is used for the ingest account when given.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    accounts = accounts_for(registry, prefix=prefix, ingest_user=ingest_user)
    secrets_file = out_dir / SECRETS_FILE
    previous = {} if rotate else load_secrets(secrets_file)
    passwords = {a.username: previous.get(a.username) or secrets.token_urlsafe(PASSWORD_BYTES) for a in accounts}
    if ingest_password:
        passwords[ingest_user] = ingest_password
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
    conf.write_text(conf_text(password_file, acl_file, tls, tls_port), encoding="utf-8")
    return BrokerFiles(out_dir, conf, password_file, acl_file, secrets_file, tuple(accounts), tls)


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
    parser.add_argument("--rotate", action="store_true", help="new passwords for every account")
    parser.add_argument("--make-ca", action="store_true", help="also make a local CA and server certificate")
    parser.add_argument("--hostname", action="append", default=[], help="server name for --make-ca (repeatable)")
    parser.add_argument("--tls-ca", type=Path, help="existing CA certificate (PEM) for the TLS listener")
    parser.add_argument("--tls-cert", type=Path, help="existing server certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="existing server key (PEM)")
    parser.add_argument("--tls-port", type=int, default=8883, help="TLS listener port (default 8883)")


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
        tls=tls,
        tls_port=args.tls_port,
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
