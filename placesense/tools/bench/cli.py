"""The ``placesense bench`` sub-command: its options, their checks, the servers it starts when none are given,
and a clean end on SIGTERM or a closed terminal (every server, helper and rules process it started is stopped).
Prints the result's JSON line; what is measured and how is ``measure``'s and ``run``'s.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from devices.registry import Registry
from placesense.tools.bench.measure import measure
from placesense.tools.bench.progress import BenchError, progress
from placesense.tools.bench.run import BenchRun
from placesense.tools.bench.workload import BENCH_FORMATS, Workload, build_registry, parse_formats
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.process import running


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Measure the whole pipeline (decode, validate, durable write to InfluxDB, ack, sinks) against the raw\n"
        "limits of the same broker and InfluxDB: a bare paho subscriber's receive rate and InfluxDB's write rate\n"
        "in 5,000-point batches. Capacity is measured by draining a backlog; latency while a separate publisher\n"
        "process publishes live. Starts its own mosquitto and InfluxDB in a temporary folder unless\n"
        "--mqtt-url and --influx-url are given. Progress goes to stderr; the last stdout line is one JSON object:\n"
        "messages, devices, throughput_msgs_per_s, publish_to_stored_ms {p50,p99}, event_to_alert_ms {p50,p99},\n"
        "peak_rss_mb (the service's two processes summed), lost, raw {mqtt_receive_msgs_per_s,\n"
        "influx_write_points_per_s}, ratio (pipeline rate / lower raw rate), plus details: peak_rss_mb_by_process,\n"
        "drain_cpu_us_per_msg (CPU per message of each process while the backlog drained), live. See\n"
        "docs/benchmarks.md for recorded results."
    )
    parser.add_argument("--messages", type=int, default=100_000, metavar="N",
                        help="messages per timed part (default: %(default)s)")
    parser.add_argument("--devices", type=int, default=2_000, metavar="D",
                        help="simulated devices, messages go round-robin over them (default: %(default)s)")
    parser.add_argument("--formats", default=",".join(BENCH_FORMATS),
                        help="source formats, comma-separated, devices spread over them (default: %(default)s)")
    parser.add_argument("--mqtt-url", help="use this broker (mqtt://host:port) instead of starting one")
    parser.add_argument("--influx-url", help="use this InfluxDB (http://host:port) instead of starting one")
    parser.add_argument("--live-rate", type=float, default=None, metavar="MSGS_PER_S",
                        help="publish rate of the latency part; 0 = as fast as the broker takes (default: half the "
                        "measured pipeline capacity, so latency is measured below saturation, not in a growing queue)")
    parser.add_argument("--inflight", type=int, default=1000,
                        help="the publisher's bound on unacknowledged QoS 1 messages (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="deadline for each part to finish (default: 60 s + 2 ms per message)")
    parser.add_argument("--state-days", type=int, default=30, metavar="DAYS",
                        help="simulated days of life before the saved state is measured per home, bed and site "
                        "(default: %(default)s)")
    parser.add_argument("--stall-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="end the run with an error naming the stage when no count moves for this long "
                        "(default: %(default)s)")
    parser.add_argument("--workdir", type=Path,
                        help="keep servers' data, spool and SQLite here (default: a temporary folder, removed after)")


def run(args: argparse.Namespace) -> int:
    try:
        formats = parse_formats(args.formats)
    except ValueError as exc:
        raise BenchError(str(exc)) from exc
    if args.messages < 1 or args.devices < 1:
        raise BenchError("--messages and --devices must be at least 1")
    if bool(args.mqtt_url) != bool(args.influx_url):
        raise BenchError("give both --mqtt-url and --influx-url, or neither to start local servers")
    if args.timeout is None:
        args.timeout = 60.0 + args.messages * 0.002
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="placesense-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # SIGTERM (and a closed terminal) end the run like Ctrl-C: through every ``finally``, so the servers, the
    # service's rules process and the workers the bench started are stopped.
    previous = {signum: signal.signal(signum, _interrupted) for signum in (signal.SIGTERM, signal.SIGHUP)}
    progress(f"building {args.devices:,} devices over {', '.join(formats)}; working in {workdir}")
    registry = build_registry(args.devices, formats)
    # Event times end a minute before now: inside ingest's accepted window, and distinct per message.
    base_ms = int(time.time() * 1000) - args.messages - 60_000
    workload = Workload(registry, args.messages, base_ms)
    try:
        if args.mqtt_url:
            result = _measure_with(args, formats, registry, workload, args.mqtt_url, args.influx_url, workdir, {})
        else:
            broker = Mosquitto(workdir / "mosquitto")
            influx = InfluxDB(workdir / "influxdb")
            progress(f"starting mosquitto on {broker.url} and InfluxDB on {influx.url}")
            with running(broker, influx):
                pids = {"mosquitto": broker.proc.process, "influxdb": influx.proc.process}
                server_pids = {name: p.pid for name, p in pids.items() if p is not None}
                result = _measure_with(args, formats, registry, workload, broker.url, influx.url, workdir,
                                       server_pids)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(orjson.dumps(result).decode(), flush=True)
    return 0


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _measure_with(
    args: argparse.Namespace,
    formats: tuple[str, ...],
    registry: Registry,
    workload: Workload,
    mqtt_url: str,
    influx_url: str,
    workdir: Path,
    server_pids: dict[str, int],
) -> dict[str, Any]:
    bench = BenchRun(args, formats, registry, workload, mqtt_url, influx_url, workdir, server_pids=server_pids)
    try:
        return measure(bench)
    finally:
        bench.clean_up()
