"""Evaluation wiring: stored readings → rules and detectors (in their own process) → findings → alerts.

The rules and detectors cost more CPU per reading than receiving, decoding and storing it, and Python runs one
thread at a time per process. So they run in a child process (``placesense.evaluation_process``), on the
machine's other core, and ingest's process keeps a core for the durable path.

Ingest appends every stored batch to the journal (``ingest.journal``) before it acknowledges it. The
``Evaluator`` feeds the journal's batches to the child in order and applies the findings it sends back to the
alert lifecycle, which stays in this process with the alert store and the alert feed. The channel
(``placesense.evaluation_channel``) is three threads per child, none of which ever waits on another's lock:

- the **feeder** and the **sender** (``placesense.evaluation_link``: one child's link, replaced whole when it
  ends) queue the journal's batches as the child grants credit, and write every message to the socket;
- the **receiver**, here, reads the child's answers, applies findings to alerts, returns credit, and lets the
  journal go of what the child's saved state now includes.

A child that dies, or owes an answer and says nothing for ``stall_kill_s``, is ended and a new one started from
the saved state; it says where that state ends, and the feeder sends it every batch after that again, so no
stored reading goes unevaluated and none is applied twice to learned state (a finding said twice is absorbed by
the alert lifecycle). The watchdog judges progress from counters it reads without a lock, so it works when the
I/O threads are stuck; ``health()`` tells the service (and so /healthz and the ops alerts) what it sees. What
the API reads of the child's knowledge goes through ``call`` (``placesense.evaluation_views``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.exc import SQLAlchemyError

from ingest.journal import Backlog
from placesense.basics.clock import Clock, EventClock
from placesense.basics.errors import EvaluationUnavailable, PlacesenseError
from placesense.basics.term import Fenced
from placesense.evaluation_channel import (
    AddDevices,
    Answer,
    Ask,
    Checkpoint,
    Evaluated,
    Partial,
    Ready,
    Saved,
    Stop,
    Stopped,
    Tick,
    Ticked,
)
from placesense.evaluation_core import EvaluationSpec
from placesense.evaluation_link import EvaluationLink

if TYPE_CHECKING:  # the child needs none of these: keeping them out keeps its memory down

    from devices.registry import DeviceSpec
    from ingest.metrics import IngestMetrics
    from placesense.alerts.lifecycle import AlertService
    from placesense.basics.findings import Finding

log = logging.getLogger("placesense.evaluation")

CALL_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
STALLED_STOP_TIMEOUT_S = 5.0
DRAIN_AT_STOP_S = 10.0  # at stop, how long to let the child catch up before it saves (the rest waits in the journal)
START_TIMEOUT_S = 120.0
RESTART_DELAY_S = (1.0, 30.0)  # first and longest wait before starting a child that died
STALL_ALERT_S = 20.0  # owing an answer and silent this long: evaluation is reported stalled
STALL_KILL_S = 60.0  # ...and this long: the child is ended and a new one takes over from the saved state
CHECKPOINT_JOURNAL_BYTES = 256 * 1024 * 1024  # ask the child to save when the journal holds more than this
MAX_QUESTIONS = 64  # the API's questions waiting at once; more are refused at once rather than queued

EvaluationState = Literal["running", "stalled", "restarting", "stopped"]


@dataclass(frozen=True, slots=True)
class EvaluationHealth:
    """What the watchdog sees: ``running`` is the only healthy state. ``since_ms`` is wall-clock time."""

    state: EvaluationState
    since_ms: int
    detail: str
    pending_readings: int


class Evaluator:
    """Feeds the journal to the evaluation process, applies its findings, and answers the API's questions."""

    def __init__(
        self,
        spec: EvaluationSpec,
        alerts: AlertService,
        clock: Clock,
        metrics: IngestMetrics,
        journal: Backlog,
        tick_interval_s: float = 5.0,
        hold_fds: tuple[int, ...] = (),
        metrics_dir: Path | None = None,
        stall_alert_s: float = STALL_ALERT_S,
        stall_kill_s: float = STALL_KILL_S,
    ) -> None:
        self.spec = spec
        self.metrics_dir = metrics_dir  # the child's Prometheus multiprocess files (ingest.metrics)
        self.hold_fds = hold_fds  # descriptors each child inherits: the state folder's lock (placesense.statelock)
        self.alerts = alerts
        self.clock = clock
        self.metrics = metrics
        self.journal = journal
        self.tick_interval_s = tick_interval_s
        self.stall_alert_s = stall_alert_s
        self.stall_kill_s = stall_kill_s
        self.event_clock = isinstance(clock, EventClock)
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._generations = itertools.count(1)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._link: EvaluationLink | None = None
        self._receiver: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._state: EvaluationState = "restarting"
        self._state_since_ms = _wall_ms()
        self._detail = "starting"
        self.state_bytes = 0
        self.saved_seq = 0

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        link = self._spawn()
        # The state on disk ends at batch N: number new batches after it, and count what waits after it.
        self.journal.continue_after(link.ready.applied_seq)
        waiting = self.journal.track_from(link.ready.applied_seq)
        if waiting:
            log.info("%d stored readings were not yet evaluated when placesense last stopped; evaluating them now",
                     waiting)
        self._use(link)
        self._receiver = threading.Thread(target=self._receive_loop, name="evaluation-receive", daemon=True)
        self._receiver.start()
        self._ticker = threading.Thread(target=self._tick_loop, name="evaluation-ticker", daemon=True)
        self._ticker.start()

    def _spawn(self) -> EvaluationLink:
        # A fresh interpreter (no threads or locks copied from this one) running one module, so nothing of the
        # caller's main script runs again there; it shares our stderr for its log lines.
        ours, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
        if self.metrics_dir is not None:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)
        # Its own session: a Ctrl-C in the terminal or `make stop` signals serve's process group, and serve then
        # stops the child in order (it saves, then exits); killed alongside, it would be restarted mid-shutdown.
        process = subprocess.Popen(
            [sys.executable, "-m", "placesense.evaluation_process", str(theirs.fileno())],
            pass_fds=(theirs.fileno(), *self.hold_fds), stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        theirs.close()  # the child holds its end; when the child dies, our reads see EOF
        conn = Connection(ours.detach())
        try:
            conn.send(self.spec)
            ready = conn.recv() if conn.poll(START_TIMEOUT_S) else None
        except (EOFError, OSError):
            ready = None
        if not isinstance(ready, Ready):
            process.kill()
            process.wait()
            conn.close()
            raise PlacesenseError(
                f"the evaluation process did not start (within {START_TIMEOUT_S:.0f} s); see the log lines above"
            )
        for note in ready.notes:
            log.info("evaluation state: %s", note)
        link = EvaluationLink(self.journal, process, conn, ready, next(self._generations))
        log.info("evaluation process %d started (rules, routine and sensor detectors), its state up to batch %d",
                 process.pid, ready.applied_seq)
        return link

    def _use(self, link: EvaluationLink) -> None:
        self._link = link
        link.start()
        self._set_state("running", "")

    @property
    def child_pid(self) -> int | None:
        """The evaluation process's pid while one runs (for its CPU and memory in /metrics)."""
        link = self._link
        return link.process.pid if link is not None and not link.dead.is_set() else None

    @property
    def backlog(self) -> int:
        """Stored readings not yet evaluated."""
        return self.journal.pending_readings

    @property
    def pid(self) -> int | None:
        link = self._link
        return link.process.pid if link is not None else None

    def stop(self) -> None:
        """Let the child catch up for a while, then have it save and end; what it did not reach stays in the
        journal for the next start."""
        stalled = self._state == "stalled"  # a child that answers nothing will not catch up, nor say it stopped
        if self._link is not None and not self._link.dead.is_set() and not stalled:
            self.journal.wait_until_evaluated(DRAIN_AT_STOP_S)
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join(self.tick_interval_s + 5)
        link = self._link
        if link is not None and not link.dead.is_set():
            link.closing.set()
            with contextlib.suppress(EvaluationUnavailable):
                link.put(Stop())
        timeout_s = STALLED_STOP_TIMEOUT_S if stalled else STOP_TIMEOUT_S
        if not self._stopped.wait(timeout_s):
            log.error("the evaluation process did not stop within %.0f s; ending it (what it had not saved waits "
                      "in the journal for the next start)", timeout_s)
            if link is not None:
                link.process.kill()
        if self._receiver is not None:
            self._receiver.join(5)
        link = self._link
        if link is not None:
            try:
                link.process.wait(5)
            except subprocess.TimeoutExpired:
                link.process.kill()
                link.process.wait(5)
            link.close()
        self._set_state("stopped", "placesense is stopping")

    # -- questions and ticks --------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Ask for the time-based checks now (the ticker does this every ``tick_interval_s`` on the live clock)."""
        link = self._link
        if link is None:
            raise EvaluationUnavailable("the evaluation process is not running")
        if not link.tick_outstanding:  # one at a time: a busy child is not handed a queue of ticks
            link.tick_outstanding = True
            link.put(Tick())

    def call(self, name: str, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        """Ask the child a question; answered behind the batches sent before it."""
        return self._request(lambda call_id: Ask(call_id, name, args), name, timeout_s)

    def add_devices(self, devices: Sequence[DeviceSpec], timeout_s: float = CALL_TIMEOUT_S) -> int:
        """Have the running child watch devices registered since it started; how many were new to it. (The spec's
        registry is the service's, which already holds them: a child started later has them from the start.)"""
        return int(self._request(lambda call_id: AddDevices(call_id, tuple(devices)), "add_devices", timeout_s))

    def _request(self, make: Callable[[int], Any], name: str, timeout_s: float) -> Any:
        link = self._link
        if link is None or link.dead.is_set():
            raise EvaluationUnavailable("the evaluation process is restarting")
        if len(self._calls) >= MAX_QUESTIONS:
            raise EvaluationUnavailable("the evaluation process has too many questions waiting")
        call_id = next(self._ids)
        pending = self._calls[call_id] = _Call()
        deadline = time.monotonic() + timeout_s
        try:
            link.put(make(call_id))
            while not pending.done.wait(0.2):
                if link.closing.is_set() and link.stopped is None:
                    raise EvaluationUnavailable("the evaluation process stopped while answering")
                if time.monotonic() > deadline:
                    raise EvaluationUnavailable(
                        f"the evaluation process did not answer {name} within {timeout_s:.0f} s"
                    )
        finally:
            self._calls.pop(call_id, None)
        if pending.error is not None:
            raise EvaluationUnavailable(f"the evaluation process could not answer {name}: {pending.error}")
        return pending.result

    # -- the receiver ---------------------------------------------------------------------------------------------

    def _receive_loop(self) -> None:
        delay = RESTART_DELAY_S[0]
        while True:
            link = self._link
            assert link is not None
            self._receive(link)
            if link.stopped is not None or self._stopping.is_set():
                self._stopped.set()
                return
            next_delay = self._restart(link, delay)
            if next_delay is None:  # stopping while it restarted
                self._stopped.set()
                return
            delay = next_delay

    def _receive(self, link: EvaluationLink) -> None:
        """Read the child's messages until it stops or its socket closes."""
        conn, progress = link.conn, link.progress
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                link.closing.set()
                return
            progress.heard_at = time.monotonic()
            if isinstance(message, Partial):
                self._apply(message.findings)
            elif isinstance(message, Evaluated):
                progress.answered += 1
                link.credit.release()
                first_time = self.journal.evaluated(message.seq)
                self.metrics.inc("placesense_readings_evaluated_total", first_time)  # counted before its alerts
                if first_time < message.count:
                    self.metrics.inc("placesense_readings_reevaluated_total", message.count - first_time)
                if self.event_clock:
                    self.clock.observe(message.now_ms)  # the API's clock follows event time as the child's does
                self._apply(message.findings, message.now_ms if message.event_tick else None)
                self._maybe_checkpoint(link)
            elif isinstance(message, Ticked):
                progress.answered += 1
                link.tick_outstanding = False
                self._apply(message.findings, self.clock.now_ms())
            elif isinstance(message, Answer):
                progress.answered += 1
                pending = self._calls.get(message.call_id)
                if pending is not None:
                    pending.result, pending.error = message.result, message.error
                    pending.done.set()
            elif isinstance(message, Saved):
                self.saved_seq, self.state_bytes = message.applied_seq, message.state_bytes
                link.checkpoint_asked = False
                self._release(message.applied_seq)
            elif isinstance(message, Stopped):
                progress.answered += 1
                link.stopped = message
                self.saved_seq = message.applied_seq
                self._release(message.applied_seq)
                return

    def _release(self, applied_seq: int) -> None:
        """The saved state includes batch ``applied_seq``: the journal may let go of what it covers."""
        try:
            self.journal.release_through(applied_seq)
        except (PlacesenseError, OSError, SQLAlchemyError) as exc:  # kept until the next save: nothing is lost
            log.warning("could not release the journal through batch %d: %s", applied_seq, exc)

    def apply_findings(self, findings: list[Finding]) -> None:
        """Apply findings a call returned (a person's action) to the alert lifecycle."""
        self._apply(findings)

    def _apply(self, findings: list[Finding], tick_ms: int | None = None) -> None:
        try:
            if findings:
                self.alerts.apply_all(findings)
            if tick_ms is not None:
                self.alerts.tick(tick_ms)
        except Fenced:  # another instance leads now: it evaluates these readings again from the shared journal
            log.warning("%d findings not applied: this instance no longer leads", len(findings))
        except Exception:  # a failing store or publisher must not stop the next findings
            log.exception("applying %d findings to alerts failed", len(findings))

    def _maybe_checkpoint(self, link: EvaluationLink) -> None:
        if self.journal.bytes > CHECKPOINT_JOURNAL_BYTES and not link.checkpoint_asked:
            link.checkpoint_asked = True
            with contextlib.suppress(EvaluationUnavailable):
                link.put(Checkpoint())

    def _restart(self, dead: EvaluationLink, delay: float) -> float | None:
        """Start a new child after one ended; returns the wait before the next restart, None when stopping."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            dead.process.wait(1)
        dead.close()
        for pending in list(self._calls.values()):
            pending.error = "it stopped while answering"
            pending.done.set()
        self._set_state("restarting", f"the evaluation process exited (exit code {dead.process.returncode})")
        log.error(
            "the evaluation process exited unexpectedly (exit code %s) with %d stored readings not yet evaluated; "
            "starting it again in %.0f s from its saved state, then evaluating what it had not saved",
            dead.process.returncode, self.journal.pending_readings, delay,
        )
        while not self._stopping.wait(delay):
            try:
                link = self._spawn()
            except Exception:
                log.exception("could not start the evaluation process; will try again")
                delay = min(delay * 2, RESTART_DELAY_S[1])
                continue
            self.metrics.inc("placesense_evaluation_restarts_total")
            self._use(link)
            if self._stopping.is_set():  # stop() came while this one started: its Stop found no child
                link.closing.set()
                with contextlib.suppress(EvaluationUnavailable):
                    link.put(Stop())
            return min(delay * 2, RESTART_DELAY_S[1])
        return None

    # -- the ticker and the watchdog ------------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        """Every ``tick_interval_s``: the time-based checks (live clock); every second: the watchdog."""
        next_tick = time.monotonic() + self.tick_interval_s
        while not self._stopping.wait(min(1.0, self.tick_interval_s)):
            self._watchdog()
            if self.event_clock or time.monotonic() < next_tick:
                continue  # on the event clock, time moves with the readings; the child checks after each batch
            next_tick = time.monotonic() + self.tick_interval_s
            with contextlib.suppress(EvaluationUnavailable):  # the receiver is starting a new child
                self.tick()

    def _watchdog(self) -> None:
        """Judge the child from its channel's counters (no lock that an I/O thread takes): owing an answer and
        silent for ``stall_alert_s`` is a stall (reported); for ``stall_kill_s``, it is ended and replaced."""
        link = self._link
        if link is None or link.dead.is_set():
            return
        silent_s = link.progress.silent_s(time.monotonic())
        if silent_s >= self.stall_kill_s and link.process.poll() is None:
            log.error(
                "the evaluation process %d has answered nothing for %.0f s with %d stored readings waiting; ending "
                "it so that a new one takes over from its saved state", link.process.pid, silent_s,
                self.journal.pending_readings,
            )
            self.metrics.inc("placesense_evaluation_stalls_total")
            link.process.kill()
        elif silent_s >= self.stall_alert_s:
            if self._state == "running":
                log.error("the evaluation process %d has answered nothing for %.0f s with %d stored readings "
                          "waiting", link.process.pid, silent_s, self.journal.pending_readings)
                self._set_state("stalled", f"no answer for {silent_s:.0f} s")
        elif self._state == "stalled":
            log.info("the evaluation process %d is answering again", link.process.pid)
            self._set_state("running", "")

    def _set_state(self, state: EvaluationState, detail: str) -> None:
        if state != self._state:
            self._state, self._state_since_ms = state, _wall_ms()
        self._detail = detail

    def health(self) -> EvaluationHealth:
        """What the watchdog sees now (read without locks)."""
        return EvaluationHealth(self._state, self._state_since_ms, self._detail, self.journal.pending_readings)


class _Call:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: str | None = None


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000
