"""ingest: moves messages from the broker to storage, durably, and hands stored readings on.

It decodes through ``devices`` and never interprets a metric itself; it must not evaluate rules or detectors.
A message is acknowledged to the broker only after its reading (or its dead letter) is durably stored.
"""
