"""A local mosquitto broker for the demo, the tests and the benchmark.

``Mosquitto`` writes a broker configuration into a data folder we choose and runs Debian's ``mosquitto`` on a
loopback port (``placesense.tools.localstack.process`` starts and stops it). It must not decide who may publish
what in production: ``placesense broker-config`` writes that, and this broker only includes its folder.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from pathlib import Path

from placesense.tools.localstack.process import (
    LocalStackError,
    ManagedProcess,
    free_port,
    port_open,
    require_binary,
)


@dataclass
class Mosquitto:
    """A mosquitto broker on a loopback port with persistence in ``data_dir``.

    By default it is anonymous and plain, as the tests and the benchmark run it. With ``config_dir``, a folder
    ``placesense broker-config`` wrote (``placesense.tools.broker_config``), the broker takes that folder's
    ``mosquitto.conf`` instead: its accounts, ACLs, limits and listeners, each binding client ids to usernames.
    ``port`` (and ``tls_port`` for a TLS listener) must then be the ones that configuration listens on.
    """

    data_dir: Path
    port: int = 0
    extra_config: str = ""
    config_dir: Path | None = None
    tls_port: int = 0
    proc: ManagedProcess = field(init=False)

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = require_binary("mosquitto", "mosquitto")
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(self.config_text())
        self.proc = ManagedProcess("mosquitto", [binary, "-c", str(conf)], self.data_dir / "mosquitto.log")

    def config_text(self) -> str:
        common = [
            "persistence true",
            f"persistence_location {self.data_dir}/",
            "autosave_interval 5",
            "persistent_client_expiration 7d",
            f"user {getpass.getuser()}",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_timestamp true",
            self.extra_config,
        ]
        if self.config_dir is not None:
            # Last, so that its limits are the ones in force; it defines the listeners itself.
            return "\n".join([*common, f"include_dir {self.config_dir.resolve()}", ""])
        # Persistent sessions and queues must survive a broker restart, and a consumer that acknowledges after a
        # durable write needs many messages in flight; placesense bounds that itself with MQTT 5's Receive Maximum.
        return "\n".join(
            [
                f"listener {self.port} 127.0.0.1",
                "allow_anonymous true",
                "max_inflight_messages 0",
                "max_queued_messages 2000000",
                "max_queued_bytes 0",
                *common,
                "",
            ]
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        """The TLS listener's URL; the server certificate must name 127.0.0.1."""
        if not self.tls_port:
            raise LocalStackError("this mosquitto has no TLS listener")
        return f"mqtts://127.0.0.1:{self.tls_port}"

    def start(self) -> None:
        self.proc.start_until(lambda: port_open(self.port), 15)

    def stop(self) -> None:
        self.proc.stop()

    def restart(self) -> None:
        self.stop()
        self.start()
