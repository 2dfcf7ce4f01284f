"""Rotas as a rules file writes them: weekday shifts, a night shift across midnight, the whole escalation chain,
and every mistake named where it is, when the file loads and again against the registry and the channels."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from placesense.basics.errors import ConfigError
from rules.config import rules_from_data
from rules.rota import NotificationsConfig

LONDON = ZoneInfo("Europe/London")
PEOPLE = {
    "amira": {"name": "Amira (day carer)", "sms": "07700 900001"},
    "ben": {"name": "Ben (night carer)", "sms": "07700 900002"},
    "cara": {"name": "Cara (weekend carer)", "email": "cara@council.example"},
    "lead": {"name": "Dee (team leader)", "sms": "07700 900004"},
    "manager": {"name": "Eve (on-call manager)", "sms": "07700 900005"},
}


def _config(**rota: Any) -> NotificationsConfig:
    body = {"name": "north", "audience": "care", **rota}
    data = {"notifications": {"people": PEOPLE, "rotas": [body]}}
    return rules_from_data(data).notifications


def _at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=LONDON).timestamp() * 1000)


WEEK = _config(
    shifts=[
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "20:00", "chain": ["amira", "lead"]},
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "20:00", "end": "08:00",
         "chain": ["ben", "lead", "manager"]},
        {"days": ["sat", "sun"], "chain": ["cara", "manager"]},
    ],
    fallback=["manager"],
)


@pytest.mark.parametrize(
    ("moment", "first"),
    [
        ("2026-12-02T10:00", "amira"),  # a Wednesday morning: the weekday day shift
        ("2026-12-02T23:30", "ben"),  # Wednesday night
        ("2026-12-03T02:00", "ben"),  # Thursday 02:00 is still Wednesday's night shift
        ("2026-12-05T02:00", "ben"),  # Saturday 02:00 belongs to Friday's night shift, which started on a weekday
        ("2026-12-05T14:00", "cara"),  # a Saturday afternoon: the weekend shift, not the weekday one
        # Monday 07:59: Sunday's whole-day shift ended at midnight, and Sunday night is no weekday night shift
        # (those start Monday to Friday), so the fallback answers
        ("2026-12-07T07:59", "manager"),
    ],
)
def test_weekday_shifts_pick_whoever_is_on_call(moment: str, first: str) -> None:
    on_call = WEEK.on_call("care", "h-0001", _at(moment), 0)
    assert on_call is not None and on_call.person == first, (moment, on_call)


def test_each_escalation_tells_the_next_person_and_stays_with_the_last() -> None:
    night = _at("2026-12-02T23:30")
    people = [WEEK.on_call("care", "h-0001", night, step) for step in range(5)]
    assert [p.person for p in people if p is not None] == ["ben", "lead", "manager", "manager", "manager"]


def test_a_rota_for_care_is_not_asked_about_street_alerts() -> None:
    assert WEEK.on_call("street", "bed-01", _at("2026-12-02T10:00"), 0) is None


@pytest.mark.parametrize(
    ("rota", "people", "message"),
    [
        ({"shifts": [{"chain": ["amira", "zed"]}]}, PEOPLE, "rotas.0.shifts.0.chain (north): no person 'zed'"),
        ({"fallback": ["nobody"]}, PEOPLE, "rotas.0.fallback (north): no person 'nobody'"),
        ({"shifts": [{"start": 1200, "end": "08:00", "chain": ["ben"]}]}, PEOPLE, "write times of day in quotes"),
        ({}, PEOPLE, "a rota needs shifts, a fallback or a chat target"),
        ({"shifts": [{"days": ["monday"], "chain": ["ben"]}]}, PEOPLE, "days"),
        ({"fallback": ["Ben!"]}, {"Ben!": {"name": "Ben", "sms": "07700 900002"}}, "ids are lower-case letters"),
        ({"fallback": ["ben"]}, {"ben": {"name": "Ben"}}, "people.ben: give at least one of sms or email"),
    ],
)
def test_a_mistake_in_the_rota_is_refused_where_it_is(
    rota: dict[str, Any], people: dict[str, Any], message: str
) -> None:
    data = {"notifications": {"people": people, "rotas": [{"name": "north", "audience": "care", **rota}]}}
    with pytest.raises((ConfigError, ValueError)) as caught:
        rules_from_data(data)
    assert message in str(caught.value)


def test_two_rotas_of_one_name_are_refused() -> None:
    rota = {"name": "north", "audience": "care", "fallback": ["ben"]}
    with pytest.raises((ConfigError, ValueError), match="rota names must be unique"):
        rules_from_data({"notifications": {"people": PEOPLE, "rotas": [rota, rota]}})


def test_what_the_registry_and_channels_cannot_satisfy_is_listed_at_start() -> None:
    config = _config(subjects=["h-0001", "h-9999"], care_team="east", chat=["ops-teams"], fallback=["cara"])
    problems = config.problems_with(subjects={"h-0001"}, care_teams={"north"}, chat_targets=set(), contacts={"sms"})
    assert "rota north: no home, bed or site 'h-9999' in the registry" in problems
    assert "rota north: no home has care_team 'east'" in problems
    assert "rota north: chat target 'ops-teams' is not set in PLACESENSE_CHAT_URLS" in problems
    # Cara has only an email address, and no email channel is set up: she could never be told.
    assert any(p.startswith("person cara: cannot be reached by email") for p in problems)
    assert not any(p.startswith("person amira") for p in problems)
