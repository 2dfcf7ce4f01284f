"""The one exception hierarchy of placesense.

Third-party errors (paho, httpx, SQLAlchemy) are mapped into these once, at the boundary that calls them,
with ``raise ... from exc`` so the original stays in the traceback.
"""

from __future__ import annotations


class PlacesenseError(Exception):
    """Base of every error placesense raises on purpose."""


class ConfigError(PlacesenseError):
    """Settings, the device registry or the rules file are invalid; the message says what and where."""


class DecodeError(PlacesenseError):
    """A payload could not be turned into a reading; ``reason`` is the plain-English dead-letter reason."""

    def __init__(self, reason: str, *, kind: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class StorageError(PlacesenseError):
    """A write or query against a store failed."""

    retryable: bool = False


class RetryableStorageError(StorageError):
    """The store is unreachable, timed out or answered 5xx: try again later, spool meanwhile."""

    retryable = True


class PermanentStorageError(StorageError):
    """The store refused the data itself (400, field type conflict): retrying cannot help."""


class EvaluationUnavailable(PlacesenseError):
    """The evaluation process (rules and detectors) did not answer: starting again after a failure, or overloaded."""
