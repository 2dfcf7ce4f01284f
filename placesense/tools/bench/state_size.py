"""How big the saved evaluation state grows: bytes per home, flowerbed and air site after a simulated life, run
in-process through the same evaluation core as serve (no broker, database or child process). It reads the state
as the state file holds it and changes nothing the service saves.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson


def state_bytes(days: int) -> dict[str, float]:
    """Bytes of saved evaluation state per home, flowerbed and air site after ``days`` of simulated life
    (firmware-sim's fleet, in-process through the same evaluation core as serve), as it is written to the state
    file; the mean over four of each."""
    from firmware_sim.fleet import build_fleet
    from firmware_sim.simulation import generate

    from placesense.evaluation_core import EvaluationCore, EvaluationSpec, subject_state
    from placesense.statecodec import encode
    from rules.config import RulesConfig

    registry = build_fleet(homes=4, beds=4, air_sites=4, seed=11, formats="canonical")
    start = 1_704_067_200_000
    with tempfile.TemporaryDirectory(prefix="placesense-bench-state-") as folder:
        core = EvaluationCore(EvaluationSpec(registry, RulesConfig(), "event", Path(folder), 30))
        batch: list[tuple[Any, ...]] = []
        for device, m in generate(registry, start, start + days * 86_400_000, seed=11, anomalies=[]):
            batch.append((device.domain, device.id, device.subject, device.room, m.ts_ms,
                          {k: float(v) for k, v in m.metrics.items()}, m.battery_pct, m.seq))
            if len(batch) == 500:
                core.readings(batch)
                core.tick()
                batch = []
        core.readings(batch)
        parts: dict[str, Any] = {name: part.state() for name, part in core._parts().items()}
    sizes: dict[str, list[int]] = {"home": [], "bed": [], "site": []}
    for kind, subjects in (("home", registry.homes), ("bed", registry.flowerbeds), ("site", registry.air_sites)):
        for subject in subjects:
            ids = {subject} | {d.id for d in registry.devices.values() if d.subject == subject}
            sizes[kind].append(len(orjson.dumps(encode(subject_state(parts, ids)))))
    return {kind: round(sum(values) / len(values), 1) for kind, values in sizes.items()}

