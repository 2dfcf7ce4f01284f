"""Real homes' recorded lives (tests/data/homes) replayed through serve's evaluation core and alert lifecycle.

Each assertion is a count of alerts a care team would see: on the ordinary recorded life (played three times so
the routine detector is past its learning), and with one change injected into it. The recordings are of healthy
people: late risers, people who go out at night, homes with a few contacts and no PIR or bed mat.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from anomaly.routine import RoutineDetector
from devices.registry import Registry
from placesense.basics.clock import EventClock
from placesense.basics.timeunits import DAY_MS, HOUR_MS
from placesense.tools.evaluate.inject import Background, inject, looped
from placesense.tools.evaluate.real import MEANT, Raised, replay
from placesense.tools.evaluate.realhomes import RecordedHome, device_readings, load_home
from rules.config import RulesConfig

ROOT = Path(__file__).resolve().parents[1] / "data" / "homes"
HOMES = ("kasteren/house-b", "kasteren/house-c", "placelab/subject-1", "placelab/subject-2")


def _load(key: str) -> tuple[RecordedHome, Background]:
    home = load_home(ROOT / key, ROOT)
    return home, looped(home)


@pytest.fixture(scope="module")
def ordinary() -> dict[str, tuple[RecordedHome, Background, list[Raised]]]:
    """Every home's ordinary recorded life, once, with the alerts it raised."""
    runs = {}
    for key in HOMES:
        home, bg = _load(key)
        runs[key] = (home, bg, replay(home, bg, bg.activations, RulesConfig()))
    return runs


def _rules(raised: list[Raised]) -> Counter[str]:
    return Counter(alert.rule for alert in raised)


def test_every_recorded_home_replays_as_its_devices_send(ordinary: dict[str, tuple[RecordedHome, Background,
                                                                                  list[Raised]]]) -> None:
    home, bg, _ = ordinary["placelab/subject-1"]
    readings = list(device_readings(home, bg.activations, bg.start_ms, bg.start_ms + DAY_MS))
    by_device = Counter(r.device_id for r in readings)
    # every device reports its state when it joins and checks in about hourly: at least 24 messages a day each
    assert set(by_device) == {home.device_id(d) for d in home.devices}
    assert min(by_device.values()) >= 24
    assert all(r.subject == home.home_id and r.room for r in readings)


def test_an_ordinary_life_raises_few_alerts(ordinary: dict[str, tuple[RecordedHome, Background,
                                                                      list[Raised]]]) -> None:
    counts = {key: _rules(raised) for key, (_, _, raised) in ordinary.items()}
    # Sparse sensors: no home has motion sensors in every room, so none can say she is still in the bathroom.
    assert all(c["bathroom_stay"] == 0 for c in counts.values()), counts
    # A late riser (up between 04:25 and 12:40) gets no daily not-up or kitchen alert: one not-up on her second
    # morning, before anything was learned, in six weeks.
    assert counts["kasteren/house-b"]["not_up"] == 1
    assert counts["kasteren/house-b"]["no_kitchen_use"] == 0
    # A couch mat that fires while he is out (the labels show him out) is not him coming home: no inactivity.
    assert counts["kasteren/house-c"]["inactivity"] == 0
    # Appliances on plugs, cupboards and taps are kitchen use where there is no kettle.
    assert counts["placelab/subject-1"]["no_kitchen_use"] == counts["placelab/subject-2"]["no_kitchen_use"] == 0
    # No device ever reads as offline: check-ins keep every device heard.
    assert all(c["device_offline"] == 0 for c in counts.values())
    # She comes home in the small hours on most weeks: going out at night while up and about is her normal.
    assert counts["kasteren/house-b"]["night_door"] == 0
    # A busy day (visitors, more kitchen use, more time out) and an early night on its own are no routine change.
    assert all(c["routine_change"] == 0 for c in counts.values()), counts
    totals = {key: sum(c.values()) for key, c in counts.items()}
    assert totals == {
        "kasteren/house-b": 1, "kasteren/house-c": 3, "placelab/subject-1": 0, "placelab/subject-2": 2,
    }, counts


def test_the_detector_learns_homes_without_a_bed_mat_or_pir() -> None:
    for key in ("placelab/subject-1", "placelab/subject-2"):
        home, bg = _load(key)
        assert not any(spec.kind in ("motion", "bed") for spec in home.devices.values())
        clock = EventClock()
        detector = RoutineDetector(Registry.from_data(home.registry_data()), clock)
        for reading in device_readings(home, bg.activations, bg.start_ms, bg.end_ms):
            clock.observe(reading.ts_ms)
            detector.process(reading)
            detector.tick(reading.ts_ms)
        status = detector.warm_up(home.home_id)
        assert status["ready"] and status["days_learned"] >= 30, (key, status)


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("kasteren/house-b", "late_morning"),  # a late riser, three hours past her latest usual morning
        ("kasteren/house-b", "silence"),  # a home with a chair mat: its hourly check-ins are not her moving
        ("kasteren/house-c", "silence"),
        ("placelab/subject-1", "night_wandering"),  # cupboards, fridge and appliances only
        ("kasteren/house-c", "front_door_at_night"),
        ("kasteren/house-b", "more_bathroom_visits"),  # counted by the flush
    ],
)
def test_an_injected_change_is_caught_by_the_rule_meant_for_it(key: str, kind: str) -> None:
    home, bg = _load(key)
    done = inject(bg, kind)
    assert done is not None
    activations, injected = done
    raised = replay(home, bg, activations, RulesConfig())
    window = [r for r in raised if injected.start_ms - HOUR_MS <= r.at_ms <= injected.end_ms + DAY_MS]
    own = [r for r in window if r.rule in MEANT[kind]]
    assert own, (kind, [(r.rule, r.message) for r in window])


def test_quick_returns_to_the_toilet_tell_of_more_visits_within_two_days() -> None:
    """House B's injected extra visits are copies 20-120 minutes after her own: the frequency (visits within two
    hours of the one before) shows it two days sooner than the daily totals did (75 h)."""
    home, bg = _load("kasteren/house-b")
    done = inject(bg, "more_bathroom_visits")
    assert done is not None
    activations, injected = done
    raised = replay(home, bg, activations, RulesConfig())
    own = [r for r in raised if r.rule == "bathroom_visits" and r.at_ms >= injected.start_ms - HOUR_MS]
    assert own and own[0].at_ms - injected.start_ms <= 36 * HOUR_MS, [(r.at_ms, r.message) for r in own]
    assert "came within two hours of the one before" in own[0].message


def test_evaluate_real_prints_the_table_and_a_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from placesense.cli import main

    assert main(["evaluate", "--real", str(ROOT / "placelab" / "subject-1")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["home", "days", "alerts/mo", "false/mo"]
    assert any(line.startswith("night_wandering") for line in out)
    report = json.loads(out[-1])
    [home] = report["homes"]
    assert home["home"] == "subject-1" and home["days"] > 40
    assert {i["type"] for i in home["injections"]} == set(MEANT)
    assert report["injected"] == 5 and report["caught_by_its_rule"] >= 4
    for alert in home["alert_list"]:
        assert isinstance(alert["true"], bool) and alert["labels_show"] and alert["message"]


def test_evaluate_real_says_plainly_when_there_is_nothing_to_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from placesense.cli import main

    assert main(["evaluate", "--real", str(tmp_path)]) == 2
    assert "no recorded homes" in capsys.readouterr().err
