"""``placesense privacy``: the sub-command's actions (export, delete-home, retention, audit-export) and their output.

It reads the settings, builds the clients and one ``PrivacyControls``, runs the action asked for and prints what
it did; private files are written mode 0600. It must not query or delete anything itself: export, erasure and
retention (the modules beside it) do.
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path

from placesense.basics.files import write_private
from placesense.storage.influx import InfluxClient
from placesense.tools.privacy.controls import PrivacyControls
from placesense.tools.privacy.retention import load_retention


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="privacy_command", metavar="ACTION", required=True)
    export = sub.add_parser("export", help="write everything held about one home to a JSON file (subject access)",
        description=(
        "Write everything placesense holds about one home (registry entry, readings, alerts, dead letters, "
        "device status, what the rules learned) to one JSON file, mode 0600, for a subject-access request. "
        "The export is recorded in the audit log."
        ))
    export.add_argument("--home", required=True, help="the home's pseudonymous id, e.g. h-7f3a")
    export.add_argument("--out", type=Path, required=True, help="JSON file to write")
    erase = sub.add_parser("delete-home", help="erase one home everywhere (stop placesense serve first)",
        description=(
        "Erase one home everywhere: its InfluxDB series, alerts and their history, dead letters, device "
        "status, discovered devices, learned routine and journal readings, and its devices' retained broker "
        "messages. Stop placesense serve first. Without --yes, only says what would go."
        ))
    erase.add_argument("--home", required=True, help="the home's pseudonymous id")
    erase.add_argument("--yes", action="store_true", help="really erase: without it nothing is deleted")
    retention = sub.add_parser("retention", help="delete data older than its retention period",
        description=(
        "Delete what is older than its retention period (home events 90 days, soil and air 400, dead letters "
        "30, resolved alerts 730, unless --config says otherwise). Without --apply, only counts. Run it "
        "daily."
        ))
    retention.add_argument("--config", type=Path, help="YAML/TOML file with a 'retention' section (else defaults)")
    retention.add_argument("--apply", action="store_true", help="delete; without it only count")
    audit = sub.add_parser("audit-export", help="write the append-only audit log as JSON lines",
        description=(
        "Write the append-only API audit log (who read or acted on which home's data, and when) as JSON "
        "lines, mode 0600."
        ))
    audit.add_argument("--out", type=Path, required=True, help="file to write")
    for each in (export, erase):
        each.add_argument("--operator", default=getpass.getuser(), help="who asks, for the audit log")


def run(args: argparse.Namespace) -> int:
    from devices.registry import load_registry
    from placesense.basics.db import make_engine
    from placesense.service import alerts_mqtt_config, influx_config
    from placesense.settings import load_settings

    settings = load_settings()
    registry = load_registry(settings.registry_path)
    influx = InfluxClient(influx_config(settings))
    engine = make_engine(settings.database_url)
    broker = alerts_mqtt_config(settings) if settings.mqtt_alerts_username or not settings.mqtt_username else None
    try:
        controls = PrivacyControls(influx, engine, registry, settings.state_dir, settings.spool_dir,
                                   topic_prefix=settings.topic_prefix, broker=broker)
        return _run_action(controls, args)
    finally:
        influx.close()
        engine.dispose()


def _run_action(controls: PrivacyControls, args: argparse.Namespace) -> int:
    if args.privacy_command == "export":
        document = controls.export_home(args.home, operator=args.operator)
        _write_private(args.out, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        points = sum(len(rows) for rows in document["readings"].values())
        print(f"wrote {args.out}: {points} readings, {len(document['alerts'])} alerts, "
              f"{len(document['dead_letters'])} dead letters (mode 0600: it is special-category data)")
        return 0
    if args.privacy_command == "delete-home":
        if not args.yes:
            print(f"would erase home {args.home} from InfluxDB, alerts, dead letters, device status and learned "
                  "routines. Stop 'placesense serve' first, then run again with --yes.")
            return 2
        report = controls.delete_home(args.home, operator=args.operator)
        for key, value in report.items():
            if key != "registry_entries_to_remove":
                print(f"{key}: {value}")
        print("now remove from the registry file (the resident's name lives there):")
        for entry in report["registry_entries_to_remove"]:
            print(f"  {entry}")
        if not isinstance(report["retained_status"], int):
            print("the devices' retained status messages were not cleared: run this again once the broker answers")
            return 1
        return 0
    if args.privacy_command == "retention":
        report = controls.apply_retention(load_retention(args.config), apply=args.apply)
        verb = "deleted" if args.apply else "would delete (run with --apply)"
        for key, value in report.items():
            print(f"{verb}: {key}: {value}")
        return 0
    count = controls.export_audit(args.out)
    print(f"wrote {count} audit entries to {args.out}")
    return 0


def _write_private(path: Path, text: str) -> None:
    # A new file replaces whatever was at ``path``: an existing file's wider mode is not kept.
    write_private(path, text.encode("utf-8"))
