"""``placesense demo`` (what ``make demo`` runs): a whole working system on one machine, under ``var/``.

Writes a simulated fleet's registry and the broker configuration generated from it (``var/broker``, as
``placesense broker-config`` would), starts mosquitto with it (no anonymous access: every device may publish
only on its own topics and read nothing; a client's id is its username) and InfluxDB as local processes, then
``placesense serve`` with the ingest and alerts-publisher accounts and ``placesense simulate`` with one login
per device (bridged devices through their bridge's account), waits until they answer, and prints where to
look; passwords are never printed. ``var/`` is private to the user running it.
``placesense demo --stop`` (``make stop``) stops them all. Every process is recorded in ``var/run/*.pid``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from placesense.broker import ALERTS_PUBLISHER, INGEST_USER, BrokerFiles, Listener, load_secrets, write_broker_config
from placesense.errors import PlacesenseError
from placesense.files import private_dir
from placesense.localstack import InfluxDB, LocalStackError, Mosquitto, pid_file_stop

VAR = Path("var")
RUN = VAR / "run"
LOGS = VAR / "log"
BROKER_DIR = VAR / "broker"
ORDER = ("simulate", "serve", "influxd", "mosquitto")  # stop order: producers first


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stop", action="store_true", help="stop everything a previous 'placesense demo' started")
    parser.add_argument("--homes", type=int, default=4, help="simulated homes (default %(default)s)")
    parser.add_argument("--beds", type=int, default=8, help="simulated flowerbeds (default %(default)s)")
    parser.add_argument("--air-sites", type=int, default=3, help="simulated air-quality sites (default %(default)s)")
    parser.add_argument("--history-days", type=float, default=7.0,
                        help="days of past readings to publish at full speed first (default %(default)s)")
    parser.add_argument("--mqtt-port", type=int, default=1883, help="broker port (default %(default)s)")
    parser.add_argument("--influx-port", type=int, default=8086, help="InfluxDB port (default %(default)s)")
    parser.add_argument("--api-port", type=int, default=8080, help="API port (default %(default)s)")


def _alive(name: str) -> bool:
    try:
        pid = int((RUN / f"{name}.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def _record(name: str, pid: int) -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    (RUN / f"{name}.pid").write_text(str(pid))


def stop() -> int:
    """Stop what ``make demo`` started, one after the other, each waited for (serve saves what it learned)."""
    stopped = []
    for name in ORDER:
        if pid_file_stop(RUN / f"{name}.pid"):
            stopped.append(name)
            print(f"stopped {name}", flush=True)
    if not stopped:
        print("nothing was running")
    return 0


def _spawn(name: str, argv: list[str], env: dict[str, str]) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    with (LOGS / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    _record(name, proc.pid)
    return proc.pid


def run(args: argparse.Namespace) -> int:
    if args.stop:
        return stop()
    # Everything under var/ is the demo's own: readings, alerts, broker sessions, passwords. Not for other users.
    private_dir(VAR)
    from firmware_sim.fleet import build_fleet, write_registry

    registry_path = VAR / "demo" / "registry.yaml"
    registry_path.parent.mkdir(parents=True, exist_ok=True)
    fleet = build_fleet(homes=args.homes, beds=args.beds, air_sites=args.air_sites, seed=7, formats="mix")
    write_registry(fleet, registry_path)
    # Passwords are kept across runs, so a broker, service or simulator still running keeps working. The broker
    # runs the generated configuration itself, as a deployment would: accounts, ACLs, limits, and a loopback
    # listener that binds client ids to usernames.
    broker_conf = BROKER_DIR / "mosquitto.conf"
    previous_conf = broker_conf.read_text() if broker_conf.exists() else ""
    broker_files = write_broker_config(fleet, BROKER_DIR, ingest_user=INGEST_USER, alerts_user=ALERTS_PUBLISHER,
                                       listen=Listener("127.0.0.1", args.mqtt_port))
    sim_credentials = write_device_credentials(broker_files, VAR / "demo" / "sim-credentials.json")

    broker = Mosquitto(VAR.resolve() / "mosquitto", port=args.mqtt_port, config_dir=BROKER_DIR.resolve())
    influx = InfluxDB(VAR.resolve() / "influxdb", port=args.influx_port)
    if _alive("mosquitto") and _listeners(previous_conf) != _listeners(broker_conf.read_text()):
        # Listener options (the client-id binding among them) are not reloaded on SIGHUP: restart the broker.
        # Its sessions and queued messages are persisted, and the service and the simulator reconnect.
        pid_file_stop(RUN / "mosquitto.pid")
        print("stopped mosquitto to apply a new listener configuration")
    for name, server in (("mosquitto", broker), ("influxd", influx)):
        if _alive(name):
            if name == "mosquitto":
                # Reload the (re)generated passwords and ACLs.
                os.kill(int((RUN / "mosquitto.pid").read_text()), signal.SIGHUP)
                print("mosquitto is already running; reloaded its accounts and ACLs")
            else:
                print(f"{name} is already running")
            continue
        try:
            server.start()
        except LocalStackError as exc:
            raise PlacesenseError(
                f"{exc}\nIs another {name} using the port? Stop it, or pass --mqtt-port/--influx-port."
            ) from exc
        assert server.proc.process is not None
        _record(name, server.proc.process.pid)
        print(f"started {name} (data in {server.data_dir})")

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACESENSE_")}
    env.update(
        {
            "PLACESENSE_MQTT_URL": broker.url,
            "PLACESENSE_INFLUX_URL": influx.url,
            "PLACESENSE_REGISTRY_PATH": str(registry_path),
            "PLACESENSE_DATABASE_URL": f"sqlite:///{VAR / 'placesense.db'}",
            "PLACESENSE_SPOOL_DIR": str(VAR / "spool"),
            "PLACESENSE_STATE_DIR": str(VAR / "state"),
            "PLACESENSE_API_BIND": f"127.0.0.1:{args.api_port}",
        }
    )
    # Only the service gets the ingest account; the simulator gets the devices' own passwords (a file).
    serve_env = {
        **env,
        "PLACESENSE_MQTT_CLIENT_ID": INGEST_USER,
        "PLACESENSE_MQTT_USERNAME": INGEST_USER,
        "PLACESENSE_MQTT_PASSWORD": broker_files.password(INGEST_USER),
        "PLACESENSE_MQTT_ALERTS_USERNAME": ALERTS_PUBLISHER,
        "PLACESENSE_MQTT_ALERTS_PASSWORD": broker_files.password(ALERTS_PUBLISHER),
    }
    tokens_path = VAR / "demo" / "tokens.yaml"
    if _alive("serve") and (VAR / "demo" / "tokens.txt").exists():
        tokens = dict(line.split("\t", 1) for line in (VAR / "demo" / "tokens.txt").read_text().split("\n") if line)
    else:
        tokens = _write_demo_tokens(tokens_path, sorted(fleet.homes))
    serve_env["PLACESENSE_TOKENS_PATH"] = str(tokens_path)
    cli = [sys.executable, "-m", "placesense.cli"]
    if not _alive("serve"):
        _spawn("serve", [*cli, "serve"], serve_env)
    api = f"http://127.0.0.1:{args.api_port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{api}/healthz", timeout=1).json().get("mqtt_connected"):
                break
        except (httpx.HTTPError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise PlacesenseError(f"placesense serve did not come up; see {LOGS / 'serve.log'}")
        time.sleep(0.3)
    if not _alive("simulate"):
        # First the recent past at full speed (so there is history to look at), then live, in real time.
        common = [*cli, "simulate", "--registry", str(registry_path), "--formats", "mix",
                  "--per-device-connections", "--credentials", str(sim_credentials)]
        history = [*common, "--seed", "7", "--days", str(args.history_days), "--speed", "max",
                   "--anomaly", "late_wakeup@5", "--anomaly", "cold_home@4", "--anomaly", "bed_drying_out@1",
                   "--anomaly", "pollution_episode@5", "--truth", str(VAR / "demo" / "truth.jsonl"),
                   "--client-id", "demo-history"]
        live_start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 5))
        live = [*common, "--seed", "8", "--start", live_start, "--days", "7", "--speed", "1",
                "--client-id", "demo-live"]
        script = f"{shlex.join(history)} && {shlex.join(live)}"
        _spawn("simulate", ["/bin/sh", "-c", script], env)
    print(
        f"""
placesense is running. Open these in a browser on this machine (each link carries a demo token):
  wall display:     {api}/display#token={tokens['display']}
  street view:      {api}/street#token={tokens['street']}
  care view:        {api}/care#token={tokens['care']}
  device page:      {api}/devices#token={tokens['admin']}   (admin)
  API docs:         {api}/docs   (admin token: {tokens['admin']})
  health:           {api}/healthz
  demo tokens:      {VAR / 'demo' / 'tokens.txt'}
  InfluxDB:         {influx.url} (database 'placesense')
  MQTT broker:      {broker.url} (no anonymous access; accounts and ACLs from the registry in {BROKER_DIR}/,
                    passwords in {broker_files.secrets_file}, readable by you only)
  logs:             {LOGS}/   ·   registry: {registry_path}
The simulator first publishes the past {args.history_days:g} days at full speed, then carries on live.
Stop everything with: make stop
"""
    )
    return 0


def _listeners(conf: str) -> list[str]:
    """The listener part of a generated mosquitto configuration: what a reload does not apply."""
    return conf.split("(mosquitto 2 scoping).", 1)[-1].splitlines() if conf else []


def _write_demo_tokens(path: Path, homes: list[str]) -> dict[str, str]:
    """Fresh demo API tokens, one per role: hashes in ``path`` (what the API reads), the tokens themselves in
    ``tokens.txt`` beside it, readable by this user only. Returns role -> token."""
    import secrets

    import yaml

    from api.auth import hash_token

    roles: dict[str, dict[str, object]] = {
        "admin": {"name": "demo-admin", "role": "admin"},
        "care": {"name": "demo-care-team", "role": "care", "homes": homes},
        "street": {"name": "demo-street-team", "role": "street"},
        "display": {"name": "demo-wall-display", "role": "display"},
    }
    tokens = {role: secrets.token_urlsafe(24) for role in roles}
    entries = [{**roles[role], "sha256": hash_token(token)} for role, token in tokens.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"tokens": entries}, sort_keys=False))
    secret_file = path.with_name("tokens.txt")
    secret_file.touch(mode=0o600)
    secret_file.chmod(0o600)
    secret_file.write_text("".join(f"{role}\t{token}\n" for role, token in tokens.items()))
    return tokens


def write_device_credentials(files: BrokerFiles, path: Path) -> Path:
    """The passwords of the device and bridge accounts only, in the secrets file's format, readable by this user
    only: what the simulator needs to stand in for the fleet, without the ingest or alerts-reader logins."""
    passwords = load_secrets(files.secrets_file)
    wanted = {a.username: a.role for a in files.accounts if a.role in ("device", "bridge")}
    doc = {
        "note": "broker passwords of the simulated devices and bridges (placesense demo); do not share",
        "accounts": {name: {"role": role, "password": passwords[name]} for name, role in wanted.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(doc, indent=2) + "\n")
    partial.replace(path)
    return path
