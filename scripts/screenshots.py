"""Regenerate docs/screenshots/{display,street,care,devices}.png: the built-in pages in headless Debian Chromium.

    make screenshots            # or: .venv/bin/python scripts/screenshots.py [--out DIR]

Runs a demo-like placesense of its own, so it needs nothing running and leaves nothing behind: mosquitto and
InfluxDB on free loopback ports in a temporary directory, the demo's fleet (4 homes, 8 flowerbeds, 3 air sites)
on a real Service and the API on uvicorn (tests/pages/stack.py). It publishes over MQTT two days of the firmware
simulator's homes and air sites (with a cold home and a pollution episode) and a July dry spell of the
flowerbeds replayed to end now, presses both help buttons and acknowledges one with a note, then takes the wall
display at 1280x800, the street view as a 412x915 phone, and the care view and the device page (admin) at
1280x800.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from placesense.localstack import InfluxDB, Mosquitto, running  # noqa: E402
from tests.pages.stack import (  # noqa: E402
    CHROMIUM,
    PHONE,
    WALL,
    PageStack,
    chromium,
    dry_spell,
    history,
    now_ms,
    press_help,
    publish_events,
    running_stack,
)

DRY_BEDS = ("bed-002", "bed-005")


def _until(probe: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        time.sleep(0.1)


def fill(stack: PageStack) -> None:
    """What a demo shows after a few days: routines, air, beds drying, two help-button presses."""
    end = now_ms() - 60_000
    publish_events(stack, history(stack.registry, days=2, end_ms=end, anomalies=["cold_home", "pollution_episode"]))
    publish_events(stack, dry_spell(stack.registry, DRY_BEDS, end_ms=end))
    _until(lambda: {b["bed_id"] for b in stack.api("/api/v1/flowerbeds/watering", "street")["beds"]}
           >= set(DRY_BEDS), 60, "the dried beds on the watering list")
    for home in stack.homes_with("help_button"):
        press_help(stack, home)

    def presses() -> list[dict[str, object]]:
        alerts = stack.api("/api/v1/alerts?state=open", "admin")["alerts"]
        return [a for a in alerts if a["rule"] == "help_button"]

    _until(lambda: len(presses()) == len(stack.homes_with("help_button")), 60, "the help-button alerts")
    acked = next(a for a in presses() if a["subject"] not in stack.care_homes)
    stack.service.alerts.ack(int(str(acked["id"])), "north-care", "phoned, she is fine")


def shoot(stack: PageStack, out: Path, profile: Path) -> None:
    wall = chromium(WALL, profile / "wall")
    try:
        wall.get(stack.url("display", "display"))
        wait = WebDriverWait(wall, 30, poll_frequency=0.1)
        wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Live"))
        _rendered(wait, "alerts", "watering", "air", "offline")
        _save(wall, out / "display.png")

        wall.get(stack.url("care", "care"))
        wait.until(lambda d: len(Select(d.find_element(By.ID, "home")).options) > 0)
        home = next(h for h in stack.homes_with("help_button") if h in stack.care_homes)
        Select(wall.find_element(By.ID, "home")).select_by_value(home)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#alerts [data-alert]"))
        _rendered(wait, "timeline", "routine")
        _save(wall, out / "care.png")

        wall.get(stack.url("devices", "admin"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#devices tr[data-device]"))
        _rendered(wait, "attention", "discovered")
        _save(wall, out / "devices.png")
    finally:
        wall.quit()

    phone = chromium(PHONE, profile / "phone")
    try:
        phone.get(stack.url("street", "street"))
        wait = WebDriverWait(phone, 30, poll_frequency=0.1)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#beds [data-bed]"))
        _rendered(wait, "broken", "air")
        _save(phone, out / "street.png")
    finally:
        phone.quit()


def _rendered(wait: WebDriverWait[WebDriver], *ids: str) -> None:
    for element_id in ids:
        wait.until(lambda d, i=element_id: d.find_element(By.ID, i).text.strip() != "")


def _save(driver: WebDriver, path: Path) -> None:
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    if not driver.save_screenshot(str(path)):
        raise SystemExit(f"screenshots: could not write {path}")
    print(f"screenshots: wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where the PNGs go")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"screenshots: {CHROMIUM} is missing; 'make setup' installs Debian's chromium")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="placesense-shots-") as scratch:
        tmp = Path(scratch)
        broker, influx = Mosquitto(tmp / "mosquitto"), InfluxDB(tmp / "influxdb")
        with running(broker, influx), running_stack(broker, influx, tmp) as stack:
            fill(stack)
            shoot(stack, out, tmp / "chromium")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
