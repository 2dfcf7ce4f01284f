"""The bench's instruments: the service's peak resident memory, the CPU time processes spend per message, and
latency quantiles. They read ``/proc`` and psutil from the bench's own loop; none starts a thread beside the
pipeline it measures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import psutil


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence; 0.0 when it is empty."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[rank])


def quantiles(values: Sequence[float]) -> dict[str, float]:
    """p50 and p99 of ``values`` (any order), nearest rank, to two decimals."""
    ordered = sorted(values)
    return {"p50": round(percentile(ordered, 50), 2), "p99": round(percentile(ordered, 99), 2)}


class RssPeak:
    """The largest resident memory of the service seen while a pipeline part runs: this process (ingest and the
    API) plus its evaluation process, summed. The publisher, the probes and the servers are other processes.
    Sampled from ``/proc/<pid>/statm`` by the bench's own progress loop, so measuring adds no thread competing with
    the pipeline for the GIL (a sampling thread that walked every process ten times a second did). The sum counts
    pages the two processes share twice, so it errs high."""

    def __init__(self) -> None:
        self.peak_bytes = 0
        self.peak_parts: dict[str, int] = {}
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self, pid: int | str) -> int:
        try:
            with open(f"/proc/{pid}/statm", "rb") as statm:
                return int(statm.read().split()[1]) * self._page
        except OSError:  # gone, or not Linux
            try:
                return int(psutil.Process(None if pid == "self" else int(pid)).memory_info().rss)
            except psutil.Error:
                return 0

    def sample(self, evaluation_pid: int | None = None) -> None:
        parts = {"ingest_api": self._rss("self")}
        if evaluation_pid is not None:
            parts["evaluation"] = self._rss(evaluation_pid)
        for name, value in parts.items():
            self.peak_parts[name] = max(self.peak_parts.get(name, 0), value)
        self.peak_bytes = max(self.peak_bytes, sum(parts.values()))


class CpuMeter:
    """CPU time (user + system) processes spend over a part of the bench: a figure machine load barely moves,
    unlike wall-clock rates, so it shows where the work goes."""

    def __init__(self) -> None:
        self._start: dict[str, tuple[psutil.Process, float]] = {}

    def watch(self, name: str, pid: int | None) -> None:
        if pid is None:
            return
        try:
            process = psutil.Process(pid)
            times = process.cpu_times()
        except psutil.Error:
            return
        self._start[name] = (process, times.user + times.system)

    def per_message_us(self, messages: int) -> dict[str, float]:
        used: dict[str, float] = {}
        for name, (process, start) in self._start.items():
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            used[name] = round((times.user + times.system - start) / max(1, messages) * 1e6, 1)
        return used

