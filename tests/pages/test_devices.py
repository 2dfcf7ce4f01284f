"""The device page in headless Chromium, on the demo's fleet: an offline device is listed first, a LoRaWAN sensor's
radio signal is shown, a device that published without being registered is listed as discovered, and registering
it through the page's form makes it a registered device whose new broker account logs in on a real, secured
mosquitto (the password is shown once). Other roles are told the page is not theirs.

Ingest listens on the suite's open broker (an unknown device could not publish on a secured one); the broker
folder the registration writes to is served by a second mosquitto, secured with accounts and ACLs, as in
``tests/api/test_device_registration.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from firmware_sim import Simulation
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from placesense.tools.broker_config import Listener, write_broker_config
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.process import free_port
from tests.helpers import eventually
from tests.pages.axe import violations
from tests.pages.stack import SEED, PageStack, demo_fleet, now_ms, publish_events, running_stack
from tests.trust.conftest import MqttUser

OFFLINE = "h-219ba6-climate"  # a canonical device that says goodbye on its status topic
NEW = "h-219ba6-spare-help"  # publishes, but nobody registered it
HOME = "h-219ba6"
ROWS_JS = "return [...document.querySelectorAll('#devices tr[data-device]')].map((r) => r.dataset.device);"
ATTENTION_JS = """return [...document.querySelectorAll('#attention [data-attention]')].map((c) => ({
  id: c.dataset.attention, why: c.dataset.why}));"""


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mosquitto, Path, Path]]:
    """A mosquitto with the demo fleet's accounts; its folder is where registration adds a device's account."""
    tmp = tmp_path_factory.mktemp("secured")
    port = free_port()
    files = write_broker_config(demo_fleet(), tmp / "broker", listen=Listener("127.0.0.1", port))
    broker = Mosquitto(tmp / "data", port=port, config_dir=files.directory)
    broker.start()
    assert broker.proc.process is not None
    pid_file = tmp / "mosquitto.pid"
    pid_file.write_text(str(broker.proc.process.pid))
    yield broker, files.directory, pid_file
    broker.stop()


@pytest.fixture(scope="module")
def fleet(mosquitto: Mosquitto, influx: InfluxDB, secured: tuple[Mosquitto, Path, Path],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageStack]:
    _, broker_dir, pid_file = secured
    with running_stack(mosquitto, influx, tmp_path_factory.mktemp("devices"),
                       broker_dir=broker_dir, broker_pid_file=pid_file) as stack:
        yield stack


def _publish(stack: PageStack, topic: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", int(stack.mqtt_url.rsplit(":", 1)[1]))
    client.loop_start()
    try:
        client.publish(f"{stack.prefix}{topic}", payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _device(stack: PageStack, device_id: str) -> dict[str, Any] | None:
    found = stack.api("/api/v1/devices?signal=true", "admin")["devices"]
    return next((d for d in found if d["id"] == device_id), None)


def test_devices_page_lists_offline_first_and_registers_a_discovered_device(
    fleet: PageStack, secured: tuple[Mosquitto, Path, Path], wall_browser: webdriver.Chrome,
) -> None:
    broker = secured[0]
    # A LoRaWAN soil sensor's uplinks, as The Things Stack forwards them, with the gateway's RSSI and SNR.
    lora = next(d for d in fleet.registry.devices.values() if d.format == "ttn")
    end = now_ms() - 60_000
    uplinks = [e for e in Simulation(fleet.registry, end - 6 * 3_600_000, end, seed=SEED).events()
               if e.device.id == lora.id]
    assert uplinks, "the simulator sends the soil sensor's uplinks"
    publish_events(fleet, uplinks[-2:])
    _publish(fleet, f"placesense/v1/home/{OFFLINE}/status", b"offline")
    _publish(fleet, f"placesense/v1/home/{NEW}/telemetry",
             orjson.dumps({"ts": now_ms(), "metrics": {"battery_pct": 91.0}, "seq": 1}))
    eventually(lambda: (d := _device(fleet, OFFLINE)) and d["online"] is False, 20, "the device to be offline")
    eventually(lambda: any(d["source_id"] == NEW for d in fleet.api("/api/v1/devices/discovered", "admin")),
               20, "the unknown device to be discovered")
    signal = _device(fleet, lora.id)
    assert signal is not None and signal["rssi_dbm"] is not None and signal["snr_db"] is not None

    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    acting = WebDriverWait(wall_browser, 30, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))
    wall_browser.get(fleet.url("devices", "admin"))
    attention = wait.until(lambda d: d.execute_script(ATTENTION_JS))
    # Offline comes first in what needs attention and in the table, before the devices never heard from.
    assert attention[0] == {"id": OFFLINE, "why": "offline"}, attention[:3]
    assert [a["id"] for a in attention if a["why"] == "offline"] == [OFFLINE]
    assert wall_browser.execute_script(ROWS_JS)[0] == OFFLINE
    row = wall_browser.find_element(By.CSS_SELECTOR, f"#devices tr[data-device='{OFFLINE}']").text
    assert "offline" in row.lower() and "climate" in row
    lora_row = wall_browser.find_element(By.CSS_SELECTOR, f"#devices tr[data-device='{lora.id}']").text
    assert f"{round(signal['rssi_dbm'])} dBm" in lora_row and "SNR" in lora_row, lora_row
    assert "%" in lora_row  # its battery, from the uplink
    assert NEW not in wall_browser.execute_script(ROWS_JS)
    found = violations(wall_browser)
    assert found == [], found

    # Register the discovered device through the form.
    acting.until(lambda d: d.find_element(By.XPATH, f"//*[@data-discovered='{NEW}']//button").click() or True)
    assert Select(wall_browser.find_element(By.ID, "reg-id")).first_selected_option.get_attribute("value") == NEW
    assert Select(wall_browser.find_element(By.ID, "reg-domain")).first_selected_option.get_attribute("value") == "home"
    Select(wall_browser.find_element(By.ID, "reg-subject")).select_by_value(HOME)
    Select(wall_browser.find_element(By.ID, "reg-kind")).select_by_value("help_button")
    Select(wall_browser.find_element(By.ID, "reg-room")).select_by_value("hallway")
    wall_browser.find_element(By.CSS_SELECTOR, "#register-form button[type=submit]").click()
    account = wait.until(lambda d: d.execute_script(
        "const c = {}; document.querySelectorAll('#registered [data-account]').forEach((n) => "
        "{ c[n.dataset.account] = n.textContent; }); return c.password ? c : null;"))
    panel = wall_browser.find_element(By.ID, "registered").text
    assert "shown only this once" in panel and "alert rules watch it now" in panel
    assert account["username"] == NEW and account["client_id"] == NEW and len(account["password"]) > 30
    # It is a registered device now, and no longer listed as discovered.
    wait.until(lambda d: NEW in d.execute_script(ROWS_JS))
    assert not wall_browser.find_elements(By.CSS_SELECTOR, f"#discovered [data-discovered='{NEW}']")
    registered = _device(fleet, NEW)
    assert registered is not None and registered["kind"] == "help_button" and registered["room"] == "hallway"

    # Its new account logs in on the secured broker, with its own client id; a guessed password does not.
    device = MqttUser(broker.port, NEW, account["password"], NEW)
    guess = MqttUser(broker.port, NEW, "not-its-password", f"guess-{uuid.uuid4().hex[:8]}")
    try:
        assert device.connack is not None and not device.connack.is_failure
        assert guess.connack is not None and guess.connack.is_failure
    finally:
        for user in (device, guess):
            user.client.disconnect()
            user.client.loop_stop()

    # The password is not kept by the page: reloading it shows the device, not its password.
    wall_browser.refresh()
    wait.until(lambda d: NEW in d.execute_script(ROWS_JS))
    assert account["password"] not in wall_browser.page_source


@pytest.mark.parametrize("who", ["care", "street"])
def test_devices_page_tells_other_roles_it_is_for_administrators(
    fleet: PageStack, wall_browser: webdriver.Chrome, who: str,
) -> None:
    wall_browser.get(fleet.url("devices", who))
    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    message = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "main .error-summary"))[0].text
    assert "for administrators" in message
    assert not wall_browser.find_elements(By.ID, "register-form")


def test_devices_page_fits_a_phone_without_scrolling_sideways(
    fleet: PageStack, phone_browser: webdriver.Chrome,
) -> None:
    phone_browser.get(fleet.url("devices", "admin"))
    wait = WebDriverWait(phone_browser, 30, poll_frequency=0.1)
    wait.until(lambda d: d.execute_script(ROWS_JS))
    # The table scrolls inside its own region; the page itself does not.
    widths = phone_browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth];")
    assert widths[0] <= widths[1], widths
