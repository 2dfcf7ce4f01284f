"""The public surface of each room: what other rooms and outside code import. A change here is deliberate.

Packages with an ``__all__`` list it exactly; the composition root's entry points into the rooms without one
(they keep imports light by exporting modules, not names) are listed by module and name.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

EXPORTS = {
    "devices": [
        "AirSite", "DOMAINS", "DeviceSpec", "Domain", "Flowerbed", "Home", "METRIC_UNITS", "Reading", "Registry",
        "SourceFormat", "TopicInfo", "classify_topic", "load_registry",
    ],
    "devices.formats": ["FORMAT_DECODERS"],
    "anomaly": ["EpisodeFilter", "RoutineDetector", "SeriesDetector"],
    "placesense.storage": [
        "DataRejected", "DatabaseNotFound", "InfluxClient", "InfluxConfig", "QueryRejected", "StorageAccessRefused",
        "StorageTimeout", "StorageUnavailable",
    ],
    "firmware_sim": [
        "ANOMALY_TYPES", "AnomalyRequest", "AnomalyType", "Injection", "PublishError", "Quirks", "SimEvent",
        "SimMeasurement", "SimResult", "Simulation", "build_fleet", "generate", "ground_truth", "parse_anomaly",
        "publish", "random_requests", "read_ground_truth", "write_ground_truth", "write_registry",
    ],
}

ENTRY_POINTS = [
    ("devices.decode", "decode_message"),
    ("devices.decode", "DecodeLimits"),
    ("ingest.pipeline", "Pipeline"),
    ("ingest.pipeline", "PipelineConfig"),
    ("ingest.writer", "StorageWriter"),
    ("placesense.storage.influx", "InfluxClient"),
    ("ingest.spool", "Spool"),
    ("ingest.deadletters", "DeadLetterStore"),
    ("ingest.devicestate", "DeviceStates"),
    ("ingest.lineprotocol", "encode_reading"),
    ("rules.engine", "RuleEngine"),
    ("rules.config", "load_rules"),
    ("placesense.alerts.lifecycle", "AlertService"),
    ("placesense.alerts.store", "AlertStore"),
    ("placesense.alerts.changes", "AlertChange"),
    ("placesense.alerts.feed", "AlertFeed"),
    ("placesense.alerts.outbox", "Outbox"),
    ("placesense.alerts.dispatch", "Dispatcher"),
    ("placesense.alerts.channels.mqtt", "MqttChannel"),
    ("placesense.alerts.channels.webhook", "WebhookChannel"),
    ("placesense.alerts.channels.govuk_notify", "NotifySmsChannel"),
    ("placesense.alerts.channels.govuk_notify", "NotifyEmailChannel"),
    ("placesense.alerts.channels.smtp", "SmtpChannel"),
    ("placesense.alerts.channels.chat", "AppriseChannel"),
    ("rules.rota", "NotificationsConfig"),
    ("placesense.alerts.ack_links", "AckLinks"),
    ("placesense.basics.findings", "Finding"),
    ("anomaly.sensors", "SensorDetectors"),
    ("api.app", "create_app"),
    ("placesense.service", "Service"),
    ("placesense.settings", "Settings"),
    ("placesense.basics.clock", "EventClock"),
    ("placesense.basics.clock", "LiveClock"),
]


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_package_exports_exactly_its_public_names(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(EXPORTS[package])
    for name in module.__all__:
        assert getattr(module, name) is not None


@pytest.mark.parametrize(("module", "name"), ENTRY_POINTS)
def test_entry_points_the_composition_root_uses_exist(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name)


def test_every_cli_command_has_help() -> None:
    from placesense.cli import COMMANDS, build_parser

    parser = build_parser()
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def test_every_privacy_action_says_what_it_does() -> None:
    from placesense.cli import build_parser

    privacy = _subparsers(build_parser())["privacy"]
    actions = _subparsers(privacy)
    assert set(actions) == {"export", "delete-home", "retention", "audit-export"}
    for name, action in actions.items():
        assert action.description and len(action.description) > 60, name


def test_demo_help_states_the_defaults_it_uses() -> None:
    from placesense.cli import build_parser

    demo = _subparsers(build_parser())["demo"]
    for action in demo._actions:
        if action.help and "(default" in action.help:
            shown = action.help % {"default": action.default}
            assert f"(default {action.default})" in shown, action.dest


def test_serve_loads_no_tool() -> None:
    """The tools (bench, demo, doctor, broker-config, privacy) sit above the composition root: ``placesense
    serve``, its service and API, and the evaluation process it starts never import them."""
    code = (
        "import sys\n"
        "import api.app, placesense.evaluation_process, placesense.registration, placesense.service\n"
        "from placesense.cli import build_parser, _command_of\n"
        "build_parser(_command_of(['serve'])).parse_args(['serve'])\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('placesense.tools'))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.split() == []
