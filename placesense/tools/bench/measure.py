"""One bench run from start to JSON: the parts in order (raw InfluxDB, raw MQTT, ingest's receive path alone,
pipeline capacity, pipeline latency, learned state), then the contract object DESIGN.md fixes with its details
and the machine it ran on. It assembles figures; how each is taken is in ``run``, ``meters`` and ``state_size``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path
from typing import Any

import psutil

from placesense.tools.bench.progress import progress
from placesense.tools.bench.run import BenchRun
from placesense.tools.bench.state_size import state_bytes


def machine() -> dict[str, Any]:
    """The machine the figures were measured on: CPUs and their model, memory, Python, the system."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }



def measure(bench: BenchRun) -> dict[str, Any]:
    args = bench.args
    started = time.monotonic()
    influx_rate = bench.raw_influx()
    mqtt_rate, raw_publish_rate = bench.raw_mqtt()
    ingest_receive_rate, _ = bench.raw_mqtt("ingest-receive")
    capacity, drain_dead = bench.pipeline_capacity()
    live_rate = args.live_rate if args.live_rate is not None else round(capacity / 2, -2) or 100.0
    live = bench.pipeline_live(live_rate)
    found = sum(bench.count_stored(db) for db in bench.databases)
    progress(f"learned state: a simulated {args.state_days}-day life of 4 homes, 4 flowerbeds and 4 air sites")
    per_subject = state_bytes(args.state_days)
    progress("learned state: " + ", ".join(f"{v:,.0f} bytes per {k}" for k, v in per_subject.items()))
    published = 2 * args.messages
    lost = published - found
    progress(f"InfluxDB holds {found:,} of the {published:,} readings the pipeline was sent (lost {lost})")
    slower_raw = min(mqtt_rate, influx_rate)
    return {
        "messages": args.messages,
        "devices": args.devices,
        "formats": list(bench.formats),
        "throughput_msgs_per_s": round(capacity, 1),
        "publish_to_stored_ms": live["publish_to_stored_ms"],
        "event_to_alert_ms": live["event_to_alert_ms"],
        "peak_rss_mb": round(bench.rss.peak_bytes / 2**20, 1),
        "peak_rss_mb_by_process": {name: round(v / 2**20, 1) for name, v in bench.rss.peak_parts.items()},
        "lost": lost,
        "raw": {
            "mqtt_receive_msgs_per_s": round(mqtt_rate, 1),
            "influx_write_points_per_s": round(influx_rate, 1),
            "publisher_msgs_per_s": round(raw_publish_rate, 1),
            # not a raw limit: ingest's own receive path with nothing behind it, to show where the rest goes
            "ingest_receive_msgs_per_s": round(ingest_receive_rate, 1),
        },
        "ratio": round(capacity / slower_raw, 3) if slower_raw else 0.0,
        # CPU each process spent per message while the backlog drained; where the two cores went
        "drain_cpu_us_per_msg": bench.drain_cpu_us,
        "live": live,
        # the saved evaluation state (docs/state.md) per subject after a simulated life of --state-days days,
        # and of the live part's whole fleet per device
        "state_bytes_per": per_subject,
        "state_days": args.state_days,
        "state_bytes_per_device": live["state_bytes_per_device"],
        "published": published,
        "dead_letters": drain_dead + int(live["dead_letters"]),
        "machine": machine(),
        "elapsed_s": round(time.monotonic() - started, 1),
    }

