"""``placesense simulate``: run simulated device firmware that publishes over MQTT.

Builds a fleet (or reads an existing registry), simulates it over a window of days with optional injected
anomalies, writes the registry and the ground truth if asked, and publishes the messages in accelerated time.
Only argparse is imported at module level so ``placesense --help`` stays fast; the MQTT password is read only
from ``PLACESENSE_MQTT_PASSWORD`` (through the settings), never from the command line. For a broker secured by
``placesense broker-config``, ``--credentials`` names its secrets file instead: each device then logs in as
itself, and bridged devices through their bridge's account.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("firmware_sim.cli")

EPILOG = """\
examples:
  placesense simulate --homes 5 --beds 10 --air-sites 3 --days 30 --speed max
  placesense simulate --days 14 --anomaly late_wakeup@10 --anomaly cold_home:h-3fa2c1 --truth var/truth.jsonl
  placesense simulate --write-registry config/registry.yaml --registry-only
  placesense simulate --registry config/registry.yaml --per-device-connections \
      --credentials var/broker/broker-secrets.json
  placesense simulate --start 2026-01-05T09:00:00Z --days 30 --speed live --resume var/sim-progress.json

anomaly types: late_wakeup, night_wandering, more_bathroom_visits, no_movement, cold_home,
  reduced_kitchen_use, gradual_decline, bed_drying_out, stuck_sensor, pollution_episode, device_offline.
The window ends now unless --start is given, because ingest refuses readings far in the future; with
--speed live it may run on into the future, each message sent when it falls due.
"""


def _speed(text: str) -> float | str:
    if text in ("max", "live"):
        return text
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            "use 'max', 'live' or a number such as 3600 (one simulated hour a second)") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError("the speed must be positive")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    fleet = parser.add_argument_group("fleet")
    fleet.add_argument("--homes", type=_non_negative, default=3, help="residents' homes (default 3)")
    fleet.add_argument("--beds", type=_non_negative, default=5, help="flowerbeds with soil sensors (default 5)")
    fleet.add_argument("--air-sites", type=_non_negative, default=2, help="street air-quality sites (default 2)")
    fleet.add_argument("--formats", choices=("canonical", "mix"), default="mix",
                       help="'canonical' for every device, or 'mix': some homes behind Zigbee2MQTT and soil "
                       "sensors on TTN and ChirpStack, where their encoders exist (default mix)")
    fleet.add_argument("--registry", type=Path, metavar="FILE.yaml",
                       help="simulate the devices of this registry instead of building a fleet")
    fleet.add_argument("--write-registry", type=Path, metavar="FILE.yaml",
                       help="write the fleet's registry here (point PLACESENSE_REGISTRY_PATH at it for ingest)")
    fleet.add_argument("--registry-only", action="store_true",
                       help="only write the registry (with --write-registry) and exit")
    window = parser.add_argument_group("time and randomness")
    window.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    window.add_argument("--start", metavar="RFC3339",
                        help="simulated start, e.g. 2024-03-01T00:00:00Z (default: now minus --days)")
    window.add_argument("--seed", type=int, default=1, help="same seed, same fleet and same readings (default 1)")
    window.add_argument("--speed", type=_speed, default="max",
                        help="'max' (as fast as the broker acknowledges), simulated seconds per real second, "
                        "e.g. 3600, or 'live': the past at full speed, then each message when it is due, so the "
                        "window may end in the future (default max)")
    window.add_argument("--resume", type=Path, metavar="FILE.json",
                        help="record here how far publishing got, and on a later run of the same simulation "
                        "(same --start, --days and --seed) carry on from there instead of sending it all again")
    window.add_argument("--report-every", type=float, default=0.0, metavar="SECONDS",
                        help="the periodic sensors (room climate, soil, air) report this often instead of at "
                        "their own 10-30 minutes (default: their own)")
    anomalies = parser.add_argument_group("anomalies and device faults")
    anomalies.add_argument("--anomaly", action="append", default=[], metavar="TYPE[:SUBJECT][@DAY]",
                           help="inject one anomaly; SUBJECT is a home, flowerbed, air site or device id, DAY "
                           "counts from 0 (the start's local day); repeatable")
    anomalies.add_argument("--anomalies", type=_non_negative, default=0, metavar="N",
                           help="inject N anomalies of random types, subjects and days")
    anomalies.add_argument("--truth", type=Path, metavar="FILE.jsonl",
                           help="write the ground truth (one JSON object per injected anomaly) here")
    anomalies.add_argument("--offline-rate", type=float, default=0.0, metavar="PER_MONTH",
                           help="random radio outages per device per 30 days, labelled device_offline in the "
                           "ground truth (default 0)")
    anomalies.add_argument("--clock-skew", type=float, default=2.0, metavar="SECONDS",
                           help="largest constant clock error of devices with their own clock (default 2)")
    mqtt = parser.add_argument_group("MQTT (defaults from PLACESENSE_* settings)")
    mqtt.add_argument("--mqtt-url", help="mqtt://host:port or mqtts://host:port (default PLACESENSE_MQTT_URL)")
    mqtt.add_argument("--mqtt-username", help="default PLACESENSE_MQTT_USERNAME; the password is only read "
                      "from PLACESENSE_MQTT_PASSWORD")
    mqtt.add_argument("--topic-prefix", help="prepended to every topic (default PLACESENSE_TOPIC_PREFIX)")
    mqtt.add_argument("--per-device-connections", action="store_true",
                      help="one MQTT connection per device with an 'offline' Last Will, like real firmware")
    mqtt.add_argument("--credentials", type=Path, metavar="FILE.json",
                      help="broker passwords per account (the broker-secrets.json 'placesense broker-config' "
                      "writes), for --per-device-connections: each canonical device logs in as itself, bridged "
                      "devices share their bridge's account; --mqtt-username and PLACESENSE_MQTT_PASSWORD are "
                      "then not used")
    mqtt.add_argument("--client-id", default="placesense-sim",
                      help="MQTT client id, or the prefix of each connection's id (default placesense-sim)")


def run(args: argparse.Namespace) -> int:
    from firmware_sim.anomalies import random_requests, write_ground_truth
    from firmware_sim.fleet import build_fleet, write_registry
    from firmware_sim.simulation import AnomalyInput, Quirks, Simulation
    from firmware_sim.timebase import now_ms, parse_rfc3339, rfc3339

    from devices.registry import load_registry
    from placesense.basics.errors import ConfigError
    from placesense.basics.timeunits import DAY_MS
    from placesense.settings import load_settings

    if args.registry is not None:
        registry = load_registry(args.registry)
    else:
        registry = build_fleet(args.homes, args.beds, args.air_sites, seed=args.seed, formats=args.formats)
    if args.write_registry is not None:
        write_registry(registry, args.write_registry)
        log.info("wrote the registry of %d devices to %s", len(registry.devices), args.write_registry)
    if args.registry_only:
        if args.write_registry is None:
            raise ConfigError("--registry-only needs --write-registry FILE.yaml")
        return 0

    if args.days <= 0:
        raise ConfigError("--days must be positive")
    span_ms = round(args.days * DAY_MS)
    if args.start:
        try:
            start_ms = parse_rfc3339(args.start)
        except ValueError as exc:
            raise ConfigError(f"--start {args.start!r} is not an RFC 3339 time: {exc}") from exc
        end_ms = start_ms + span_ms
        if end_ms > now_ms() + 600_000 and args.speed != "live":
            log.warning("the window ends at %s, in the future: ingest will refuse those readings",
                        rfc3339(end_ms))
    else:
        end_ms = now_ms()
        start_ms = end_ms - span_ms

    requests: list[AnomalyInput] = [*args.anomaly, *random_requests(args.anomalies, args.seed)]
    if args.report_every < 0:
        raise ConfigError("--report-every must be 0 or more seconds")
    quirks = Quirks(clock_skew_max_s=args.clock_skew, offline_per_device_month=args.offline_rate,
                    report_every_s=args.report_every)
    try:
        simulation = Simulation(registry, start_ms, end_ms, seed=args.seed, anomalies=requests, quirks=quirks)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    for injection in simulation.ground_truth:
        log.info("injecting %s on %s from %s to %s", injection.type, injection.device or injection.subject,
                 rfc3339(injection.start_ms), rfc3339(injection.end_ms))
    if args.truth is not None:
        count = write_ground_truth(simulation.ground_truth, args.truth)
        log.info("wrote %d ground-truth records to %s", count, args.truth)

    overrides: dict[str, object] = {}
    if args.mqtt_url:
        overrides["mqtt_url"] = args.mqtt_url
    if args.mqtt_username:
        overrides["mqtt_username"] = args.mqtt_username
    if args.topic_prefix is not None:
        overrides["topic_prefix"] = args.topic_prefix
    settings = load_settings(**overrides)
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    credentials: dict[str, str] | None = None
    if args.credentials is not None:
        if not args.per_device_connections:
            raise ConfigError("--credentials needs --per-device-connections: every device logs in as itself")
        from placesense.broker_accounts import load_secrets

        if not args.credentials.is_file():
            raise ConfigError(f"the credentials file {args.credentials} does not exist")
        credentials = load_secrets(args.credentials)

    from firmware_sim.publisher import publish

    events = simulation.events()
    if args.resume is not None:
        import signal
        import sys

        from firmware_sim.resume import Progress

        progress = Progress(args.resume, start_ms, end_ms, args.seed)
        events = progress.remaining(events)

        def _stopped(signum: int, frame: object) -> None:
            # 'placesense demo --stop' ends the simulator with SIGTERM: keep the record of how far it got.
            progress.save()
            sys.exit(0)

        signal.signal(signal.SIGTERM, _stopped)
    log.info("simulating %d devices from %s to %s at speed %s, publishing to %s",
             len(registry.devices), rfc3339(start_ms), rfc3339(end_ms), args.speed, settings.mqtt_url)
    result = publish(
        events,
        list(registry.devices.values()),
        settings.mqtt_url,
        username=settings.mqtt_username,
        password=password,
        topic_prefix=settings.topic_prefix,
        speed=args.speed,
        client_id=args.client_id,
        per_device_connections=args.per_device_connections,
        credentials=credentials,
        ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
        # A live fleet runs for days: a line every ten minutes says it is alive without filling the log.
        progress_every_s=600.0 if args.speed == "live" else 5.0,
    )
    domains = ", ".join(f"{domain} {count}" for domain, count in sorted(result.per_domain.items()))
    print(f"published {result.total} messages from {len(result.per_device)} devices ({domains}) "
          f"in {result.elapsed_s:.1f} s, {result.rate_per_s:.0f} msg/s; {result.status_messages} status messages")
    return 0
