"""placesense: the composition root that wires devices, ingest, rules, anomaly detection and the API.

Settings, the command line and the service live here; the rooms themselves never read the environment.
"""

__version__ = "0.1.0"
