"""Evaluation wiring: stored readings → rules and detectors (in their own process) → findings → alerts.

The rules and detectors cost more CPU per reading than receiving, decoding and storing it, and Python runs one
thread at a time per process. So they run in a child process, on the machine's other core, and ingest's process
keeps a core for the durable path:

- ingest's hand-on thread sends each stored batch down a socket pair (``Evaluator.__call__``); its small buffer
  is the back-pressure (a busy child makes the hand-on queue fill; acknowledgements never wait for the rules);
- the child (``python -m placesense.evaluation_process``, running ``run_child``) feeds the readings to the rule
  engine, the routine detector and the sensor detectors, fires time-based checks (after each batch on the event
  clock, on the parent's ticks on the live clock), and sends the findings back; it saves learned routines
  periodically, at stop, and when its parent vanishes;
- a receiver thread in the parent applies the findings to the alert lifecycle, which stays in the API's process
  with the alert store and the alert feed;
- the API's questions about rule state (the watering list, air quality, today's routine) are calls answered by
  the child in turn with the batches (``RulesView``, ``RoutineView``).

Delivery to the rules is as before: readings are handed on after they are stored and acknowledged, so a crash
never loses a reading, only its evaluation. A child that dies, or hangs for ``STALL_TIMEOUT_S`` with work
waiting, is started again from its last saved state.
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
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from devices.readings import Reading
from placesense.clock import Clock, EventClock
from placesense.errors import EvaluationUnavailable, PlacesenseError
from placesense.evaluation_core import CALLS, EvaluationCore, EvaluationSpec
from placesense.memory import collect_set_aside, set_aside, settle_memory

if TYPE_CHECKING:  # the child needs none of these: keeping them out keeps its memory down
    from ingest.metrics import IngestMetrics
    from rules.alerts import AlertService
    from rules.daqi import SiteAirQuality
    from rules.findings import Finding
    from rules.watering import WateringNeed

log = logging.getLogger("placesense.evaluation")

SAVE_EVERY_S = 600.0
CALL_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
RESTART_DELAY_S = (1.0, 30.0)  # first and longest wait before starting a child that died
EVALUATION_CHUNK = 250  # readings evaluated between chances to send findings on (~10 ms of work)
STALL_TIMEOUT_S = 60.0  # a child that answers nothing for this long while work waits is ended and started again


def run_child(conn: Connection, spec: EvaluationSpec) -> None:
    """The evaluation process's life: build the rules and detectors, then answer ``conn`` until told to stop."""
    from placesense.cli import setup_logging

    setup_logging(verbose=False, level=spec.log_level)  # the same log lines as serve's, on the same stderr
    core = EvaluationCore(spec)
    settle_memory()  # the learned state is the big heap here; keep full collections rare and short
    try:
        conn.send(("ready", os.getpid()))
        _serve(conn, core)
    except (EOFError, OSError):  # the pipe broke: the service died without a word (kill -9, out of memory)
        log.warning("the service stopped without saying so; saving learned routines and exiting")
        core.save()


def _evaluate_batch(conn: Connection, core: EvaluationCore, rows: list[tuple[Any, ...]]) -> None:
    """Evaluate a batch in chunks, sending findings as soon as a chunk has some: under load a batch holds
    thousands of readings, and an alert should not wait for the rest of its batch. The last message ("findings")
    carries the time-based findings of the event clock and ends the batch; earlier ones are "progress"."""
    reported = 0  # readings already counted in a "progress" message
    findings: list[Finding] = []
    try:
        for start in range(0, len(rows), EVALUATION_CHUNK):
            findings = core.readings(rows[start : start + EVALUATION_CHUNK])
            end = min(start + EVALUATION_CHUNK, len(rows))
            if findings and end < len(rows):
                conn.send(("progress", findings, core.clock.now_ms(), end - reported, False))
                reported, findings = end, []
        if core.event_clock:
            findings.extend(core.tick())
    except (EOFError, OSError):
        raise  # the pipe broke: the caller ends the process
    except Exception:  # a failing rule must not take the others down with it
        log.exception("evaluating a batch of %d readings failed; the rules skip the rest of it", len(rows))
        findings = []
    conn.send(("findings", findings, core.clock.now_ms(), len(rows) - reported, core.event_clock))


def _serve(conn: Connection, core: EvaluationCore) -> None:
    """Answer the parent until it says stop; a broken pipe ends this with EOFError or OSError."""
    last_save = time.monotonic()
    while True:
        if not conn.poll(SAVE_EVERY_S):
            core.save()
            collect_set_aside()
            last_save = time.monotonic()
            continue
        message = conn.recv()
        kind = message[0]
        if kind == "readings":
            _evaluate_batch(conn, core, message[1])
            set_aside()
        elif kind == "tick":
            conn.send(("findings", core.tick(), core.clock.now_ms(), 0, True))
        elif kind == "call":
            _, call_id, name, args = message
            try:
                if name not in CALLS:
                    raise ValueError(f"no such call: {name}")
                result = getattr(core, name)(*args)
            except Exception as exc:  # the caller gets the error; the loop carries on
                log.exception("evaluation call %s failed", name)
                conn.send(("result", call_id, None, f"{type(exc).__name__}: {exc}"))
            else:
                conn.send(("result", call_id, result, None))
        elif kind == "stop":
            core.save()
            conn.send(("stopped",))
            return
        if time.monotonic() - last_save > SAVE_EVERY_S:
            core.save()
            collect_set_aside()
            last_save = time.monotonic()


# -- the parent's side --------------------------------------------------------------------------------------------


class _Call:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: str | None = None


class Evaluator:
    """The ingest sink and the API's way to the rules and detectors running in the evaluation process."""

    def __init__(
        self,
        spec: EvaluationSpec,
        alerts: AlertService,
        clock: Clock,
        metrics: IngestMetrics,
        tick_interval_s: float = 5.0,
        hold_fds: tuple[int, ...] = (),
    ) -> None:
        self.spec = spec
        self.hold_fds = hold_fds  # descriptors each child inherits: the state folder's lock (placesense.statelock)
        self.alerts = alerts
        self.clock = clock
        self.metrics = metrics
        self.tick_interval_s = tick_interval_s
        self.event_clock = isinstance(clock, EventClock)
        self._send_lock = threading.Lock()
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._conn: Connection | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._receiver: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._in_flight = 0  # readings sent and not yet evaluated
        self._outstanding = 0  # messages sent that expect an answer
        self._last_heard = time.monotonic()
        self.stall_timeout_s = STALL_TIMEOUT_S

    # lifecycle

    def start(self) -> None:
        self._spawn()
        self._receiver = threading.Thread(target=self._receive_loop, name="evaluation-receive", daemon=True)
        self._receiver.start()
        self._ticker = threading.Thread(target=self._tick_loop, name="evaluation-ticker", daemon=True)
        self._ticker.start()

    def _spawn(self) -> None:
        # A fresh interpreter (no threads or locks copied from this one) running one module, so nothing of the
        # caller's main script runs again there; it shares our stderr for its log lines.
        ours, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
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
            ready = conn.recv() if conn.poll(120) else None
        except (EOFError, OSError):
            ready = None
        if not ready or ready[0] != "ready":
            process.kill()
            process.wait()
            conn.close()
            raise PlacesenseError("the evaluation process did not start (within 120 s); see the log lines above")
        with self._send_lock:
            self._conn, self._process = conn, process
        log.info("evaluation process %d started (rules, routine and sensor detectors)", process.pid)

    @property
    def backlog(self) -> int:
        """Readings sent to the child and not yet evaluated."""
        return self._in_flight

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Finish what was sent, save the learned routines and end the child."""
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join(self.tick_interval_s + 5)
        if self._receiver is None:
            return
        with contextlib.suppress(EvaluationUnavailable):  # already gone: nothing to stop
            self._send(("stop",))
        if not self._stopped.wait(STOP_TIMEOUT_S):
            log.error("the evaluation process did not stop within %.0f s; ending it", STOP_TIMEOUT_S)
        self._receiver.join(5)
        if self._process is not None:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        if self._conn is not None:
            self._conn.close()

    # the ingest sink

    def __call__(self, readings: Sequence[Reading]) -> None:
        """Send a batch of stored readings to be evaluated; blocks while the child is a batch or two behind."""
        self.clock.observe(max(r.ts_ms for r in readings))  # the API's clock follows event time as the child's does
        try:
            # As plain tuples: pickling a named tuple goes through Python code per reading, a tuple does not.
            self._send(("readings", [tuple(r) for r in readings]), count=len(readings))
        except EvaluationUnavailable:
            self.metrics.inc("placesense_readings_unevaluated_total", len(readings))
            log.warning("%d stored readings not evaluated: the evaluation process is restarting", len(readings))

    def tick(self) -> None:
        """Ask for the time-based checks now (the ticker does this every ``tick_interval_s`` on the live clock)."""
        self._send(("tick",))

    def call(self, name: str, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        """Ask the child a question; waits behind the batches sent before it."""
        call_id = next(self._ids)
        pending = self._calls[call_id] = _Call()
        try:
            self._send(("call", call_id, name, args))
            if not pending.done.wait(timeout_s):
                raise EvaluationUnavailable(f"the evaluation process did not answer {name} within {timeout_s:.0f} s")
        finally:
            self._calls.pop(call_id, None)
        if pending.error is not None:
            raise EvaluationUnavailable(f"the evaluation process could not answer {name}: {pending.error}")
        return pending.result

    def _send(self, message: tuple[Any, ...], count: int = 0) -> None:
        with self._send_lock:
            conn = self._conn
            if conn is None:
                raise EvaluationUnavailable("the evaluation process is not running")
            if self._outstanding == 0:
                self._last_heard = time.monotonic()  # waiting starts now, not at the last answer
            try:
                conn.send(message)
            except OSError as exc:  # the child died; the receiver starts another
                raise EvaluationUnavailable(f"the evaluation process is gone ({exc})") from exc
            self._in_flight += count
            self._outstanding += 1  # each message gets one answer: findings, result or stopped

    # the receiver thread

    def _receive_loop(self) -> None:
        delay = RESTART_DELAY_S[0]
        while True:
            conn = self._conn
            assert conn is not None
            try:
                message = conn.recv()
            except (EOFError, OSError):
                next_delay = None if self._stopping.is_set() else self._restart(delay)
                if next_delay is None:  # stopping
                    self._stopped.set()
                    return
                delay = next_delay
                continue
            kind = message[0]
            with self._send_lock:
                self._last_heard = time.monotonic()
                if kind != "progress":  # the one answer its message waited for
                    self._outstanding -= 1
            if kind in ("findings", "progress"):
                self._findings(*message[1:])
                delay = RESTART_DELAY_S[0]
            elif kind == "result":
                pending = self._calls.get(message[1])
                if pending is not None:
                    pending.result, pending.error = message[2], message[3]
                    pending.done.set()
            elif kind == "stopped":
                self._stopped.set()
                return

    def _findings(self, findings: list[Finding], now_ms: int, count: int, tick_alerts: bool) -> None:
        with self._send_lock:
            self._in_flight -= count
        if count:  # counted first: an alert change published below sees its readings as evaluated
            self.metrics.inc("placesense_readings_evaluated_total", count)
        try:
            if findings:
                self.alerts.apply_all(findings)
            if tick_alerts:
                self.alerts.tick(now_ms if self.event_clock else self.clock.now_ms())
        except Exception:  # a failing store or publisher must not stop the next findings
            log.exception("applying %d findings to alerts failed", len(findings))

    def _restart(self, delay: float) -> float | None:
        """Start a new child after one died; returns the wait before the next restart, None when stopping."""
        code = None
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(1)
            code = self._process.returncode
        with self._send_lock:
            lost, self._in_flight, self._outstanding = self._in_flight, 0, 0
            dead, self._conn = self._conn, None
        if dead is not None:
            dead.close()
        self.metrics.inc("placesense_readings_unevaluated_total", lost)
        for pending in list(self._calls.values()):
            pending.error = "it stopped while answering"
            pending.done.set()
        log.error(
            "the evaluation process exited unexpectedly (exit code %s) with %d readings not yet evaluated; "
            "starting it again in %.0f s from the learned state saved last",
            code, lost, delay,
        )
        while not self._stopping.wait(delay):
            try:
                self._spawn()
            except Exception:
                log.exception("could not start the evaluation process; will try again")
                delay = min(delay * 2, RESTART_DELAY_S[1])
                continue
            self.metrics.inc("placesense_evaluation_restarts_total")
            if self._stopping.is_set():  # stop() came while this one started: its "stop" found no child
                with contextlib.suppress(EvaluationUnavailable):
                    self._send(("stop",))
            return min(delay * 2, RESTART_DELAY_S[1])
        return None

    def _tick_loop(self) -> None:
        """Every ``tick_interval_s``: the time-based checks (live clock) and the watchdog."""
        while not self._stopping.wait(min(self.tick_interval_s, self.stall_timeout_s / 4)):
            self._watchdog()
            if self.event_clock:
                continue  # time moves with the readings; the child checks after each batch
            try:
                self.tick()
            except EvaluationUnavailable:
                pass  # the receiver is starting a new child
            except Exception:  # a failing check must not stop the others next time
                log.exception("time-based checks failed; will try again")

    def _watchdog(self) -> None:
        """End a child that has work waiting and has answered nothing for ``stall_timeout_s``: a hung rule would
        otherwise hold every later reading back from evaluation, and ingest with it once the hand-on queue fills.
        The receiver then starts a new one, as after a crash."""
        with self._send_lock:
            silent_s = time.monotonic() - self._last_heard
            stalled = self._outstanding > 0 and silent_s > self.stall_timeout_s
            process = self._process
        if stalled and process is not None and process.poll() is None:
            log.error(
                "the evaluation process %d has answered nothing for %.0f s with %d readings waiting; ending it so "
                "that a new one can take over", process.pid, silent_s, self._in_flight,
            )
            process.kill()


class RulesView:
    """What the API reads from the rule engine, asked of the evaluation process."""

    def __init__(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

    def watering_list(self, now_ms: int | None = None) -> list[WateringNeed]:
        """Beds that need water now or within a day, most urgent first."""
        result: list[WateringNeed] = self._evaluator.call("watering_list", now_ms)
        return result

    def air_quality(self) -> list[SiteAirQuality]:
        """Latest DAQI band per site and pollutant."""
        result: list[SiteAirQuality] = self._evaluator.call("air_quality")
        return result


class RoutineView:
    """What the API reads from the routine detector, asked of the evaluation process."""

    def __init__(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

    def routine_today(self, home_id: str) -> dict[str, Any]:
        """Today's routine against the learned baseline for one home."""
        result: dict[str, Any] = self._evaluator.call("routine_today", home_id)
        return result
