"""storage: InfluxDB behind one door, through its v1 HTTP API (DESIGN.md, storage contract).

``influx`` is the client (line-protocol writes to ``/write``, InfluxQL through ``/query``) and the one place that
maps transport errors and InfluxDB's answers to the types in ``errors``; ``influxql`` quotes; ``readings`` and
``erasure`` hold every query the service and its tools run, each returning typed rows. Other rooms call these
functions and ``except`` these types; none builds InfluxQL or reads an error's text.

It sits above ``devices`` (it reads back ``Reading``s) and below everything else: ingest writes through it, the
API and the evaluation read through it. It must not import ingest, rules, anomaly, api or the composition root,
and must not batch, retry or spool (ingest's writer does).
"""

from placesense.storage.errors import (
    DatabaseNotFound,
    DataRejected,
    QueryRejected,
    StorageAccessRefused,
    StorageTimeout,
    StorageUnavailable,
)
from placesense.storage.influx import InfluxClient, InfluxConfig

__all__ = [
    "DataRejected",
    "DatabaseNotFound",
    "InfluxClient",
    "InfluxConfig",
    "QueryRejected",
    "StorageAccessRefused",
    "StorageTimeout",
    "StorageUnavailable",
]
