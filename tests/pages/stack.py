"""Building blocks of the browser tests and of ``make screenshots``: the demo's fleet on a real placesense, the
firmware simulator's readings published over MQTT, and headless Debian Chromium driven by selenium.

The stack is what ``make demo`` runs, in one process: a real ``Service`` (real mosquitto and InfluxDB, the rule
engine, routine detector and alert lifecycle it builds) for ``build_fleet(homes=4, beds=8, air_sites=3,
seed=7, formats="mix")``, and the API on a real uvicorn with a token per role.

Flowerbeds barely dry in a British November, so ``dry_spell`` runs the simulator's ``bed_drying_out`` in a July
week and replays the soil sensors' readings shifted to end now (the same readings, only later).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from firmware_sim import SimResult, Simulation, build_fleet, publish
from firmware_sim.encoders import SimMeasurement, encode
from firmware_sim.firmware import SimEvent
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.selenium_manager import SeleniumManager

from api.app import create_app
from api.auth import TokenEntry, TokenStore, hash_token
from devices.registry import DeviceSpec, Registry
from placesense.basics.timeunits import DAY_MS
from placesense.service import Service
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.api.conftest import serve
from tests.helpers import stack_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
)
WALL = (1280, 800)  # an operations-room screen
PHONE = (412, 915)  # a phone in a park
SMALL_PHONE = (390, 844)  # the narrowest common phone
SEED = 7  # the demo's fleet and seed
SUMMER_START = datetime(2026, 7, 6, tzinfo=UTC)  # a dry July week for the flowerbeds
SUMMER_SEED = 2


def demo_fleet() -> Registry:
    return build_fleet(homes=4, beds=8, air_sites=3, seed=SEED, formats="mix")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class PageStack:
    service: Service
    registry: Registry
    base_url: str
    mqtt_url: str
    prefix: str
    tokens: dict[str, str]
    care_homes: tuple[str, ...]

    def url(self, page: str, who: str) -> str:
        """A page's address with the token in the fragment, as ``make demo`` prints it."""
        return f"{self.base_url}/{page}#token={self.tokens[who]}"

    def api(self, path: str, who: str) -> Any:
        resp = httpx.get(f"{self.base_url}{path}", headers={"Authorization": f"Bearer {self.tokens[who]}"},
                         timeout=20)
        resp.raise_for_status()
        return resp.json()

    def device(self, subject: str, kind: str) -> DeviceSpec:
        return next(d for d in self.registry.devices.values() if d.subject == subject and d.kind == kind)

    def homes_with(self, kind: str) -> list[str]:
        return sorted({d.subject for d in self.registry.devices.values() if d.domain == "home" and d.kind == kind})

    def stored(self) -> int:
        return int(self.service.metrics.value("placesense_readings_stored_total"))


def make_tokens(care_homes: Sequence[str]) -> tuple[dict[str, str], TokenStore]:
    secrets = {who: f"tok-{who}-{uuid.uuid4().hex}" for who in ("admin", "care", "street", "display", "display-cy")}
    entries = [
        TokenEntry(name="ops-admin", role="admin", sha256=hash_token(secrets["admin"])),
        TokenEntry(name="south-care", role="care", homes=list(care_homes), sha256=hash_token(secrets["care"])),
        TokenEntry(name="parks-team", role="street", sha256=hash_token(secrets["street"])),
        TokenEntry(name="ops-wall", role="display", sha256=hash_token(secrets["display"])),
        # A wall screen set up for Welsh in the tokens file: its pages open in Welsh with no ?lang.
        TokenEntry(name="wrexham-wall", role="display", sha256=hash_token(secrets["display-cy"]), lang="cy"),
    ]
    return secrets, TokenStore(entries)


@contextmanager
def running_stack(mosquitto: Mosquitto, influx: InfluxDB, tmp: Path, **overrides: Any) -> Iterator[PageStack]:
    """The demo's fleet on a real Service and a real uvicorn; its InfluxDB database is dropped afterwards.
    ``overrides`` are further settings (a broker folder to register devices into, say)."""
    unique = uuid.uuid4().hex[:10]
    db = f"t_pages_{unique}"
    registry = demo_fleet()
    settings = stack_settings(mosquitto, influx, db, tmp, f"pages-{unique}", **{"influx_timeout_s": 5.0, **overrides})
    service = Service.build(settings, registry=registry)
    service.start()
    server = None
    try:
        assert service.pipeline.consumer.wait_connected(10), "ingest did not connect to the broker"
        care_homes = tuple(sorted(registry.homes)[:2])  # a care team sees two of the four homes
        secrets, store = make_tokens(care_homes)
        server, base_url = serve(create_app(service, manage_lifecycle=False, tokens=store))
        yield PageStack(service, registry, base_url, mosquitto.url, settings.topic_prefix, secrets, care_homes)
    finally:
        if server is not None:
            server.should_exit = True
        service.stop()
        httpx.post(f"{influx.url}/query", data={"q": f'DROP DATABASE "{db}"'}, timeout=30)


def _wait(probe: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


def publish_events(stack: PageStack, events: Sequence[SimEvent]) -> SimResult:
    """Publish simulator events over MQTT in each device's own format; return once placesense stored them all."""
    before = stack.stored()
    devices = list({e.device.id: e.device for e in events}.values())
    result = publish(events, devices, stack.mqtt_url, topic_prefix=stack.prefix, statuses=False,
                     client_id=f"sim-pages-{uuid.uuid4().hex[:8]}", progress_every_s=600)
    _wait(lambda: stack.stored() >= before + result.total, 120, f"{result.total} readings stored")
    return result


def history(registry: Registry, days: float, end_ms: int, anomalies: Iterable[str] = ()) -> list[SimEvent]:
    """The homes' and air sites' messages of the last ``days`` up to ``end_ms`` (the soil comes from ``dry_spell``)."""
    sim = Simulation(registry, end_ms - int(days * DAY_MS), end_ms, seed=SEED, anomalies=list(anomalies))
    return [e for e in sim.events() if e.device.domain != "soil"]


def dry_spell(registry: Registry, dry: Sequence[str], end_ms: int, only_dry: bool = False) -> list[SimEvent]:
    """The simulator's ``bed_drying_out`` for the beds ``dry`` over a July week, as their soil sensors (and,
    unless ``only_dry``, every other bed's) reported it, shifted so the last drying day ends at ``end_ms``."""
    start = int(SUMMER_START.timestamp() * 1000)
    sim = Simulation(registry, start, start + 10 * DAY_MS, seed=SUMMER_SEED,
                     anomalies=[f"bed_drying_out:{bed}@1" for bed in dry])
    cut = min(i.end_ms for i in sim.ground_truth if i.type == "bed_drying_out")
    shift = end_ms - cut
    return [
        dataclasses.replace(e, send_ms=e.send_ms + shift,
                            measurement=dataclasses.replace(e.measurement, ts_ms=e.measurement.ts_ms + shift))
        for e in sim.events()
        if e.device.domain == "soil" and e.measurement.ts_ms <= cut and (not only_dry or e.device.subject in dry)
    ]


def press_help(stack: PageStack, home: str) -> None:
    """Press ``home``'s help button: one message in the button's own format (Zigbee or canonical), over MQTT."""
    device = stack.device(home, "help_button")
    topic, payload = encode(device, SimMeasurement(now_ms(), {"help_pressed": True}), stack.prefix)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"press-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", int(stack.mqtt_url.rsplit(":", 1)[1]))
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _no_selenium_manager(self: SeleniumManager, args: list[str]) -> dict[str, str]:
    raise AssertionError("selenium-manager must not run: placesense uses Debian's chromium and chromedriver")


def chromium(size: tuple[int, int], profile: Path) -> webdriver.Chrome:
    """Headless Debian Chromium through Debian's chromedriver; selenium never downloads or looks for a browser."""
    SeleniumManager.binary_paths = _no_selenium_manager  # type: ignore[method-assign]
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={size[0]},{size[1]}")
    driver = webdriver.Chrome(service=ChromeService(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    # The viewport itself is the size asked for (a window has chrome around it, and is at least 500 px wide);
    # a phone is emulated as DevTools does.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 640})
    return driver
