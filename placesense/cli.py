"""The ``placesense`` command line.

Each sub-command lives in the room that owns it, in a small module with ``configure(parser)`` and
``run(args) -> int``; this file only lists them and imports the one that is run, so ``placesense --help`` stays
fast and ``placesense serve`` never loads a tool (``placesense.tools``: bench, demo, doctor, broker-config,
privacy).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Iterable, Sequence

from placesense import __version__
from placesense.basics.errors import PlacesenseError
from placesense.basics.redact import RedactingFormatter, redact

# name -> (module with configure/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("placesense.serve_cli", "run ingest and the API, with rules and anomaly detection in a child process"),
    "simulate": ("firmware_sim.cli", "run simulated device firmware that publishes over MQTT"),
    "detect": ("anomaly.cli", "score a timestamp,value CSV with the streaming anomaly detector"),
    "evaluate": ("placesense.tools.evaluate.cli", "measure detection on simulated homes, recorded real homes (--real), "
                 "real street data (--street) and labelled series (--detect)"),
    "bench": ("placesense.tools.bench.cli", "measure the whole pipeline against the raw broker and InfluxDB limits"),
    "grafana": ("grafana.cli", "build or push the Grafana dashboards"),
    "doctor": ("placesense.tools.doctor", "check the broker, InfluxDB, database and config, and say what to fix"),
    "demo": ("placesense.tools.demo", "start a local broker, InfluxDB, placesense and a simulated fleet"),
    "broker-config": ("placesense.tools.broker_config",
                      "write mosquitto accounts, ACLs and TLS files from the device registry"),
    "privacy": ("placesense.tools.privacy.cli", "retention, subject-access export, erasure of a home, audit export"),
}


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; only the sub-commands named in ``commands`` (every one when None) are imported
    and get their options, the others are listed by name and help line."""
    chosen = set(COMMANDS if commands is None else commands)
    parser = argparse.ArgumentParser(
        prog="placesense",
        description="placesense: sensors for people and places. Settings come from PLACESENSE_* environment "
        "variables and the TOML file named by PLACESENSE_CONFIG; see README.md.",
    )
    parser.add_argument("--version", action="version", version=f"placesense {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name in chosen:
            module = importlib.import_module(module_name)
            module.configure(command)
            command.set_defaults(_run=module.run)
    return parser


def _command_of(argv: Sequence[str]) -> list[str]:
    """The sub-command ``argv`` names: its first word that is not an option (the top level takes no values)."""
    for word in argv:
        if not word.startswith("-"):
            return [word] if word in COMMANDS else []
    return []


def setup_logging(verbose: bool, level: int | None = None) -> None:
    """Log lines to stderr; ``level`` (the evaluation process passes serve's) overrides ``verbose``."""
    handler = logging.StreamHandler(sys.stderr)
    # Every line, tracebacks included, with URLs' passwords masked: libraries quote URLs in their errors.
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    logging.basicConfig(level=level if level is not None else logging.DEBUG if verbose else logging.INFO,
                        handlers=[handler])
    # Libraries' request-by-request chatter drowns the lines an operator needs.
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(words))
    args = parser.parse_args(words)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose)
    try:
        return int(args._run(args))
    except PlacesenseError as exc:
        print(f"placesense {args.command}: {redact(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
