"""``PrivacyControls``: export, erasure, retention and the audit export behind one object built once.

A thin facade for the command line and the tests: it is the ``PrivacyStores`` and hands each action to the module
that owns it (``export``, ``erasure``, ``retention``). It must hold no logic of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from placesense.tools.privacy import erasure, export
from placesense.tools.privacy.retention import Retention, apply_retention
from placesense.tools.privacy.stores import PrivacyStores


class PrivacyControls(PrivacyStores):
    """Export, erase and expire personal data across InfluxDB, the relational store and the learned state."""

    def export_home(self, home_id: str, *, operator: str = "") -> dict[str, Any]:
        """Everything held about one home, as one JSON-ready document (a subject-access request)."""
        return export.export_home(self, home_id, operator=operator)

    def delete_home(self, home_id: str, *, operator: str = "") -> dict[str, Any]:
        """Erase one home everywhere placesense keeps it, record the erasure, and say what is left to the admin."""
        return erasure.delete_home(self, home_id, operator=operator)

    def apply_retention(self, retention: Retention, *, now_ms: int | None = None, apply: bool = True) -> dict[str, int]:
        """Delete what is older than its retention period; with ``apply=False`` only count it. Returns counts."""
        return apply_retention(self, retention, now_ms=now_ms, apply=apply)

    def export_audit(self, out: Path) -> int:
        """Write the whole audit log, oldest first, as JSON lines; return the number of entries."""
        return export.export_audit(self, out)
