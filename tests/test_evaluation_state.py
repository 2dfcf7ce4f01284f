"""The evaluation's saved state: every part round-trips to the same future findings, and an old, corrupt,
truncated or foreign file gives a clear note and a fresh start for what it cannot give, never a crash."""

from __future__ import annotations

import pickle
import shutil
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest

from devices.readings import Reading
from devices.registry import Registry, load_registry
from placesense import evaluation_state
from placesense.basics.findings import Finding
from placesense.basics.timeunits import DAY_MS
from placesense.evaluation_core import EvaluationCore, EvaluationSpec
from placesense.statecodec import StateCodecError, encode
from rules.config import RulesConfig
from tests.helpers import sim_readings

START_MS = 1_704_067_200_000  # Monday 1 January 2024
DAYS = 16
LEGACY = Path(__file__).parent / "data" / "state" / "release-0.1"
LEGACY_JSON = Path(__file__).parent / "data" / "state" / "release-0.1-json"


@pytest.fixture(scope="module")
def fleet() -> tuple[Registry, list[Reading]]:
    """Homes, beds and air sites living a fortnight, with a change of each kind near the end."""
    from firmware_sim.fleet import build_fleet

    registry = build_fleet(homes=4, beds=4, air_sites=2, seed=3, formats="canonical")
    homes, beds, sites = sorted(registry.homes), sorted(registry.flowerbeds), sorted(registry.air_sites)
    late = DAYS - 3
    anomalies = [
        f"late_wakeup:{homes[0]}@{late}", f"no_movement:{homes[1]}@{late + 1}", f"cold_home:{homes[2]}@{late}",
        f"device_offline:{homes[3]}@{late + 1}", f"bed_drying_out:{beds[0]}@{late - 1}",
        f"pollution_episode:{sites[0]}@{late}", f"night_wandering:{homes[0]}@{late + 1}",
        f"stuck_sensor:{beds[1]}@{late}",
    ]
    end = START_MS + DAYS * DAY_MS
    return registry, list(sim_readings(registry, START_MS, end, seed=3, anomalies=anomalies))


def _spec(registry: Registry, state_dir: Path) -> EvaluationSpec:
    return EvaluationSpec(registry, RulesConfig(), "event", state_dir, 30)


def _run(core: EvaluationCore, readings: list[Reading]) -> list[Finding]:
    found: list[Finding] = []
    for start in range(0, len(readings), 500):
        found += core.readings([tuple(r) for r in readings[start:start + 500]])
        found += core.tick()
    return found


def _key(finding: Finding) -> tuple[Any, ...]:
    return finding.rule, finding.subject, finding.at_ms, finding.active, finding.message


def _state_of(core: EvaluationCore) -> bytes:
    return orjson.dumps(encode({name: part.state() for name, part in core._parts().items()}))


def test_every_part_saves_and_restores_to_the_same_future(
    fleet: tuple[Registry, list[Reading]], tmp_path: Path
) -> None:
    registry, readings = fleet
    cut = int(len(readings) * 0.8)
    running = EvaluationCore(_spec(registry, tmp_path))
    _run(running, readings[:cut])
    running.applied_seq = 41
    assert running.save()
    assert stat.S_IMODE(evaluation_state.state_path(tmp_path).stat().st_mode) == 0o600

    restarted = EvaluationCore(_spec(registry, tmp_path))
    notes = restarted.restore()
    assert notes == [f"restored home, watering, daqi, health, routine, sensors from "
                     f"{evaluation_state.state_path(tmp_path)} (up to journal batch 41)"]
    assert restarted.applied_seq == 41
    assert restarted.clock.now_ms() == running.clock.now_ms()

    after_running = _run(running, readings[cut:])
    after_restart = _run(restarted, readings[cut:])
    # the injected changes near the end are found, and found the same by the restarted evaluation
    assert {f.rule for f in after_running if f.active} >= {
        "not_up", "cold_home", "daqi", "device_offline", "sensor_anomaly_soil_moisture_pct", "routine_no_movement",
    }
    assert sorted(map(_key, after_restart)) == sorted(map(_key, after_running))
    assert _state_of(restarted) == _state_of(running)


def test_a_corrupt_truncated_or_foreign_file_starts_fresh_with_a_plain_note(
    fleet: tuple[Registry, list[Reading]], tmp_path: Path
) -> None:
    registry, readings = fleet
    core = EvaluationCore(_spec(registry, tmp_path))
    _run(core, readings[:5000])
    core.save()
    good = evaluation_state.state_path(tmp_path).read_bytes()
    cases = {
        "garbage": (b"\x00\x01 not json", "is not valid JSON"),
        "truncated": (good[: len(good) // 2], "is not valid JSON (cut short or damaged"),
        "foreign": (orjson.dumps({"hello": "world"}), "is not a placesense evaluation state file"),
        "future version": (orjson.dumps({**orjson.loads(good), "version": 99}), "has format version 99"),
    }
    for name, (content, words) in cases.items():
        evaluation_state.state_path(tmp_path).write_bytes(content)
        fresh = EvaluationCore(_spec(registry, tmp_path))
        notes = fresh.restore()
        assert len(notes) == 1 and words in notes[0], (name, notes)
        assert fresh.applied_seq == 0 and fresh.routine.homes() == []


def test_one_unreadable_part_starts_fresh_and_the_others_are_restored(
    fleet: tuple[Registry, list[Reading]], tmp_path: Path
) -> None:
    registry, readings = fleet
    core = EvaluationCore(_spec(registry, tmp_path))
    _run(core, readings[:20000])
    core.save()
    body = orjson.loads(evaluation_state.state_path(tmp_path).read_bytes())
    body["parts"]["sensors"]["state"] = {"$o": "os:system", "v": {}}  # someone wrote a pickle-style payload
    body["parts"]["daqi"]["version"] = 7  # a part from a release that changed its shape
    evaluation_state.state_path(tmp_path).write_bytes(orjson.dumps(body))
    restarted = EvaluationCore(_spec(registry, tmp_path))
    notes = restarted.restore()
    assert any("part 'sensors' cannot be read" in n and "not a placesense class" in n for n in notes), notes
    assert any("part 'daqi' has version 7" in n for n in notes), notes
    assert notes[-1].startswith("restored home, watering, health, routine from")
    assert restarted.routine.homes() == core.routine.homes()


def test_the_previous_release_routine_pickle_still_loads_once_then_is_gone(tmp_path: Path) -> None:
    shutil.copytree(LEGACY, tmp_path / "state")
    state_dir = tmp_path / "state"
    registry = load_registry(state_dir / "registry.yaml")
    core = EvaluationCore(_spec(registry, state_dir))
    notes = core.restore()
    assert any("the previous release's format" in n for n in notes), notes
    assert core.routine.homes() == sorted(registry.homes)
    assert all(core.routine.warm_up(h)["days_learned"] == 15 for h in registry.homes)
    assert all(core.routine._homes[h].tracker.presence.last_front_door_ms for h in registry.homes)
    assert core.save()
    assert not (state_dir / evaluation_state.LEGACY_ROUTINE_FILE).exists()  # residents' data: not left behind
    again = EvaluationCore(_spec(registry, state_dir))
    again.restore()
    assert again.routine.homes() == sorted(registry.homes)


def test_the_json_state_written_before_home_care_was_split_is_restored(tmp_path: Path) -> None:
    """``release-0.1-json`` was saved by the release whose home-care picture was ``rules.home:_Home``."""
    from rules.home.picture import HomePicture

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    shutil.copy(LEGACY_JSON / evaluation_state.STATE_FILE, state_dir)
    registry = load_registry(LEGACY / "registry.yaml")
    core = EvaluationCore(_spec(registry, state_dir))
    notes = core.restore()
    assert notes[-1].startswith("restored home, watering, daqi, health, routine, sensors from"), notes
    homes = core.rules.home._homes
    assert sorted(homes) == sorted(registry.homes)
    assert all(isinstance(home, HomePicture) and len(home.wake_minutes) >= 10 for home in homes.values())
    # the devices' states and her last activity, kept among the picture's own fields then, are its presence now
    assert all(home.presence.device_state and home.presence.last_activity_ms for home in homes.values())
    trackers = [core.routine._homes[h].tracker for h in registry.homes]
    assert all(t.presence.device_state and t.presence.last_front_door_ms for t in trackers)
    assert core.save()
    assert b"rules.home:_Home" not in evaluation_state.state_path(state_dir).read_bytes()


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("this must never run",))

    (tmp_path / evaluation_state.LEGACY_ROUTINE_FILE).write_bytes(
        pickle.dumps({"version": 2, "homes": {"h-0001": Payload()}})
    )
    saved = evaluation_state.load(tmp_path)
    assert saved.parts == {}
    assert "builtins.print is not allowed" in saved.problems[0]


def _everything_in(core: EvaluationCore) -> dict[str, dict[str, bytes]]:
    """Every attribute of every part that can be saved as state, whether or not its ``state()`` names it: the
    registry, config, clock and locks cannot be encoded and are left out, anything else learned is in."""
    found: dict[str, dict[str, bytes]] = {}
    for name, part in {**core._parts(), "engine": core.rules}.items():
        attributes = {**getattr(part, "__dict__", {})}
        found[name] = {}
        for attribute, value in attributes.items():
            derived = getattr(part, "DERIVED", frozenset())  # caches of the registry, rebuilt after a restart
            if attribute in ("resumed_at_ms", *derived) or isinstance(value, Registry):
                continue
            try:
                found[name][attribute] = orjson.dumps(encode(value))
            except (StateCodecError, TypeError):
                continue  # config, clients and locks: built again from the spec, not saved
    return found


def test_no_part_keeps_state_that_its_saved_state_leaves_out(
    fleet: tuple[Registry, list[Reading]], tmp_path: Path
) -> None:
    # A new field of learned state that ``state()`` forgets would start empty after every restart: this compares
    # each part's whole self right after a restore with what was running when it saved.
    registry, readings = fleet
    running = EvaluationCore(_spec(registry, tmp_path))
    _run(running, readings[: int(len(readings) * 0.9)])
    assert running.save()
    restarted = EvaluationCore(_spec(registry, tmp_path))
    restarted.restore()
    before, after = _everything_in(running), _everything_in(restarted)
    for part, attributes in before.items():
        for attribute, saved in attributes.items():
            assert after[part].get(attribute) == saved, f"{part}.{attribute} is not restored"


def test_air_windows_missing_from_the_state_are_rebuilt_from_influxdb(
    influx: Any, influx_db: str, tmp_path: Path
) -> None:
    import time

    import httpx

    from placesense.storage.influx import InfluxConfig

    registry = Registry.from_data({
        "air_sites": [{"id": "air-01", "name": "High Street", "lat": 53.05, "lon": -2.99}],
        "devices": [{"id": "air-01-aq", "domain": "air", "subject": "air-01", "kind": "air"}],
    })
    now = int(time.time() * 1000)
    lines = "\n".join(
        f"air,device=air-01-aq,subject=air-01,source=canonical no2_ugm3=250,pm2_5_ugm3=40 {now - i * 600_000}"
        for i in range(150)  # 25 hours, every 10 minutes
    )
    httpx.post(f"{influx.url}/query", data={"q": f'CREATE DATABASE "{influx_db}"'}).raise_for_status()
    httpx.post(f"{influx.url}/write", params={"db": influx_db, "precision": "ms"}, content=lines).raise_for_status()
    evaluation_state.state_path(tmp_path).write_bytes(b"{ damaged")  # the saved state is lost
    spec = EvaluationSpec(registry, RulesConfig(), "live", tmp_path, 30, influx=InfluxConfig(influx.url, influx_db))
    core = EvaluationCore(spec)
    notes = core.restore()
    assert any("rebuilt the air-quality windows of 1 sites from 150 readings" in n for n in notes), notes
    site = core.air_quality()[0]
    bands = {p.metric: (p.band, p.index) for p in site.pollutants}
    assert bands["no2_ugm3"] == ("Moderate", 4) and bands["pm2_5_ugm3"] == ("Moderate", 4)
