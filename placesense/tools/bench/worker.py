"""The bench's end of a helper process: starts ``python -m placesense.tools.bench.roles <role> …`` and holds its
JSON-lines conversation (``placesense.tools.bench.roles`` is the other end: it says ``ready``, waits for ``go``,
says ``done``). Waiting for a line always has a deadline, so a silent helper ends the run with an error rather
than hanging it. What a helper does is not decided here.
"""

from __future__ import annotations

import contextlib
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import orjson

from placesense.tools.bench.progress import BenchError


class Worker:
    """A ``placesense.tools.bench.roles`` child process and its JSON-lines conversation."""

    def __init__(self, role: str, argv: Sequence[str]) -> None:
        self.role = role
        self.process = subprocess.Popen(
            [sys.executable, "-m", "placesense.tools.bench.roles", role, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        # A reader thread, so that waiting for a line can time out without blocking on a pipe.
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: TextIO | None) -> None:
        assert stream is not None
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        """Wait for the next ``{"event": event, …}`` line."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(0.0, remaining))
            except queue.Empty:
                raise BenchError(f"the {self.role} worker said nothing for {timeout_s:.0f} s") from None
            if line is None:
                code = self.process.wait()
                raise BenchError(f"the {self.role} worker exited ({code}) before '{event}'")
            message: dict[str, Any] = orjson.loads(line)
            if message.get("event") == event:
                return message

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._reader.join(5)


@contextlib.contextmanager
def worker(role: str, argv: Sequence[str]) -> Iterator[Worker]:
    w = Worker(role, argv)
    try:
        yield w
    finally:
        w.close()
