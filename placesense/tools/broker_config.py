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

The accounts and their password, ACL and secrets files come from ``placesense.broker_accounts``, which
``placesense serve`` also uses when a device is registered over the API; this module adds the mosquitto
configuration around them (listeners, limits, TLS, a local CA) and the sub-command. It does not run a broker
(``placesense.tools.localstack.mosquitto`` does, for the demo and tests) and it never decides what ingest accepts
(ingest still dead-letters a payload claiming another device, for a broker that is misconfigured).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devices.registry import Registry
from placesense.basics.errors import ConfigError
from placesense.basics.files import write_private
from placesense.broker_accounts import (
    ACL_FILE,
    ALERTS_PUBLISHER,
    INGEST_USER,
    PASSWD_FILE,
    PASSWORD_BYTES,
    SECRETS_FILE,
    Account,
    accounts_for,
    acl_text,
    load_secrets,
    password_file_text,
)

CONF_FILE = "mosquitto.conf"


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
    write_private(secrets_file, (json.dumps(secrets_doc, indent=2) + "\n").encode("utf-8"))
    # The hashes are not secret in the usual sense, but mosquitto reads them as this user: no reason to share.
    password_file = out_dir / PASSWD_FILE
    write_private(password_file, password_file_text(accounts, passwords).encode("utf-8"))
    acl_file = out_dir / ACL_FILE
    write_private(acl_file, acl_text(accounts).encode("utf-8"))
    conf = out_dir / CONF_FILE
    conf.write_text(conf_text(password_file, acl_file, tls, tls_port, listen=listen, limits=limits), encoding="utf-8")
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
