"""``placesense doctor``: check settings, the registry, the broker, InfluxDB, the database and the spool.

Each check prints one line, OK or a problem with what to do about it. Exit status 0 only if all pass.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from placesense.basics.errors import PlacesenseError
from placesense.basics.redact import redact
from placesense.settings import Settings


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Settings come from PLACESENSE_* variables and the TOML file named by PLACESENSE_CONFIG. "
                     "Against 'make demo': PLACESENSE_CONFIG=var/demo/placesense.toml placesense doctor "
                     "(the file the demo's service runs on).")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each server (default 5)")


def run(args: argparse.Namespace) -> int:
    checks = diagnose(timeout_s=args.timeout)
    width = max(len(c.name) for c in checks)
    for check in checks:
        mark = " ok " if check.ok else "FAIL"
        print(f"[{mark}] {check.name:<{width}}  {check.detail}")
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} checks passed.")
    return 1 if failed else 0


def diagnose(timeout_s: float = 5.0) -> list[Check]:
    from placesense.settings import load_settings

    try:
        settings = load_settings()
    except PlacesenseError as exc:
        return [Check("settings", False, f"{exc}\n  Fix the PLACESENSE_* variables or the PLACESENSE_CONFIG file.")]
    checks = [Check("settings", True, "PLACESENSE_* variables and config file are valid")]
    steps: list[tuple[str, Callable[[], str]]] = [
        ("device registry", lambda: _registry(settings)),
        ("MQTT broker", lambda: _mqtt(settings, timeout_s)),
        ("InfluxDB", lambda: _influx(settings, timeout_s)),
        ("database", lambda: _database(settings)),
        *([("leadership", lambda: _leadership(settings))] if settings.ha else []),
        ("spool", lambda: _spool(settings)),
    ]
    for name, step in steps:
        try:
            checks.append(Check(name, True, redact(step())))
        except Exception as exc:  # every failure becomes a readable line, never a traceback (nor a password)
            checks.append(Check(name, False, redact(str(exc))))
    return checks


def _registry(settings: Settings) -> str:
    from devices.registry import load_registry

    registry = load_registry(settings.registry_path)
    return (
        f"{settings.registry_path}: {len(registry.devices)} devices, {len(registry.homes)} homes, "
        f"{len(registry.flowerbeds)} flowerbeds, {len(registry.air_sites)} air sites"
    )


def _mqtt(settings: Settings, timeout_s: float) -> str:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from placesense.service import alerts_mqtt_config, mqtt_config

    host, port = settings.mqtt_host, settings.mqtt_port
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise PlacesenseError(
            f"cannot reach {host}:{port} ({exc.strerror or exc}). Is the broker running? "
            "For the local demo run 'make demo'; otherwise check PLACESENSE_MQTT_URL."
        ) from exc
    result: dict[str, object] = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"placesense-doctor-{int(time.time())}",
                         protocol=mqtt.MQTTv5)
    # Never with ingest's account: on a broker that binds client ids to usernames, that login would take over
    # ingest's session while serve runs. The alerts publisher's session holds nothing (it reconnects at once).
    login = alerts_mqtt_config(settings) if settings.mqtt_alerts_username else mqtt_config(settings)
    login.secure(client)

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        result.setdefault("reason", reason)

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        raise PlacesenseError(f"MQTT connection to {host}:{port} failed: {exc}") from exc
    client.loop_start()
    deadline = time.monotonic() + timeout_s
    while "reason" not in result and time.monotonic() < deadline:
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    reason = result.get("reason")
    if reason is None:
        raise PlacesenseError(f"{host}:{port} accepted TCP but never answered MQTT CONNECT; is it an MQTT broker?")
    if getattr(reason, "is_failure", False):
        raise PlacesenseError(
            f"the broker refused us: {reason}. Check PLACESENSE_MQTT_ALERTS_USERNAME / PLACESENSE_MQTT_ALERTS_PASSWORD "
            "(and PLACESENSE_MQTT_USERNAME / _PASSWORD) and its ACL."
        )
    who = f" (logged in as {settings.mqtt_alerts_username}; serve's /healthz shows ingest's login)" if (
        settings.mqtt_alerts_username) else ""
    return f"{settings.mqtt_url} accepts MQTT 5 connections{who}"


def _influx(settings: Settings, timeout_s: float) -> str:
    from placesense.service import influx_config
    from placesense.storage.influx import InfluxClient

    client = InfluxClient(influx_config(settings))
    influx_url = redact(settings.influx_url)
    try:
        if not client.ping():
            raise PlacesenseError(
                f"no answer from {influx_url}/ping. Is InfluxDB running? Check PLACESENSE_INFLUX_URL."
            )
        db = settings.influx_db
        if db not in client.databases():
            if settings.influx_create_db:
                return f"{influx_url} answers; database {db!r} will be created at start"
            raise PlacesenseError(f"database {db!r} does not exist; create it (or a DBRP mapping on 2.x)")
        return f"{influx_url} answers; database {db!r} exists"
    finally:
        client.close()


def _database(settings: Settings) -> str:
    from sqlalchemy import text

    from placesense.basics.db import make_engine

    engine = make_engine(settings.database_url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise PlacesenseError(f"cannot open {shown}: {redact(str(exc))}. Check PLACESENSE_DATABASE_URL.") from exc
    finally:
        engine.dispose()
    return f"{shown} opens"


def _leadership(settings: Settings) -> str:
    """Active/standby (docs/scaling.md): which instance leads evaluation now, and whether its lease is current."""
    from datetime import UTC, datetime

    from placesense.basics.db import make_engine
    from placesense.basics.leadership import current_holder

    engine = make_engine(settings.database_url)
    try:
        holder = current_holder(engine)
    finally:
        engine.dispose()
    now_ms = time.time_ns() // 1_000_000
    if holder is None:
        return f"no instance has led evaluation yet (this one is {settings.instance_name})"
    until = datetime.fromtimestamp(holder.expires_ms / 1000, UTC).strftime("%H:%M:%S UTC")
    if holder.expires_ms < now_ms:
        raise PlacesenseError(
            f"no instance leads evaluation: the lease of {holder.instance} ran out at {until}. Start "
            "`placesense serve` on an instance with PLACESENSE_HA=true, or check why the instances cannot renew it."
        )
    me = " (this instance)" if holder.instance == settings.instance_name else ""
    return f"{holder.instance}{me} leads evaluation (epoch {holder.epoch}), its lease runs to {until}"


def _spool(settings: Settings) -> str:
    spool_dir = settings.spool_dir
    spool_dir.mkdir(parents=True, exist_ok=True)
    pending = list(spool_dir.glob("*.lp"))
    free_mb = shutil.disk_usage(spool_dir).free // 1_000_000
    if free_mb < 500:
        raise PlacesenseError(f"only {free_mb} MB free under {spool_dir}; the spool needs room while InfluxDB is down")
    note = f"; {len(pending)} batches waiting for InfluxDB" if pending else ""
    return f"{spool_dir} is writable, {free_mb} MB free{note}"
