"""How the bench speaks while it runs: progress lines on stderr (stdout carries only the result's JSON line), and
``BenchError`` when it cannot run or finish. Nothing here measures."""

from __future__ import annotations

import sys

from placesense.basics.errors import PlacesenseError


class BenchError(PlacesenseError):
    """The benchmark could not run or could not finish in time."""


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)
