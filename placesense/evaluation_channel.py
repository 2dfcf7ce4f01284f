"""The messages between serve and its evaluation process, and the counters that show the channel is moving.

Parent → child: ``Evaluate`` a journal batch (``ingest.journal``), ``Tick`` (live clock), ``Ask`` a question for
the API, ``Checkpoint`` (save now), ``Stop``. Child → parent: ``Ready`` (where its restored state ends in the
journal, and the credit it grants), ``Partial`` findings of a batch still being evaluated, ``Evaluated`` (a batch
is done: one credit back), ``Ticked``, ``Answer``, ``Saved`` (the state on disk now includes batch N: the journal
may let go of it), ``Stopped``.

Flow control is by credit: the child grants ``CREDIT_BATCHES`` batches when it starts and one more with each
``Evaluated``, and the parent sends a batch only with credit in hand. So at most that many batches wait in the
child's socket, and a busy child never fills it to the point where both sides block in ``send``.

``Progress`` holds the counters the watchdog reads. Each is written by one thread and read without a lock (an
int or float attribute read is atomic in CPython), so the watchdog still works when every I/O thread is stuck.

This module defines the channel's language; it must not evaluate, store or send anything itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from placesense.basics.findings import Finding

CREDIT_BATCHES = 2  # batches the parent may send ahead of the child's answers


# -- parent → child -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evaluate:
    """One journal batch to evaluate; ``replay`` when it was stored before this child started."""

    seq: int
    count: int
    payload: bytes
    replay: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    """Fire the time-based checks now (live clock)."""


@dataclass(frozen=True, slots=True)
class Ask:
    """A question from the API (``CALLS`` in ``placesense.evaluation_core``)."""

    call_id: int
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class AddDevices:
    """Devices registered while serve runs (``POST /api/v1/devices``): watch them from now on. Answered by
    ``Answer`` (the result is how many were new) with ``call_id``."""

    call_id: int
    devices: tuple[Any, ...]  # DeviceSpec


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Save the state now (the journal has grown large)."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Save the state and exit."""


# -- child → parent -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ready:
    pid: int
    applied_seq: int  # the last journal batch the restored state includes
    credit: int
    notes: tuple[str, ...] = ()  # what was restored, or why not, for serve's log


@dataclass(frozen=True, slots=True)
class Partial:
    """Findings of a batch still being evaluated: an alert should not wait for the rest of a large batch."""

    seq: int
    findings: list[Finding]


@dataclass(frozen=True, slots=True)
class Evaluated:
    """Batch ``seq`` is applied; carries its last findings (and, on the event clock, the time-based ones)."""

    seq: int
    count: int
    findings: list[Finding]
    now_ms: int
    event_tick: bool


@dataclass(frozen=True, slots=True)
class Ticked:
    findings: list[Finding]
    now_ms: int


@dataclass(frozen=True, slots=True)
class Answer:
    call_id: int
    result: Any
    error: str | None


@dataclass(frozen=True, slots=True)
class Saved:
    """The state on disk includes every batch up to ``applied_seq``."""

    applied_seq: int
    state_bytes: int


@dataclass(frozen=True, slots=True)
class Stopped:
    applied_seq: int


# -- progress, for the watchdog ------------------------------------------------------------------------------


@dataclass
class Progress:
    """Counters of one child's channel. ``sent`` is written only by the sender thread, ``answered`` and
    ``heard_at`` only by the receiver thread; ``waiting_since`` by the sender when it sends into silence."""

    sent: int = 0  # messages sent that each get one answer
    answered: int = 0
    heard_at: float = field(default_factory=time.monotonic)
    waiting_since: float = field(default_factory=time.monotonic)

    def outstanding(self) -> int:
        return self.sent - self.answered

    def silent_s(self, now: float) -> float:
        """How long the child has owed an answer without saying anything; 0 when it owes none."""
        if self.outstanding() <= 0:
            return 0.0
        return now - max(self.heard_at, self.waiting_since)


EXPECTS_ANSWER = (Evaluate, Tick, Ask, AddDevices, Stop)  # answered by Evaluated, Ticked, Answer, Stopped
