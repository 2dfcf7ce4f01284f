"""A live fleet, as ``placesense demo`` runs it: one simulation from the past into the future, published live,
resumable after a restart, with sensors reporting often enough to watch, and a drying bed whatever the season."""

from __future__ import annotations

import stat
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

from firmware_sim.fleet import build_fleet
from firmware_sim.publisher import publish
from firmware_sim.resume import Progress
from firmware_sim.simulation import Quirks, Simulation
from firmware_sim.timebase import now_ms, parse_rfc3339

from placesense.basics.timeunits import DAY_MS, HOUR_MS, MINUTE_MS
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually

from .test_publish import recording


def test_live_speed_sends_the_past_at_once_and_the_rest_when_it_falls_due(mosquitto: Mosquitto, unique: str) -> None:
    registry = build_fleet(1, 1, 1, seed=29, formats="canonical")
    now = now_ms()
    simulation = Simulation(registry, now - HOUR_MS, now + HOUR_MS, seed=29)
    past = [e for e in simulation.events() if e.send_ms <= now]
    # The past hour and one message just ahead of now: live publishing must wait for that one, not end early.
    ahead = [e for e in simulation.events() if e.send_ms > now][:1]
    assert past and ahead
    ahead[0] = type(ahead[0])(now_ms() + 1500, ahead[0].device, ahead[0].measurement)
    with recording(mosquitto.url, f"l-{unique}/#", f"rec-{unique}") as recorder:
        started_ms = now_ms()
        result = publish(iter([*past, *ahead]), list(registry.devices.values()), mosquitto.url,
                         topic_prefix=f"l-{unique}/", client_id=f"sim-{unique}", speed="live", statuses=False)
        assert result.total == len(past) + 1
        assert now_ms() >= ahead[0].send_ms, "the message ahead of now went out before its time"
        assert result.elapsed_s * 1000 >= ahead[0].send_ms - started_ms - 50
        eventually(lambda: len(recorder.snapshot()) == len(past) + 1, 20, "every message at the subscriber")


def test_a_resumed_run_publishes_exactly_what_the_stopped_one_had_not(tmp_path: Path) -> None:
    registry = build_fleet(1, 2, 1, seed=31, formats="canonical")
    start = parse_rfc3339("2026-12-01T06:00:00Z")
    end = start + DAY_MS

    def events() -> list[tuple[int, str, int | None]]:
        return [(e.send_ms, e.device.id, e.measurement.seq)
                for e in Simulation(registry, start, end, seed=31).events()]

    everything = events()
    marker = tmp_path / "progress.json"
    first = Progress(marker, start, end, seed=31)
    sent: list[tuple[int, str, int | None]] = []
    for event in first.remaining(Simulation(registry, start, end, seed=31).events()):
        sent.append((event.send_ms, event.device.id, event.measurement.seq))
        if len(sent) == len(everything) // 3:
            break  # stopped while the publisher held this one: a stop saves what was handed over before it
    first.save()  # what the simulator's SIGTERM handler does
    assert stat.S_IMODE(marker.stat().st_mode) == 0o600

    second = Progress(marker, start, end, seed=31)
    rest = [(e.send_ms, e.device.id, e.measurement.seq)
            for e in second.remaining(Simulation(registry, start, end, seed=31).events())]
    # Exactly the rest, starting again with the one message that was in the publisher's hands at the stop.
    assert sent[:-1] + rest == everything
    # A record of another simulation (another seed or window) is not applied to this one.
    assert Progress(marker, start, end, seed=32).sent_through_ms is None
    assert Progress(marker, start, end + DAY_MS, seed=31).sent_through_ms is None


def test_periodic_sensors_report_as_often_as_asked() -> None:
    registry = build_fleet(1, 2, 2, seed=37, formats="canonical")
    start = parse_rfc3339("2026-12-01T06:00:00Z")
    simulation = Simulation(registry, start, start + 6 * HOUR_MS, seed=37, quirks=Quirks(report_every_s=60))
    times: dict[str, list[int]] = defaultdict(list)
    for event in simulation.events():
        if event.device.kind in ("climate", "soil", "air"):
            times[event.device.id].append(event.measurement.ts_ms)
    assert {registry.devices[d].kind for d in times} == {"climate", "soil", "air"}
    for device, stamps in times.items():
        gaps = sorted(b - a for a, b in pairwise(stamps))
        assert MINUTE_MS - 30_000 <= gaps[len(gaps) // 2] <= MINUTE_MS + 30_000, (device, gaps[len(gaps) // 2])


def test_a_drying_out_bed_needs_water_within_days_even_in_december() -> None:
    registry = build_fleet(0, 3, 0, seed=7, formats="canonical")
    start = parse_rfc3339("2026-12-01T00:00:00Z")
    simulation = Simulation(registry, start, start + 6 * DAY_MS, seed=7, anomalies=["bed_drying_out@1"])
    injection = simulation.ground_truth[0]
    bed = registry.flowerbeds[injection.subject]
    moisture = [(e.measurement.ts_ms, e.measurement.metrics["soil_moisture_pct"]) for e in simulation.events()
                if e.device.id == injection.device]
    dry = [ts for ts, value in moisture if injection.start_ms <= ts and float(value) < bed.dry_below_pct]
    assert dry, "the bed never fell below its 'needs water' threshold in a December week"
    assert dry[0] - injection.start_ms <= 3 * DAY_MS
