"""rules: deterministic rules that turn readings into findings.

Rules must not decode payloads, write to InfluxDB or touch alerts; they read ``Reading``s and a clock and emit
``Finding``s, which the composition root hands to the alert lifecycle (``placesense.alerts``).
"""
