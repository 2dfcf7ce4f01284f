"""What can go wrong talking to InfluxDB, as types: the storage client raises these and callers ``except`` them.

Each is a ``RetryableStorageError`` (try again later; ingest spools meanwhile) or a ``PermanentStorageError``
(retrying the same request cannot help), so code that only cares about that split keeps catching those. The
client (``placesense.storage.influx``) is the one place that reads InfluxDB's answers to choose a type; nobody
else looks at an error's text. This module must not import httpx or know HTTP status codes.
"""

from __future__ import annotations

from placesense.basics.errors import PermanentStorageError, RetryableStorageError


class StorageUnavailable(RetryableStorageError):
    """InfluxDB cannot be reached, or answered that it cannot serve now (5xx, 429)."""


class StorageTimeout(StorageUnavailable):
    """InfluxDB did not answer in time."""


class StorageAccessRefused(RetryableStorageError):
    """InfluxDB refused our credentials (401, 403) on a write; an admin can fix them while ingest spools."""


class DatabaseNotFound(RetryableStorageError):
    """The database does not exist (yet): nothing has been written, or it was dropped. A write can succeed once it
    is created (``InfluxClient.ensure_database``, or a DBRP mapping on 2.x); a read finds nothing."""


class DataRejected(PermanentStorageError):
    """InfluxDB refused the written data itself (400, a field type conflict)."""


class QueryRejected(PermanentStorageError):
    """InfluxDB refused a query (an InfluxQL error, or a 4xx answer)."""


__all__ = [
    "DataRejected",
    "DatabaseNotFound",
    "QueryRejected",
    "StorageAccessRefused",
    "StorageTimeout",
    "StorageUnavailable",
]
