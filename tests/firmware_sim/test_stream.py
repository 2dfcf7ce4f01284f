"""The stream as a whole: deterministic, firmware-like (seq, time, battery), valid metrics, encodable."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable

from firmware_sim.encoders import ENCODERS, SimMeasurement, encode
from firmware_sim.fleet import build_fleet
from firmware_sim.simulation import Quirks, Simulation, generate, ground_truth

from devices.readings import METRIC_UNITS
from devices.registry import DeviceSpec
from placesense.basics.timeunits import DAY_MS

from .conftest import START_MS, Run


def _fingerprint(stream: Iterable[tuple[DeviceSpec, SimMeasurement]]) -> list[tuple[object, ...]]:
    return [(device.id, m.ts_ms, dict(m.metrics), m.battery_pct, m.seq) for device, m in stream]


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    registry = build_fleet(2, 2, 1, seed=3)
    end = START_MS + 3 * DAY_MS
    first = _fingerprint(generate(registry, START_MS, end, seed=3, anomalies=["late_wakeup@1"]))
    second = _fingerprint(generate(registry, START_MS, end, seed=3, anomalies=["late_wakeup@1"]))
    other = _fingerprint(generate(registry, START_MS, end, seed=4, anomalies=["late_wakeup@1"]))
    assert first == second
    assert first != other
    assert ground_truth(registry, START_MS, end, seed=3, anomalies=["late_wakeup@1"]) == ground_truth(
        registry, START_MS, end, seed=3, anomalies=["late_wakeup@1"]
    )


def test_iterating_a_simulation_twice_gives_the_same_events(normal_run: Run) -> None:
    again = list(normal_run.simulation.events())
    assert [(e.send_ms, e.device.id, e.measurement) for e in again] == [
        (e.send_ms, e.device.id, e.measurement) for e in normal_run.events
    ]


def test_per_device_time_strictly_increases_and_seq_is_contiguous(normal_run: Run) -> None:
    by_device: dict[str, list[tuple[int, int | None, float | None]]] = defaultdict(list)
    previous_send = -1
    for event in normal_run.events:
        assert event.send_ms >= previous_send, "the stream is in broker-arrival order"
        previous_send = event.send_ms
        m = event.measurement
        assert isinstance(m.ts_ms, int)
        by_device[event.device.id].append((m.ts_ms, m.seq, m.battery_pct))
    assert set(by_device) == set(normal_run.registry.devices), "every device sends something"
    for device_id, readings in by_device.items():
        stamps = [ts for ts, _, _ in readings]
        assert all(b > a for a, b in itertools.pairwise(stamps)), device_id
        assert [seq for _, seq, _ in readings] == list(range(1, len(readings) + 1)), device_id
        batteries = [battery for _, _, battery in readings if battery is not None]
        assert all(b <= a for a, b in itertools.pairwise(batteries)), device_id
        if batteries:
            assert 0 < batteries[-1] <= batteries[0] <= 100
            assert batteries[0] - batteries[-1] < 5, "batteries drain slowly"


def test_timestamps_stay_inside_the_window(normal_run: Run) -> None:
    simulation = normal_run.simulation
    skew_ms = round(simulation.quirks.clock_skew_max_s * 1000)
    for event in normal_run.events:
        assert simulation.start_ms - skew_ms <= event.measurement.ts_ms < simulation.end_ms + skew_ms
        assert simulation.start_ms <= event.send_ms < simulation.end_ms


def test_metrics_are_known_and_in_range(normal_run: Run) -> None:
    for event in normal_run.events:
        assert event.measurement.metrics, event
        for name, value in event.measurement.metrics.items():
            unit, _, low, high = METRIC_UNITS[name]
            assert low <= float(value) <= high, (event.device.id, name, value)
            assert isinstance(value, bool) == (unit == "bool"), (name, value)


def test_every_message_encodes_where_an_encoder_exists(normal_run: Run) -> None:
    for event in normal_run.events[:20_000]:
        if event.device.format in ENCODERS:
            topic, payload = encode(event.device, event.measurement, "t/")
            assert topic.startswith("t/") and payload


def test_volume_per_home_is_a_few_tens_of_thousands_a_month(normal_run: Run) -> None:
    per_home: dict[str, int] = defaultdict(int)
    for event in normal_run.events:
        if event.device.domain == "home":
            per_home[event.device.subject] += 1
    for count in per_home.values():
        assert 10_000 < count < 60_000


def test_outages_buffer_or_lose_readings_and_are_labelled() -> None:
    registry = build_fleet(2, 2, 1, seed=8, formats="mix", encoders=("canonical", "zigbee2mqtt", "ttn", "chirpstack"))
    simulation = Simulation(registry, START_MS, START_MS + 10 * DAY_MS, seed=8,
                            quirks=Quirks(clock_skew_max_s=0, offline_per_device_month=6))
    outages = [i for i in simulation.ground_truth if i.type == "device_offline"]
    assert len(outages) >= len(registry.devices)
    events = list(simulation.events())
    for outage in outages:
        device = registry.devices[outage.device or ""]
        inside = [e for e in events if e.device.id == device.id and outage.covers(e.measurement.ts_ms)]
        if device.format == "zigbee2mqtt":
            assert not inside, "Zigbee devices lose what they see while offline"
        else:
            assert all(e.send_ms >= outage.end_ms for e in inside), "buffered readings arrive after the outage"
