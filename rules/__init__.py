"""rules: deterministic rules that turn readings into findings, and the one alert lifecycle.

Rules must not decode payloads or write to InfluxDB; they read ``Reading``s and a clock and emit ``Finding``s.
"""
