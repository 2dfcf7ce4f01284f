"""A leader's term of the evaluation lease, and the error a fenced write raises (``placesense.basics.leadership``).

Kept apart from the lease itself so the evaluation process can carry a term without loading the database layer
when it has no use for it (one instance, state in a file). This module holds no logic.
"""

from __future__ import annotations

from dataclasses import dataclass

from placesense.basics.errors import PlacesenseError


class Fenced(PlacesenseError):
    """This instance is no longer the leader: the write it was about to make belongs to the new one."""


@dataclass(frozen=True, slots=True)
class Term:
    """One instance's hold of the lease: who and which epoch. Passed to the evaluation process in its spec."""

    holder: str
    epoch: int
    url: str  # the database the lease lives in (the evaluation process opens its own connection)

    @property
    def instance(self) -> str:
        return self.holder.split("/", 1)[0]
