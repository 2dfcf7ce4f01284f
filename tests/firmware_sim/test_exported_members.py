"""The package's public surface: what other rooms import from ``firmware_sim`` stays put."""

from __future__ import annotations

import subprocess
import sys

import firmware_sim

EXPECTED = {
    "ANOMALY_TYPES", "AnomalyRequest", "AnomalyType", "Injection", "PublishError", "Quirks", "SimEvent",
    "SimMeasurement", "SimResult", "Simulation", "build_fleet", "generate", "ground_truth", "parse_anomaly",
    "publish", "random_requests", "read_ground_truth", "write_ground_truth", "write_registry",
}


def test_all_names_are_exported_and_resolve() -> None:
    assert set(firmware_sim.__all__) == EXPECTED
    for name in firmware_sim.__all__:
        assert getattr(firmware_sim, name) is not None, name


def test_importing_the_cli_does_not_load_paho_or_pydantic() -> None:
    # 'placesense --help' imports every command's module; ours must stay light.
    code = "import sys, firmware_sim.cli; print(sorted(m for m in ('paho', 'pydantic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
