"""API tokens and what each may see: loading the tokens file, identifying a caller, and the scope checks.

The tokens file (``PLACESENSE_TOKENS_PATH``) lists each token by the SHA-256 of its secret, never the secret
itself, with a name (who holds it, shown in the audit log), a role and, for care tokens, the homes it
covers; and, for people who sign in through the council's identity provider (``api.oidc``), which of its
groups give which role and homes::

    tokens:
      - name: north-care-team
        role: care
        homes: [h-0001, h-0002]
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        lang: cy                         # optional: the pages open in Welsh for this token (en or cy)
    groups:
      - group: 3f2b9c1e-care-north       # the group's id as the IdP's groups claim carries it (Entra: object id)
        role: care
        homes: [h-0001, h-0002]

The file is read again whenever it changes, so revoking a token or removing a group takes effect on the next
request, without a restart (a file that no longer parses is refused with an error in the log, and the last good
one stays in force).

Roles: ``admin`` sees and does everything; ``care`` sees only its homes (their devices, readings, routine and care
alerts) and may act on those alerts; ``street`` sees flowerbeds, air sites and street/ops alerts and never home
data; ``display`` is read-only and pseudonymous (a wall screen: flowerbeds, air, and that an alert is open for a
home, never a home's devices, readings or the details of its alerts); ``sensor`` may only push readings, and only
for the chips its entry lists (Sensor.Community firmware). This module decides *whether* a principal may see
something; it must not query stores or build responses.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devices.registry import DeviceSpec, Identifier
from placesense.basics.errors import ConfigError
from placesense.basics.texts import Lang

Role = Literal["admin", "care", "street", "display", "sensor"]
ROLES: tuple[Role, ...] = ("admin", "care", "street", "display", "sensor")
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the token, lower-case hex")]
ChipId = Annotated[str, Field(pattern=r"^(esp8266|esp32)-[0-9a-z]{1,32}$", description="as the X-Sensor header")]
MIN_TOKEN_LENGTH = 16  # a shorter bearer secret can be guessed; refuse it before hashing
PERSON_ROLES: tuple[Role, ...] = ("admin", "care", "street", "display")  # most powerful first; never "sensor"

log = logging.getLogger(__name__)


class TokenEntry(BaseModel):
    """One token as written in the tokens file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80)
    role: Role
    sha256: Sha256Hex
    homes: list[Identifier] = Field(default_factory=list)
    chips: list[ChipId] = Field(default_factory=list, description="sensor tokens: the chips it may push for")
    lang: Lang | None = Field(default=None, description="the pages' language for this token: en or cy (Welsh)")

    @model_validator(mode="after")
    def _homes_only_for_care(self) -> TokenEntry:
        if self.role == "care" and not self.homes:
            raise ValueError("a care token needs the homes it may see (homes: [h-0001, ...])")
        if self.role != "care" and self.homes:
            raise ValueError(f"homes only apply to care tokens, not {self.role}")
        # A sensor token that fits every chip lets one leaked firmware image write any air sensor's readings.
        if self.role == "sensor" and not self.chips:
            raise ValueError("a sensor token needs the chips it may push for (chips: [esp8266-1520847, ...])")
        if self.role != "sensor" and self.chips:
            raise ValueError(f"chips only apply to sensor tokens, not {self.role}")
        return self


class GroupEntry(BaseModel):
    """One identity-provider group and what its members may do when they sign in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(min_length=1, max_length=200, description="the group as the IdP's groups claim names it")
    role: Literal["admin", "care", "street", "display"]
    homes: list[Identifier] = Field(default_factory=list)
    lang: Lang | None = Field(default=None, description="the pages' language for its members: en or cy (Welsh)")

    @model_validator(mode="after")
    def _homes_only_for_care(self) -> GroupEntry:
        if self.role == "care" and not self.homes:
            raise ValueError("a care group needs the homes it may see (homes: [h-0001, ...])")
        if self.role != "care" and self.homes:
            raise ValueError(f"homes only apply to care groups, not {self.role}")
        return self


class TokensFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[TokenEntry] = Field(default_factory=list)
    groups: list[GroupEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> TokensFile:
        hashes: set[str] = set()
        names: set[str] = set()
        for entry in self.tokens:
            if entry.sha256 in hashes:
                raise ValueError(f"token {entry.name!r} has the same hash as another token")
            if entry.name in names:
                raise ValueError(f"token name {entry.name!r} is used twice; names identify callers in the audit log")
            hashes.add(entry.sha256)
            names.add(entry.name)
        return self


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a token: who, in what role, over which homes."""

    name: str
    role: Role
    homes: frozenset[str] = field(default_factory=frozenset)
    chips: frozenset[str] = field(default_factory=frozenset)
    lang: Lang | None = None  # the pages' language set for this token or group; None: the browser's

    # --- what this principal may see ---------------------------------------------------------------

    @property
    def sees_all(self) -> bool:
        return self.role == "admin"

    @property
    def sees_names(self) -> bool:
        """Residents' names (from the registry) only reach admins and the care team of that home."""
        return self.role in ("admin", "care")

    def may_see_home(self, home_id: str) -> bool:
        if self.role == "admin":
            return True
        return self.role == "care" and home_id in self.homes

    def may_see_device(self, device: DeviceSpec) -> bool:
        if self.role == "admin":
            return True
        if device.domain == "home":
            # Not the wall display: a home device's kind, last message and battery, polled, retrace the resident's
            # movements room by room (device ids name the room) and say when the help button was pressed.
            return self.role == "care" and device.subject in self.homes
        return self.role in ("street", "display")

    def may_read_readings(self, device: DeviceSpec) -> bool:
        """Time series are finer-grained than device status: the display never reads a home's series."""
        if device.domain == "home":
            return self.may_see_home(device.subject)
        return self.role in ("admin", "street", "display")

    def may_see_alert(self, audience: str, subject: str, home_ids: Iterable[str] | None = None) -> bool:
        """``home_ids`` (all homes in the registry) lets a street token refuse any alert about a home."""
        if self.role in ("admin", "display"):
            return True
        is_home = audience == "care" or (home_ids is not None and subject in set(home_ids))
        if self.role == "care":
            return is_home and subject in self.homes
        if self.role == "street":
            return not is_home and audience in ("street", "ops")
        return False

    def may_act_on_alerts(self) -> bool:
        return self.role in ("admin", "care", "street")

    def may_push_for(self, chip: str) -> bool:
        """Sensor.Community uploads: a sensor token only for its own chips, an admin for any."""
        return self.role == "admin" or (self.role == "sensor" and chip in self.chips)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class TokenStore:
    """The tokens an API process accepts, looked up by hash, and the groups people sign in with.

    A store loaded from a file (``load_tokens``) checks the file before each look-up and reads it again when it
    changed, so revocations need no restart.
    """

    def __init__(self, entries: Iterable[TokenEntry] = (), groups: Iterable[GroupEntry] = ()) -> None:
        self._by_hash = {e.sha256: e for e in entries}
        self._groups: dict[str, list[GroupEntry]] = {}
        for g in groups:
            self._groups.setdefault(g.group, []).append(g)
        self._path: Path | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        self._refresh()
        return len(self._by_hash)

    def _refresh(self) -> None:
        if self._path is None:
            return
        try:
            st = os.stat(self._path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError as exc:
            stamp = (0, 0, 0)
            if self._stamp != stamp:
                log.error("the API tokens file %s cannot be read (%s); no token or group is accepted until it "
                          "is back", self._path, exc.strerror)
                self._by_hash, self._groups, self._stamp = {}, {}, stamp
            return
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                fresh = load_tokens(self._path, watch=False)
            except ConfigError as exc:
                log.error("the API tokens file changed but is refused; the last good one stays in force: %s", exc)
            else:
                self._by_hash, self._groups = fresh._by_hash, fresh._groups
                log.info("API tokens file %s read again: %d tokens, %d groups", self._path,
                         len(self._by_hash), len(self._groups))
            self._stamp = stamp

    def for_person(self, name: str, groups: Iterable[str]) -> Principal | None:
        """The principal for a person signed in with ``groups``, or None when no group of theirs is mapped.

        Several mapped groups give the most powerful of their roles; care homes are those of all care groups
        (only when care is that role)."""
        self._refresh()
        mapped = [entry for g in groups for entry in self._groups.get(g, ())]
        if not mapped:
            return None
        role = min((e.role for e in mapped), key=PERSON_ROLES.index)
        homes = frozenset(h for e in mapped if e.role == role for h in e.homes)
        lang = next((e.lang for e in mapped if e.lang is not None), None)
        return Principal(name[:80], role, homes, lang=lang)

    def identify(self, secret: str) -> Principal | None:
        if len(secret) < MIN_TOKEN_LENGTH:
            return None
        self._refresh()
        digest = hash_token(secret)
        entry = self._by_hash.get(digest)
        # The dict look-up is on a hash, so timing reveals nothing useful about the secret; compare_digest
        # keeps the final check constant-time anyway.
        if entry is None or not hmac.compare_digest(entry.sha256, digest):
            return None
        return Principal(entry.name, entry.role, frozenset(entry.homes), frozenset(entry.chips), entry.lang)

    @classmethod
    def from_data(cls, data: object, source: str = "tokens") -> TokenStore:
        try:
            parsed = TokensFile.model_validate(data if data is not None else {})
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "tokens file"
                problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
            raise ConfigError(f"invalid tokens file {source}:\n  " + "\n  ".join(problems)) from exc
        return cls(parsed.tokens, parsed.groups)


def load_tokens(path: Path | None, *, watch: bool = True) -> TokenStore:
    """The tokens in ``path``; no file configured means no token is accepted (every call gets 401).

    With ``watch`` the store reads the file again whenever it changes."""
    if path is None:
        return TokenStore()
    stamp: tuple[int, int, int] | None = None
    if watch:
        try:
            st = os.stat(path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the API tokens file {path}: {exc.strerror}. "
            "Set PLACESENSE_TOKENS_PATH or copy config/tokens.example.yaml."
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    store = TokenStore.from_data(data, str(path))
    if watch:
        store._path, store._stamp = path, stamp
    return store
