"""Who is told about an alert: people, on-call rotas per audience and group of homes or beds, and the escalation
chain of each shift, as written in the rules file's ``notifications:`` section.

A rota covers one audience (``care``, ``street``, ``ops``) and, optionally, a group of subjects: listed homes or
beds, or every home of a registry ``care_team``. Its shifts say, by weekday and local time, who is on call as a
chain: the first person is told when the alert opens, and each escalation (``escalation.after_minutes`` with no
acknowledgement) tells the next one — carer → team leader → on-call manager — staying with the last. A shift that
spans midnight belongs to the day it starts (Friday 20:00–08:00 covers Saturday 02:00). When no shift covers the
moment, the rota's ``fallback`` chain is used. The first rota in the file that covers an alert wins.

Phone numbers and email addresses of staff are contact details, not secrets, and live here; API keys, SMTP
passwords and chat webhook URLs come from the environment only (``placesense.settings``), and a rota names a chat
target by the name given to it there. Everything is validated when the rules file loads, and again against the
registry at start, so a typo in a person's id or a home fails the start with its place named.

This module describes and answers "who now?"; it must not send anything or touch the alert store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from placesense.basics.findings import Audience
from placesense.basics.texts import Lang

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PersonContact = Literal["sms", "email"]
_PERSON_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_UK_MOBILE = re.compile(r"^(\+44|0044|0)7\d{9}$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _clock_time(value: object) -> object:
    # YAML 1.1 reads an unquoted 20:00 as the sexagesimal number 1200; say so instead of a vague type error.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("write times of day in quotes, e.g. '20:00' (YAML reads an unquoted 20:00 as a number)")
    return value


ClockTime = Annotated[time, BeforeValidator(_clock_time)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Strict):
    """Someone who may be told: a display name and the ways to reach them."""

    name: str = Field(min_length=1, max_length=100, description="as shown in the alert's history")
    sms: str | None = Field(None, description="mobile number: 07700 900123 or +447700900123")
    email: str | None = None
    via: tuple[PersonContact, ...] | None = Field(
        None, description="which of sms/email to use (default: every one given)"
    )
    lang: Lang = Field("en", description="the language of their messages: en, or cy for Welsh (docs/welsh.md)")

    @field_validator("sms")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        number = re.sub(r"[\s()-]", "", value)
        if not (_UK_MOBILE.match(number) or _E164.match(number)):
            raise ValueError(f"{value!r} is not a mobile number (07700 900123 or +447700900123)")
        return number

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> Person:
        if self.sms is None and self.email is None:
            raise ValueError("give at least one of sms or email")
        for contact in self.via or ():
            if getattr(self, contact) is None:
                raise ValueError(f"via names {contact} but no {contact} is given")
        return self

    def contacts(self) -> list[tuple[PersonContact, str]]:
        """(how, address) for each way this person is to be told."""
        wanted = self.via or ("sms", "email")
        return [(how, address) for how in wanted if (address := getattr(self, how)) is not None]


class Shift(_Strict):
    """Who is on call in a weekly time slot: ``chain[0]`` first, then each escalation the next."""

    days: tuple[Weekday, ...] = Field(default=WEEKDAYS, min_length=1)
    start: ClockTime = Field(default=time(0, 0))
    end: ClockTime = Field(default=time(0, 0), description="equal to start: the whole day")
    chain: tuple[str, ...] = Field(min_length=1, description="person ids, first told first")

    def covers(self, local: datetime) -> bool:
        day, at = WEEKDAYS[local.weekday()], local.time()
        if self.start == self.end:
            return day in self.days
        if self.start < self.end:
            return day in self.days and self.start <= at < self.end
        yesterday = WEEKDAYS[(local - timedelta(days=1)).weekday()]
        return (day in self.days and at >= self.start) or (yesterday in self.days and at < self.end)


class Rota(_Strict):
    """The on-call arrangement for one audience and, optionally, one group of homes or beds."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    audience: Audience
    subjects: tuple[str, ...] = Field(default=(), description="homes, beds or sites; empty: all of the audience")
    care_team: str | None = Field(None, description="every home whose registry care_team is this")
    shifts: tuple[Shift, ...] = ()
    fallback: tuple[str, ...] = Field(default=(), description="the chain when no shift covers the moment")
    chat: tuple[str, ...] = Field(
        default=(), description="chat targets (names from PLACESENSE_CHAT_URLS) told about every alert of the rota"
    )

    @model_validator(mode="after")
    def _someone(self) -> Rota:
        if not self.shifts and not self.fallback and not self.chat:
            raise ValueError("a rota needs shifts, a fallback or a chat target")
        return self

    def covers_subject(self, subject: str, care_teams: Mapping[str, str]) -> bool:
        if not self.subjects and self.care_team is None:
            return True
        return subject in self.subjects or (self.care_team is not None and care_teams.get(subject) == self.care_team)

    def chain_at(self, local: datetime) -> tuple[str, ...]:
        for shift in self.shifts:
            if shift.covers(local):
                return shift.chain
        return self.fallback


@dataclass(frozen=True, slots=True)
class OnCall:
    """The answer to "who is told now": the rota, the person at this escalation step, and the rota's chats."""

    rota: str
    person: str | None
    step: int
    chat: tuple[str, ...]


class NotificationsConfig(_Strict):
    """The rules file's ``notifications:`` section. Empty (the default): nobody is messaged in person."""

    timezone: str = "Europe/London"
    link_valid_minutes: float = Field(
        default=24 * 60, gt=0, le=14 * 24 * 60, description="how long an acknowledge link in a message works"
    )
    people: dict[str, Person] = Field(default_factory=dict)
    rotas: tuple[Rota, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _people_known(self) -> NotificationsConfig:
        for person_id in self.people:
            if not _PERSON_ID.match(person_id):
                raise ValueError(f"people.{person_id}: ids are lower-case letters, digits, '.', '_' or '-'")
        names = [rota.name for rota in self.rotas]
        if len(set(names)) != len(names):
            raise ValueError("rota names must be unique")
        for i, rota in enumerate(self.rotas):
            chains = [(f"rotas.{i}.shifts.{j}.chain", s.chain) for j, s in enumerate(rota.shifts)]
            for where, chain in [*chains, (f"rotas.{i}.fallback", rota.fallback)]:
                unknown = [p for p in chain if p not in self.people]
                if unknown:
                    raise ValueError(f"{where} ({rota.name}): no person {', '.join(map(repr, unknown))} in people")
        return self

    def on_call(self, audience: str, subject: str, at_ms: int, step: int,
                care_teams: Mapping[str, str] | None = None) -> OnCall | None:
        """Who is told about an alert of ``audience``/``subject`` at ``at_ms``, ``step`` escalations in; ``None``
        when no rota covers it."""
        local = datetime.fromtimestamp(at_ms / 1000, tz=ZoneInfo(self.timezone))
        for rota in self.rotas:
            if rota.audience != audience or not rota.covers_subject(subject, care_teams or {}):
                continue
            chain = rota.chain_at(local)
            person = chain[min(step, len(chain) - 1)] if chain else None
            return OnCall(rota.name, person, step, rota.chat)
        return None

    def chat_targets(self) -> set[str]:
        return {name for rota in self.rotas for name in rota.chat}

    def problems_with(self, subjects: set[str], care_teams: set[str], chat_targets: set[str],
                      contacts: set[str]) -> list[str]:
        """What does not resolve against the registry and the channels this installation has set up."""
        problems: list[str] = []
        for rota in self.rotas:
            unknown = [s for s in rota.subjects if s not in subjects]
            if unknown:
                missing_subjects = ", ".join(map(repr, unknown))
                problems.append(f"rota {rota.name}: no home, bed or site {missing_subjects} in the registry")
            if rota.care_team is not None and rota.care_team not in care_teams:
                problems.append(f"rota {rota.name}: no home has care_team {rota.care_team!r}")
            missing = [c for c in rota.chat if c not in chat_targets]
            if missing:
                problems.append(f"rota {rota.name}: chat target {', '.join(map(repr, missing))} is not set in "
                                "PLACESENSE_CHAT_URLS")
        for person_id, person in self.people.items():
            if not any(how in contacts for how, _ in person.contacts()):
                ways = " or ".join(how for how, _ in person.contacts())
                problems.append(f"person {person_id}: cannot be reached by {ways}: that channel is not set up "
                                "(see README, Notifications)")
        return problems
