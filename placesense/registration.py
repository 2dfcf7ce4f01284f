"""Registering a device while serve runs (``POST /api/v1/devices``): no hand-edited YAML, no restart.

One registration, in order: the running registry learns the device (ingest finds it from the next message on);
the registry file serve was started from gets it (so a restart keeps it); the broker folder, when
``PLACESENSE_BROKER_DIR`` names it, gets the device's own account, bound to its client id like every device
account (``placesense.broker_accounts``), and mosquitto is signalled to read it (``PLACESENSE_BROKER_PID_FILE``);
the evaluation process is told, and watches it from then on (``AddDevices``). The password is returned once and
kept only in the broker folder's private secrets file.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import yaml

from devices.registry import DeviceSpec, Registry
from placesense import broker_accounts
from placesense.basics.errors import ConfigError, EvaluationUnavailable
from placesense.basics.files import write_private

if TYPE_CHECKING:
    from placesense.settings import Settings

log = logging.getLogger(__name__)
_lock = threading.Lock()  # one registration at a time: the registry file and the broker files are rewritten whole


@dataclass(frozen=True)
class Registered:
    device: DeviceSpec
    broker_password: str | None  # None: bridged device, or no broker folder configured
    broker_reloaded: bool
    evaluation_watching: bool  # False: the evaluation process is restarting; it starts with the device


class _Watcher(Protocol):
    def add_devices(self, devices: Sequence[DeviceSpec]) -> int: ...


class Serving(Protocol):
    """What a registration changes in the running service (``placesense.service.Service``, which calls this)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def registry_file(self) -> Path | None: ...
    @property
    def evaluator(self) -> _Watcher: ...


def register_device(service: Serving, device: DeviceSpec) -> Registered:
    """Register ``device``; raises ``ValueError`` when it does not fit the registry (unknown subject, id taken)."""
    settings = service.settings
    with _lock:
        service.registry.add(device)
        registry_file = service.registry_file
        if registry_file is not None:
            _write_registry(service, registry_file)
        password, reloaded = None, False
        if settings.broker_dir is not None and device.format == "canonical":
            new = broker_accounts.add_device_accounts(
                service.registry, settings.broker_dir, prefix=settings.topic_prefix,
                ingest_user=settings.mqtt_username or broker_accounts.INGEST_USER,
                alerts_user=settings.mqtt_alerts_username or broker_accounts.ALERTS_PUBLISHER,
            )
            password = new.get(device.id)
            reloaded = _reload_broker(settings.broker_pid_file)
    try:
        watching = service.evaluator.add_devices([device]) >= 0
    except EvaluationUnavailable as exc:
        log.warning("device %s is registered; the evaluation process will watch it when it is back (%s)",
                    device.id, exc)
        watching = False
    log.info("device %s registered (%s %s of %s)%s", device.id, device.domain, device.kind, device.subject,
             ", with its broker account" if password else "")
    return Registered(device, password, reloaded, watching)


def _write_registry(service: Serving, path: Path) -> None:
    header = ("# The device registry. Devices registered over the API (POST /api/v1/devices) are written here;\n"
              "# edits by hand are kept, comments are not.\n")
    text = header + yaml.safe_dump(service.registry.to_data(), sort_keys=False, allow_unicode=True)
    try:
        write_private(path, text.encode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot write the device registry {path}: {exc.strerror}") from exc


def _reload_broker(pid_file: Path | None) -> bool:
    """Signal mosquitto to read its password and ACL files again; False when there is no pid file to use."""
    if pid_file is None:
        return False
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        log.error("could not signal mosquitto (pid file %s: %s); reload it by hand (systemctl reload mosquitto)",
                  pid_file, exc)
        return False
    return True
