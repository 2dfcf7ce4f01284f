"""The rules config: built-in defaults, the example file, overrides, and clear errors at start."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from placesense.basics.errors import ConfigError
from rules.config import RulesConfig, WakeRule, WateringRule, load_rules, rules_from_data

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "rules.example.yaml"


def test_no_file_means_built_in_defaults() -> None:
    config = load_rules(None)
    assert config == RulesConfig()
    assert config.wake.deadline == time(9, 30) and config.cold_home.below_c == 16
    assert config.offline.after_minutes == {"home": 180, "soil": 120, "air": 60}


def test_example_file_loads_and_overrides_per_subject() -> None:
    config = load_rules(EXAMPLE)
    assert config.section(WakeRule, "h-3fa2c1").deadline == time(10, 30)
    assert config.section(WakeRule, "h-3fa2c1").learn is False
    assert config.section(WakeRule, "h-other").deadline == time(9, 30)
    assert config.section(WateringRule, "bed-007").predict_hours == 12
    assert config.escalation_after_ms("not_up", "care", "h-1") == 30 * 60_000


def test_device_overrides_win_over_subject_overrides() -> None:
    config = rules_from_data({"subjects": {"h-1": {"wake": {"deadline": "10:00"}}}})
    merged = config.section(WakeRule, "h-1", {"wake": {"margin_minutes": 30}})
    assert (merged.deadline, merged.margin_minutes) == (time(10, 0), 30)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"wake": {"deadline": 660}}, "write times of day in quotes"),
        ({"wake": {"dedline": "09:00"}}, "wake.dedline: Extra inputs are not permitted"),
        ({"subjects": {"h-1": {"wakeup": {}}}}, "unknown rule 'wakeup'"),
        ({"subjects": {"h-1": {"cold_home": {"below_c": "cold"}}}}, "subjects.h-1.cold_home: below_c"),
        ({"battery": {"warning_below_pct": 5}}, "critical_below_pct < warning_below_pct"),
        ({"night_door": {"night": {"start": "23:00", "end": "23:00"}}}, "window would be empty"),
    ],
)
def test_invalid_rules_fail_with_the_place_named(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="invalid rules") as caught:
        rules_from_data(data)
    assert message in str(caught.value)


def test_bad_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("wake: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_rules(path)
    with pytest.raises(ConfigError, match="cannot read the rules file"):
        load_rules(tmp_path / "missing.yaml")
