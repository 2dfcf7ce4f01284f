"""The evaluation process: ``python -m placesense.evaluation_process FD``, started by ``placesense serve``.

``placesense.evaluation.Evaluator`` starts it with one end of a socket pair as ``FD`` and sends the
``EvaluationSpec`` first. The process restores the saved state (``placesense.evaluation_state``), says where that
state ends in the journal (``Ready``), and then answers the messages of ``placesense.evaluation_channel`` in
order, on one thread: batches are evaluated in chunks and their findings sent as soon as a chunk has some. It
saves its state every ``SAVE_EVERY_S`` when something changed, when asked, at ``Stop``, and when its parent
vanishes. It is not meant to be run by hand.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from multiprocessing.connection import Connection

import orjson
from prometheus_client import Counter, Histogram

from placesense.basics.memory import collect_set_aside, set_aside, settle_memory
from placesense.evaluation_channel import (
    CREDIT_BATCHES,
    AddDevices,
    Answer,
    Ask,
    Checkpoint,
    Evaluate,
    Evaluated,
    Partial,
    Ready,
    Saved,
    Stop,
    Stopped,
    Tick,
    Ticked,
)
from placesense.evaluation_core import CALLS, CHANGING_CALLS, EvaluationCore, EvaluationSpec

log = logging.getLogger("placesense.evaluation")

SAVE_EVERY_S = 60.0
EVALUATION_CHUNK = 250  # readings evaluated between chances to send findings on (~10 ms of work)
# In Prometheus' multiprocess mode (serve starts this process with PROMETHEUS_MULTIPROC_DIR set), these are written to
# files that serve's /metrics reads; registry=None: nothing here serves them itself.
BATCH_SECONDS = Histogram(
    "placesense_evaluation_batch_seconds", "time the rules and detectors took over one stored batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5), registry=None,
)
FINDINGS = Counter("placesense_findings_total", "findings the rules and detectors raised, by rule", ["rule"],
                   registry=None)


def run_child(conn: Connection, spec: EvaluationSpec) -> None:
    """The evaluation process's life: restore, then answer ``conn`` until told to stop."""
    from placesense.cli import setup_logging

    setup_logging(verbose=False, level=spec.log_level)  # the same log lines as serve's, on the same stderr
    core = EvaluationCore(spec)
    notes = core.restore()
    settle_memory()  # the learned state is the big heap here; keep full collections rare and short
    try:
        conn.send(Ready(os.getpid(), core.applied_seq, CREDIT_BATCHES, tuple(notes)))
        _serve(conn, core)
    except (EOFError, OSError):  # the pipe broke: the service died without a word (kill -9, out of memory)
        log.warning("the service stopped without saying so; saving the evaluation state and exiting")
        core.save()


def _evaluate(conn: Connection, core: EvaluationCore, batch: Evaluate) -> None:
    """Evaluate one batch in chunks. The last message (``Evaluated``) carries the time-based findings of the
    event clock and returns the batch's credit."""
    findings = []
    orphaned = False  # the parent is gone: finish the batch anyway, so the state saved next is a whole batch
    if batch.seq > core.applied_seq:
        started = time.perf_counter()
        raised: list[str] = []
        rows = orjson.loads(batch.payload)
        try:
            for start in range(0, len(rows), EVALUATION_CHUNK):
                findings = core.readings(rows[start: start + EVALUATION_CHUNK], replay=batch.replay)
                raised.extend(f.rule for f in findings)
                if findings and start + EVALUATION_CHUNK < len(rows) and not orphaned:
                    try:
                        conn.send(Partial(batch.seq, findings))
                    except OSError:
                        orphaned = True
                    findings = []
            if core.event_clock:
                ticked = core.tick()
                raised.extend(f.rule for f in ticked)
                findings.extend(ticked)
        except Exception:  # a failing rule must not take the others down with it
            log.exception("evaluating batch %d (%d readings) failed; the rules skip the rest of it",
                          batch.seq, batch.count)
            findings = []
        # The state now holds this batch, whole: a restart from a state saved after this replays from the next.
        core.applied_seq = batch.seq
        BATCH_SECONDS.observe(time.perf_counter() - started)
        for rule in raised:
            FINDINGS.labels(rule=rule).inc()
    if orphaned:
        raise EOFError("the service went away while a batch was evaluated")
    conn.send(Evaluated(batch.seq, batch.count, findings, core.clock.now_ms(), core.event_clock))


def _save(conn: Connection, core: EvaluationCore) -> None:
    started = time.monotonic()
    if core.save():
        conn.send(Saved(core.applied_seq, core.saved_bytes))
        log.debug("saved the evaluation state (%d bytes, up to batch %d) in %.2f s",
                  core.saved_bytes, core.applied_seq, time.monotonic() - started)
    collect_set_aside()


def _serve(conn: Connection, core: EvaluationCore) -> None:
    """Answer the parent until it says stop; a broken pipe ends this with EOFError or OSError."""
    last_save = time.monotonic()
    changed = False  # readings or time-based checks since the last save
    while True:
        due = last_save + SAVE_EVERY_S - time.monotonic()
        if due <= 0 or not conn.poll(due):
            if changed:
                _save(conn, core)
                changed = False
            last_save = time.monotonic()
            continue
        message = conn.recv()
        if isinstance(message, Evaluate):
            _evaluate(conn, core, message)
            changed = True
            set_aside()
        elif isinstance(message, Tick):
            ticked = core.tick()
            for finding in ticked:
                FINDINGS.labels(rule=finding.rule).inc()
            conn.send(Ticked(ticked, core.clock.now_ms()))
            changed = True
        elif isinstance(message, Ask):
            conn.send(_answer(core, message))
            if message.name in CHANGING_CALLS:
                _save(conn, core)
                changed, last_save = False, time.monotonic()
        elif isinstance(message, AddDevices):
            try:
                conn.send(Answer(message.call_id, core.add_devices(list(message.devices)), None))
            except ValueError as exc:
                conn.send(Answer(message.call_id, None, str(exc)))
            changed = True
        elif isinstance(message, Checkpoint):
            _save(conn, core)
            changed, last_save = False, time.monotonic()
        elif isinstance(message, Stop):
            core.save()
            conn.send(Stopped(core.applied_seq))
            return
        else:
            log.error("ignoring a message the evaluation process does not know: %s", type(message).__name__)


def _answer(core: EvaluationCore, ask: Ask) -> Answer:
    try:
        if ask.name not in CALLS:
            raise ValueError(f"no such call: {ask.name}")
        return Answer(ask.call_id, getattr(core, ask.name)(*ask.args), None)
    except Exception as exc:  # the caller gets the error; the loop carries on
        log.exception("evaluation call %s failed", ask.name)
        return Answer(ask.call_id, None, f"{type(exc).__name__}: {exc}")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m placesense.evaluation_process FD (started by placesense serve, not by hand)",
              file=sys.stderr)
        return 2
    conn = Connection(int(argv[0]))
    run_child(conn, conn.recv())
    return 0


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main(sys.argv[1:]))
