"""``placesense demo`` (what ``make demo`` runs): a whole working system on one machine, under ``var/``.

Writes a simulated fleet's registry and the broker configuration generated from it (``var/broker``, as
``placesense broker-config`` would), starts mosquitto with it (no anonymous access: every device may publish
only on its own topics and read nothing; a client's id is its username) and InfluxDB as local processes, then
``placesense serve`` with the ingest and alerts-publisher accounts and ``placesense simulate`` with one login
per device (bridged devices through their bridge's account), waits until they answer, and prints where to
look; passwords are never printed. ``var/`` is private to the user running it.
``placesense demo --stop`` (``make stop``) stops them all. Every process is recorded in ``var/run/*.pid``.

The fleet is one deterministic simulation from a week ago to a year ahead (``var/demo/simulation.json``): the
past at full speed, then live, each message when it is due, so the live readings carry on from the history
and nothing looks like a sudden change. Its labelled incidents are placed relative to today, so some are open
and some recently resolved when people first look. Running ``placesense demo`` again keeps what exists: the
registry, the tokens (links handed out keep working), the simulation and how far it got (nothing is published
or alerted twice); it only starts what is not running, so one stopped component can be restarted with it.
The service's settings are written to ``var/demo/placesense.toml`` (readable by this user only), the file
``PLACESENSE_CONFIG`` names for ``placesense serve`` and for ``placesense doctor``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from placesense.basics.errors import PlacesenseError
from placesense.basics.files import private_dir, write_private
from placesense.broker_accounts import ALERTS_PUBLISHER, INGEST_USER, load_secrets
from placesense.tools.broker_config import BrokerFiles, Listener, write_broker_config
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.process import LocalStackError, pid_file_stop

if TYPE_CHECKING:
    from devices.registry import Registry

VAR = Path("var")
RUN = VAR / "run"
LOGS = VAR / "log"
BROKER_DIR = VAR / "broker"
ORDER = ("simulate", "serve", "influxd", "mosquitto")  # stop order: producers first
SEED = 7  # the demo's fleet and simulation
LIVE_DAYS = 365  # how far past now the simulation runs on live


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Run again, it keeps the tokens (var/demo/tokens.txt), the registry and the simulation, which "
                     "carries on where it stopped, and starts only what is not running. The service's settings are "
                     "in var/demo/placesense.toml (private): PLACESENSE_CONFIG=var/demo/placesense.toml placesense "
                     "doctor checks the running demo.")
    parser.add_argument("--stop", action="store_true", help="stop everything a previous 'placesense demo' started")
    parser.add_argument("--restart", choices=ORDER, action="append", default=[], metavar="PART",
                        help="stop this part (simulate, serve, influxd or mosquitto), wait for it to end, and start "
                        "it again with the rest as they are; repeatable")
    parser.add_argument("--homes", type=int, default=4, help="simulated homes (default %(default)s)")
    parser.add_argument("--beds", type=int, default=8, help="simulated flowerbeds (default %(default)s)")
    # Five sites, so that the comparison of each with the median of the others is not upset by the one site the
    # demo's pollution episode is on (with two others the median is their mean, and all three look as if drifting).
    parser.add_argument("--air-sites", type=int, default=5, help="simulated air-quality sites (default %(default)s)")
    parser.add_argument("--history-days", type=float, default=7.0,
                        help="days of past readings to publish at full speed first (default %(default)s)")
    parser.add_argument("--mqtt-port", type=int, default=1883, help="broker port (default %(default)s)")
    parser.add_argument("--influx-port", type=int, default=8086, help="InfluxDB port (default %(default)s)")
    parser.add_argument("--api-port", type=int, default=8080, help="API port (default %(default)s)")
    parser.add_argument("--report-every", type=float, default=60.0, metavar="SECONDS",
                        help="how often room temperature, soil and air sensors report (default %(default)s)")


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
    for name in args.restart:
        if pid_file_stop(RUN / f"{name}.pid"):
            print(f"stopped {name}")
    # Everything under var/ is the demo's own: readings, alerts, broker sessions, passwords. Not for other users.
    private_dir(VAR)
    demo_dir = VAR / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    registry_path = demo_dir / "registry.yaml"
    fleet, fresh_fleet = _registry(args, registry_path)
    # Passwords are kept across runs, so a broker, service or simulator still running keeps working. The broker
    # runs the generated configuration itself, as a deployment would: accounts, ACLs, limits, and a loopback
    # listener that binds client ids to usernames.
    broker_conf = BROKER_DIR / "mosquitto.conf"
    previous_conf = broker_conf.read_text() if broker_conf.exists() else ""
    broker_files = write_broker_config(fleet, BROKER_DIR, ingest_user=INGEST_USER, alerts_user=ALERTS_PUBLISHER,
                                       listen=Listener("127.0.0.1", args.mqtt_port))
    sim_credentials = write_device_credentials(broker_files, demo_dir / "sim-credentials.json")

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

    tokens_path = demo_dir / "tokens.yaml"
    tokens = _existing_tokens(tokens_path)
    if tokens is None:
        tokens = _write_demo_tokens(tokens_path, sorted(fleet.homes))
        print(f"issued new demo tokens ({tokens_path.with_name('tokens.txt')})")
    settings_file = write_settings_file(demo_dir / "placesense.toml", {
        "mqtt_url": broker.url,
        "mqtt_client_id": INGEST_USER,
        "mqtt_username": INGEST_USER,
        "mqtt_password": broker_files.password(INGEST_USER),
        "mqtt_alerts_username": ALERTS_PUBLISHER,
        "mqtt_alerts_password": broker_files.password(ALERTS_PUBLISHER),
        "influx_url": influx.url,
        "registry_path": str(registry_path.resolve()),
        "database_url": f"sqlite:///{(VAR / 'placesense.db').resolve()}",
        "spool_dir": str((VAR / "spool").resolve()),
        "state_dir": str((VAR / "state").resolve()),
        "api_bind": f"127.0.0.1:{args.api_port}",
        "tokens_path": str(tokens_path.resolve()),
    })
    # The service reads everything from the settings file (as doctor does); nothing secret is in its environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACESENSE_")}
    serve_env = {**env, "PLACESENSE_CONFIG": str(settings_file.resolve())}
    cli = [sys.executable, "-m", "placesense.cli"]
    if not _alive("serve"):
        _spawn("serve", [*cli, "serve"], serve_env)
        print("started placesense serve")
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
    plan = _simulation_plan(args, fleet, demo_dir, fresh=fresh_fleet)
    if not _alive("simulate"):
        # One simulation from the past into the future: the past at full speed (history to look at), then live.
        # The progress file lets a restarted simulator carry on where the last one stopped.
        simulate = [*cli, "simulate", "--registry", str(registry_path), "--formats", "mix",
                    "--per-device-connections", "--credentials", str(sim_credentials),
                    "--seed", str(plan["seed"]), "--start", str(plan["start"]), "--days", str(plan["days"]),
                    "--speed", "live", "--resume", str(demo_dir / "sim-progress.json"),
                    "--report-every", str(plan["report_every_s"]), "--truth", str(demo_dir / "truth.jsonl"),
                    "--client-id", "demo-fleet"]
        for incident in plan["incidents"]:
            simulate += ["--anomaly", str(incident)]
        _spawn("simulate", simulate, {**env, "PLACESENSE_MQTT_URL": broker.url})
        print("started the simulated fleet")
    print(
        f"""
placesense is running. Open these in a browser on this machine (each link carries a demo token):
  wall display:     {api}/display#token={tokens['display']}
  street view:      {api}/street#token={tokens['street']}
  care view:        {api}/care#token={tokens['care']}
  device page:      {api}/devices#token={tokens['admin']}   (admin)
  API docs:         {api}/docs   (admin token: {tokens['admin']})
  health:           {api}/healthz
  demo tokens:      {demo_dir / 'tokens.txt'}   (kept across restarts; delete it for new ones)
  settings:         {settings_file}   (PLACESENSE_CONFIG={settings_file} placesense doctor)
  InfluxDB:         {influx.url} (database 'placesense')
  MQTT broker:      {broker.url} (no anonymous access; accounts and ACLs from the registry in {BROKER_DIR}/,
                    passwords in {broker_files.secrets_file}, readable by you only)
  logs:             {LOGS}/   ·   registry: {registry_path}   ·   incidents: {demo_dir / 'truth.jsonl'}
The simulated fleet publishes the past {plan['history_days']:g} days at full speed (once), then carries on live:
room temperatures, soil and air report every {plan['report_every_s']:g} s. `make demo` again starts only what
is not running and keeps the tokens, the registry and the simulation. Stop everything with: make stop
"""
    )
    return 0


def _registry(args: argparse.Namespace, path: Path) -> tuple[Registry, bool]:
    """The demo's registry: the existing file when it still holds the fleet asked for (it may also hold devices
    registered since, over the API), else the fleet written afresh. Returns it and whether it is new."""
    from firmware_sim.fleet import build_fleet, write_registry

    from devices.registry import load_registry

    fleet = build_fleet(homes=args.homes, beds=args.beds, air_sites=args.air_sites, seed=SEED, formats="mix")
    if path.exists():
        try:
            existing = load_registry(path)
        except PlacesenseError:
            existing = None
        if existing is not None and set(fleet.devices) <= set(existing.devices):
            return existing, False
    write_registry(fleet, path)
    return fleet, True


def _simulation_plan(args: argparse.Namespace, fleet: Registry, demo_dir: Path, fresh: bool) -> dict[str, Any]:
    """The demo's one simulation (start, length, seed, incidents), kept in ``simulation.json`` so a restart
    carries on with the same one; a new fleet, or a window nearly run out, starts a new one."""
    from firmware_sim.timebase import local_days, now_ms, parse_rfc3339, rfc3339

    from placesense.basics.timeunits import DAY_MS

    path = demo_dir / "simulation.json"
    now = now_ms()
    if not fresh and path.exists():
        try:
            plan: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            ends = parse_rfc3339(plan["start"]) + round(float(plan["days"]) * DAY_MS)
            if ends - now > DAY_MS:
                return plan
        except (OSError, ValueError, KeyError, TypeError):
            pass
    start = now - round(args.history_days * DAY_MS)
    today = next(day.index for day in local_days(start, now + 1) if day.base_ms <= now < day.next_base_ms)
    plan = {
        "start": rfc3339(start - start % 1000),
        "days": round(args.history_days + LIVE_DAYS, 3),
        "seed": SEED,
        "history_days": args.history_days,
        "report_every_s": args.report_every,
        "incidents": demo_incidents(fleet, today),
    }
    (demo_dir / "sim-progress.json").unlink(missing_ok=True)
    path.write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
    return plan


def demo_incidents(fleet: Registry, today: int) -> list[str]:
    """The labelled incidents of the demo, placed relative to ``today`` (the day index of now) so that when
    people first look some are open (a bed drying out, maybe a cold home or a stuck sensor), some were resolved
    in the last day (yesterday's late morning and pollution episode) and some are still to come live. Day 0
    began before the simulation did, so only days from 1 on take an incident."""
    homes = list(fleet.homes)
    air = [d.id for d in fleet.devices.values() if d.domain == "air"]
    incidents: list[str] = []
    yesterday = today - 1
    if fleet.flowerbeds and today >= 1:
        incidents.append(f"bed_drying_out@{max(1, today - 3)}")
    if yesterday >= 1 and homes:
        incidents += [f"late_wakeup:{homes[0]}@{yesterday}", f"cold_home:{homes[-1]}@{yesterday}"]
    if yesterday >= 1 and fleet.air_sites:
        incidents.append(f"pollution_episode@{yesterday}")
    if yesterday >= 1 and len(air) > 1:
        incidents.append(f"stuck_sensor:{air[-1]}@{yesterday}")
    if today >= 1 and len(homes) > 1:
        incidents.append(f"late_wakeup:{homes[1]}@{today}")
    if today >= 1 and fleet.air_sites:
        incidents.append(f"pollution_episode@{today}")
    return incidents


def write_settings_file(path: Path, settings: dict[str, str]) -> Path:
    """The demo service's settings as the TOML file ``PLACESENSE_CONFIG`` names, readable by this user only (it
    holds the service's broker passwords). Rewritten only when something changed."""
    text = "# placesense demo settings (written by 'placesense demo'; holds passwords: keep it private)\n"
    text += "".join(f"{name} = {json.dumps(value)}\n" for name, value in settings.items())
    if path.exists() and path.read_text(encoding="utf-8") == text:
        path.chmod(0o600)
        return path
    write_private(path, text.encode("utf-8"))
    return path


def _listeners(conf: str) -> list[str]:
    """The listener part of a generated mosquitto configuration: what a reload does not apply."""
    return conf.split("(mosquitto 2 scoping).", 1)[-1].splitlines() if conf else []


def _existing_tokens(path: Path) -> dict[str, str] | None:
    """The demo tokens issued by an earlier run (role -> token), if both files are still there and agree."""
    secret_file = path.with_name("tokens.txt")
    try:
        tokens = dict(line.split("\t", 1) for line in secret_file.read_text().splitlines() if "\t" in line)
        hashes = path.read_text()
    except OSError:
        return None
    from api.auth import hash_token

    if set(tokens) != {"admin", "care", "street", "display"}:
        return None
    if any(hash_token(token) not in hashes for token in tokens.values()):
        return None
    return tokens


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
    write_private(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
    return path
