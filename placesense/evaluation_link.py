"""One evaluation process as the service's process sees it: its socket, the credit it granted, what it owes,
and the two threads that write to it (the channel's rules are in ``placesense.evaluation_channel``):

- the **feeder** takes the next batch from the journal once the child has granted credit for it, and queues it;
- the **sender** is the only thread that writes to the socket; it takes messages from its queue (batches, ticks,
  the API's questions, stop) and may block in ``send`` while the child is busy, holding no lock.

The reader of the socket, restarts and the watchdog are the ``Evaluator``'s (``placesense.evaluation``); a link
is replaced whole when its process ends. It decides nothing about findings or alerts.
"""

from __future__ import annotations

import contextlib
import queue
import subprocess
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from ingest.journal import Backlog
from placesense.basics.errors import EvaluationUnavailable
from placesense.evaluation_channel import EXPECTS_ANSWER, Evaluate, Progress, Ready, Stopped


class EvaluationLink:
    """One evaluation process and the two threads that write to it; replaced whole when the process ends."""

    def __init__(self, journal: Backlog, process: subprocess.Popen[bytes], conn: Connection,
                 ready: Ready, generation: int) -> None:
        self.journal = journal
        self.process = process
        self.conn = conn
        self.ready = ready
        self.generation = generation
        self.progress = Progress()
        self.outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.credit = threading.Semaphore(ready.credit)
        self.closing = threading.Event()  # no more batches: stopping, or the child is gone
        self.dead = threading.Event()
        self.stopped: Stopped | None = None
        self.tick_outstanding = False
        self.checkpoint_asked = False
        # Batches up to here were stored before this child started: they are a replay, not new time.
        self.replay_until = journal.last_seq
        self.threads = [
            threading.Thread(target=self._send_loop, name=f"evaluation-send-{generation}", daemon=True),
            threading.Thread(target=self._feed_loop, name=f"evaluation-feed-{generation}", daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def put(self, message: Any) -> None:
        """Queue a message for the child (never blocks)."""
        if self.dead.is_set():
            raise EvaluationUnavailable("the evaluation process is not running")
        self.outbox.put(message)

    # the feeder: journal → outbox, one batch per credit

    def _feed_loop(self) -> None:
        reader = self.journal.reader(self.ready.applied_seq)
        try:
            while not self.closing.is_set():
                if not self.credit.acquire(timeout=0.5):
                    continue
                record = None
                while record is None and not self.closing.is_set():
                    record = reader.next(timeout_s=0.5)
                if record is None:
                    return
                self.outbox.put(Evaluate(record.seq, record.count, record.payload,
                                         replay=record.seq <= self.replay_until))
        finally:
            reader.close()

    # the sender: the only writer of the socket

    def _send_loop(self) -> None:
        progress = self.progress
        while True:
            message = self.outbox.get()
            if message is None:
                return
            if isinstance(message, EXPECTS_ANSWER):
                if progress.outstanding() <= 0:
                    progress.waiting_since = time.monotonic()  # waiting starts now, not at the last answer
                progress.sent += 1
            try:
                self.conn.send(message)
            except (OSError, ValueError):  # the child is gone; the receiver sees EOF and starts another
                self.closing.set()
                return

    def close(self) -> None:
        self.closing.set()
        self.dead.set()
        self.outbox.put(None)
        with contextlib.suppress(OSError):
            self.conn.close()
        for thread in self.threads:
            thread.join(5)
