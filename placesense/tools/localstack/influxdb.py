"""A local InfluxDB 1.x server for the demo, the tests and the benchmark.

``InfluxDB`` writes a configuration with its data under a folder we choose and runs Debian's ``influxd`` on
loopback ports (``placesense.tools.localstack.process`` starts and stops it). It must not create databases or
write points: ``placesense.storage`` does that, as it does against a production server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx

from placesense.tools.localstack.process import ManagedProcess, free_port, require_binary


@dataclass
class InfluxDB:
    """An InfluxDB 1.x server (Debian's ``influxdb``) on loopback ports with its data in ``data_dir``."""

    data_dir: Path
    port: int = 0
    proc: ManagedProcess = field(init=False)

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = free_port()
        self.rpc_port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = require_binary("influxd", "influxdb")
        conf = self.data_dir / "influxdb.conf"
        conf.write_text(self.config_text())
        self.proc = ManagedProcess("influxd", [binary, "-config", str(conf)], self.data_dir / "influxd.log")

    def config_text(self) -> str:
        d = self.data_dir
        return f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{d}/meta"
  logging-enabled = false

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  cache-max-memory-size = "512m"
  max-series-per-database = 0
  max-values-per-tag = 0

[coordinator]
  log-queries-after = "0s"

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = false
  log-enabled = false
  write-tracing = false
  max-body-size = 0

[logging]
  level = "warn"

[continuous_queries]
  enabled = false
"""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ping(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        self.proc.start_until(lambda: self.ping(), 30)

    def stop(self) -> None:
        self.proc.stop()

    def restart(self) -> None:
        self.stop()
        self.start()
