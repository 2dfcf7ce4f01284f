"""Where a long-running simulation got to, so that a restarted simulator carries on instead of starting over.

A live fleet (``placesense simulate --speed live --resume FILE``) runs one deterministic simulation over a long
window. ``Progress`` records in FILE the window, the seed and the send time of the last message handed to the
broker (and how many messages of that very millisecond went); a later run of the *same* simulation, whose
stream is the same in the same order, skips everything up to there, so nothing is published twice
(and no alert is raised twice), and what fell due while the simulator was stopped is sent at once. A file
written for another window or seed is ignored, with a warning. The file is tiny and rewritten atomically at
most every ``save_every_s`` seconds, so a stop loses at most that much of the record: those few messages are
sent again with the same timestamps and values, which InfluxDB stores once. This module must not publish.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from firmware_sim.firmware import SimEvent

log = logging.getLogger("firmware_sim.resume")


class Progress:
    """The progress file of one simulation (``start_ms``, ``end_ms``, ``seed``)."""

    def __init__(self, path: Path, start_ms: int, end_ms: int, seed: int, save_every_s: float = 2.0) -> None:
        self.path = path
        self._identity = {"start_ms": start_ms, "end_ms": end_ms, "seed": seed}
        self._save_every_s = save_every_s
        self.sent_through_ms: int | None = None
        self.sent_at_that_ms = 0  # messages sent with send_ms == sent_through_ms (ties keep their order)
        self._load()
        self._saved: tuple[int | None, int] = (self.sent_through_ms, self.sent_at_that_ms)
        self._next_save = 0.0

    def _load(self) -> None:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable progress file %s (%s): starting from the beginning", self.path, exc)
            return
        if not isinstance(doc, dict) or any(doc.get(k) != v for k, v in self._identity.items()):
            log.warning("the progress file %s is for another simulation window or seed: starting from the "
                        "beginning", self.path)
            return
        sent, ties = doc.get("sent_through_ms"), doc.get("sent_at_that_ms", 1)
        if isinstance(sent, int) and isinstance(ties, int):
            self.sent_through_ms, self.sent_at_that_ms = sent, ties

    def save(self) -> None:
        """Write the record now (atomically, readable by this user only)."""
        if self.sent_through_ms is None or (self.sent_through_ms, self.sent_at_that_ms) == self._saved:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({**self._identity, "sent_through_ms": self.sent_through_ms,
                       "sent_at_that_ms": self.sent_at_that_ms}, handle)
        partial.replace(self.path)
        self._saved = (self.sent_through_ms, self.sent_at_that_ms)

    def remaining(self, events: Iterable[SimEvent]) -> Iterator[SimEvent]:
        """``events`` after the recorded point; each one is recorded once the publisher asks for the next, by
        when it has been handed to the broker."""
        skipped = 0
        resume_after, ties_left = self.sent_through_ms, self.sent_at_that_ms
        for event in events:
            if resume_after is not None and (
                event.send_ms < resume_after or (event.send_ms == resume_after and ties_left > 0)
            ):
                skipped += 1
                if event.send_ms == resume_after:
                    ties_left -= 1
                continue
            if skipped:
                log.info("resumed after %d messages already sent by an earlier run", skipped)
                skipped = 0
            yield event
            if event.send_ms == self.sent_through_ms:
                self.sent_at_that_ms += 1
            else:
                self.sent_through_ms, self.sent_at_that_ms = event.send_ms, 1
            now = time.monotonic()
            if now >= self._next_save:
                self.save()
                self._next_save = now + self._save_every_s
        self.save()
