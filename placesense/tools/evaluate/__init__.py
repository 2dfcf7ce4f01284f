"""`placesense evaluate`: the measuring harness. Replays simulated homes, recorded real homes, real street data and
labelled series through the same evaluation serve runs (rules, detectors, the alert lifecycle) and reports the
figures in docs/anomaly.md. A tool: nothing below the CLI imports it.
"""
