"""Regenerate docs/screenshots/*.png from what ``make demo`` shows: the real ``placesense demo``, in Chromium.

    make screenshots            # or: .venv/bin/python scripts/screenshots.py [--out DIR] [--history-days N]

Runs ``placesense demo`` exactly as ``make demo`` does (the default fleet: 4 homes, 8 flowerbeds, 5 air sites,
7 days of history, the demo's labelled incidents placed relative to today), but in a temporary folder of its own
and on free loopback ports, so it neither needs nor disturbs a demo you may have running. It waits until the
simulator has published the history and the service has stored and evaluated all of it, then presses one help
button as a resident would: one message in the button's own format (Zigbee2MQTT when the fleet has such a
button), over MQTT, with the account the demo gave that device (its bridge's, from var/demo/sim-credentials.json;
the simulator's connection of that account is taken over for a moment and reconnects by itself). Then, in headless
Debian Chromium (selenium, Debian's chromedriver), with the demo's own tokens as ``make demo`` prints them:

- display.png: the wall display (display token) at 1280x800;
- street.png: the street round (street token) as a 412x915 phone;
- care.png: the care view (care token) at 1280x800, on the home whose help button was pressed;
- care-routine.png: the same page whole (1280 wide, as tall as the page): routine sentences and charts;
- devices.png: the device page (admin token) at 1280x800.

Everything it started is stopped on every way out (``placesense demo --stop`` in a ``finally``, SIGTERM and
Ctrl-C included) and the folder is removed. About a minute (50–75 s on 2 shared cores), most of it the week
of history going in.
Each image's visible text is checked for "null", "undefined", "NaN" and error messages; any found are printed
and the exit status is 1 (the images are still written, to look at).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from firmware_sim.encoders import SimMeasurement, encode  # noqa: E402
from firmware_sim.publisher import account_of  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from devices.registry import DeviceSpec, load_registry  # noqa: E402
from placesense.tools.localstack.process import free_port  # noqa: E402
from tests.pages.stack import CHROMIUM, PHONE, WALL, chromium  # noqa: E402

PLACESENSE = [sys.executable, "-m", "placesense.cli"]
HISTORY_TIMEOUT_S = 600  # the week of history in and evaluated; about a minute on a quiet 2-core machine
PAGE_TIMEOUT_S = 60
# Words that mean a page is showing something broken rather than the product.
SUSPECT = ("null", "undefined", "NaN", "[object Object]", "Errno", "Traceback", "Internal Server Error",
           "Something went wrong", "Could not", "could not load", "failed")


def say(message: str) -> None:
    print(f"screenshots: {message}", flush=True)


def _until(probe: Callable[[], object], timeout_s: float, what: str,
           progress: Callable[[], str] | None = None, every_s: float = 10.0) -> None:
    """Poll ``probe`` until it is true, printing ``progress()`` every ``every_s``; give up after ``timeout_s``."""
    started = time.monotonic()
    next_report = started + every_s
    while not probe():
        now = time.monotonic()
        if now - started > timeout_s:
            raise SystemExit(f"screenshots: timed out after {timeout_s:.0f} s waiting for {what}")
        if progress is not None and now >= next_report:
            say(f"  {progress()} ({now - started:.0f} s)")
            next_report = now + every_s
        time.sleep(0.5)


class Demo:
    """``placesense demo`` in ``folder`` on free ports, driven and read as a user would."""

    def __init__(self, folder: Path, history_days: float) -> None:
        self.folder = folder
        self.api_port = free_port()
        self.argv = ["demo", "--history-days", f"{history_days:g}", "--mqtt-port", str(free_port()),
                     "--influx-port", str(free_port()), "--api-port", str(self.api_port)]
        self.started = False

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _placesense(self, argv: list[str], timeout_s: float) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLACESENSE_")}
        done = subprocess.run([*PLACESENSE, *argv], cwd=self.folder, env=env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        if done.returncode != 0:
            raise SystemExit(f"screenshots: placesense {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self) -> None:
        self.started = True  # from here on, stop() has something to stop even if start fails half way
        self._placesense(self.argv, timeout_s=180)

    def stop(self) -> None:
        if self.started:
            # A second Ctrl-C or SIGTERM must not cut the stopping short and leave processes behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            say("stopping the demo")
            self._placesense(["demo", "--stop"], timeout_s=120)
            self.started = False

    def tokens(self) -> dict[str, str]:
        text = (self.folder / "var/demo/tokens.txt").read_text()
        return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)

    def url(self, page: str, role: str) -> str:
        """A page's address with the token in the fragment, as ``make demo`` prints it."""
        return f"{self.api}/{page}#token={self.tokens()[role]}"

    def get(self, path: str) -> Any:
        resp = httpx.get(f"{self.api}{path}", headers={"Authorization": f"Bearer {self.tokens()['admin']}"},
                         timeout=20)
        resp.raise_for_status()
        return resp.json() if "json" in resp.headers.get("content-type", "") else resp.text

    def metrics(self) -> dict[str, float]:
        values = {}
        for line in str(self.get("/metrics")).splitlines():
            if line.startswith("placesense_") and " " in line and "{" not in line:
                name, value = line.split()[:2]
                values[name] = float(value)
        return values

    def caught_up(self) -> bool:
        """The simulator has sent the history and now sends each reading when it is due."""
        log = self.folder / "var/log/simulate.log"
        return log.exists() and "caught up with the present" in log.read_text()

    def settled(self) -> bool:
        """Everything received so far is stored and evaluated."""
        m = self.metrics()
        return (m.get("placesense_evaluation_backlog", 1) == 0
                and m.get("placesense_readings_evaluated_total", 0) >= m.get("placesense_readings_stored_total", 1))

    def progress(self) -> str:
        m = self.metrics()
        return (f"{m.get('placesense_readings_stored_total', 0):,.0f} readings stored, "
                f"{m.get('placesense_readings_evaluated_total', 0):,.0f} evaluated, "
                f"backlog {m.get('placesense_evaluation_backlog', 0):,.0f}")

    def open_alerts(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/alerts?state=open&limit=500")["alerts"])

    def alerts_steady(self, quiet_s: float, timeout_s: float) -> None:
        """Wait until the open alerts and their severities stay the same for ``quiet_s``: once the history is
        in, the service's next ticks (every 5 s) still raise the severity of alerts nobody acknowledged for hours,
        and a picture taken before that would disagree with the next one."""
        def snapshot() -> set[tuple[Any, ...]]:
            return {(a["id"], a["severity"], a["state"]) for a in self.open_alerts()}

        seen, since = snapshot(), time.monotonic()

        def quiet() -> bool:
            nonlocal seen, since
            now = snapshot()
            if now != seen:
                seen, since = now, time.monotonic()
            return time.monotonic() - since >= quiet_s

        _until(quiet, timeout_s, f"the open alerts to stay the same for {quiet_s:g} s")


def help_button(demo: Demo) -> DeviceSpec:
    """The help button to press: a Zigbee one if the fleet has one (its bridge account publishes no last will,
    so taking its connection over for a moment marks nothing offline), else the first."""
    registry = load_registry(demo.folder / "var/demo/registry.yaml")
    buttons = sorted((d for d in registry.devices.values() if d.kind == "help_button"),
                     key=lambda d: (d.format == "canonical", d.id))
    if not buttons:
        raise SystemExit("screenshots: the demo fleet has no help button")
    return buttons[0]


def press_help(demo: Demo, button: DeviceSpec) -> None:
    """One press, as the button (or its Zigbee bridge) sends it, with that account's password from the demo."""
    account = account_of(button)
    accounts = json.loads((demo.folder / "var/demo/sim-credentials.json").read_text())["accounts"]
    broker = int(demo.argv[demo.argv.index("--mqtt-port") + 1])
    topic, payload = encode(button, SimMeasurement(time.time_ns() // 1_000_000, {"help_pressed": True}), "")
    # The broker makes the client id the username whatever is sent; a unique one keeps paho's own state apart.
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"shots-{uuid.uuid4().hex[:8]}")
    client.username_pw_set(account, accounts[account]["password"])
    client.connect("127.0.0.1", broker)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        if not info.is_published():
            raise SystemExit(f"screenshots: the broker did not acknowledge the press on {topic}")
    finally:
        client.disconnect()
        client.loop_stop()


class Shots:
    def __init__(self, demo: Demo, out: Path, profile: Path) -> None:
        self.demo, self.out, self.profile = demo, out, profile
        self.problems: list[str] = []

    def take(self, home: str) -> None:
        wall = chromium(WALL, self.profile / "wall")
        try:
            wall.get(self.demo.url("display", "display"))
            wait = WebDriverWait(wall, PAGE_TIMEOUT_S, poll_frequency=0.2)
            wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Live"))
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#alerts [data-alert]"))
            _rendered(wait, "watering", "air", "offline")
            self.save(wall, "display.png")

            wall.get(self.demo.url("care", "care"))
            wait.until(lambda d: any(o.get_attribute("value") == home
                                     for o in Select(d.find_element(By.ID, "home")).options))
            Select(wall.find_element(By.ID, "home")).select_by_value(home)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#alerts [data-alert]"))
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#overview [data-overview]"))
            _rendered(wait, "timeline", "routine", "wake-chart", "temperature-chart")
            # The charts draw into canvases once their data is in.
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#wake-chart canvas, "
                                                     "#temperature-chart canvas")) >= 2)
            self.save(wall, "care.png")
            self.save(wall, "care-routine.png", whole_page=True)

            wall.get(self.demo.url("devices", "admin"))
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#devices tr[data-device]"))
            _rendered(wait, "attention", "discovered")
            self.save(wall, "devices.png")
        finally:
            wall.quit()

        phone = chromium(PHONE, self.profile / "phone")
        try:
            phone.get(self.demo.url("street", "street"))
            wait = WebDriverWait(phone, PAGE_TIMEOUT_S, poll_frequency=0.2)
            wait.until(lambda d: d.find_element(By.ID, "updated").text.strip() not in ("", "not yet"))
            _rendered(wait, "round-summary", "broken", "air")
            self.save(phone, "street.png")
        finally:
            phone.quit()

    def save(self, driver: WebDriver, name: str, whole_page: bool = False) -> None:
        path = self.out / name
        driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
        self.check(driver, name)
        if whole_page:
            # Chromium renders beyond the viewport for this one capture; the page keeps its 1280 px layout.
            size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
            shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
            path.write_bytes(base64.b64decode(shot["data"]))
        elif not driver.save_screenshot(str(path)):
            raise SystemExit(f"screenshots: could not write {path}")
        say(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")

    def check(self, driver: WebDriver, name: str) -> None:
        text = driver.find_element(By.TAG_NAME, "body").text
        for word in SUSPECT:
            at = text.find(word)
            if at >= 0:
                context = text[max(0, at - 60):at + 60].replace("\n", " / ")
                self.problems.append(f"{name}: '{word}' on the page: …{context}…")


def _rendered(wait: WebDriverWait[Any], *ids: str) -> None:
    """Wait until each element has text or a chart in it."""
    for element_id in ids:
        def filled(driver: WebDriver, i: str = element_id) -> bool:
            return (driver.find_element(By.ID, i).text.strip() != ""
                    or bool(driver.find_elements(By.CSS_SELECTOR, f"#{i} canvas")))
        wait.until(filled)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"screenshots: stopped by signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where the PNGs go "
                        "(default docs/screenshots)")
    parser.add_argument("--history-days", type=float, default=7.0,
                        help="days of history the demo publishes first (default %(default)g, as 'make demo')")
    parser.add_argument("--no-press", action="store_true", help="do not press a help button")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"screenshots: {CHROMIUM} is missing; 'make setup' installs Debian's chromium")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    began = time.monotonic()
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="placesense-shots-") as scratch:
        demo = Demo(Path(scratch), args.history_days)
        try:
            say(f"starting placesense demo in {scratch} (API on port {demo.api_port})")
            demo.start()
            say(f"waiting for {args.history_days:g} days of history to be published, stored and evaluated")
            _until(demo.caught_up, HISTORY_TIMEOUT_S, "the simulator to catch up with the present", demo.progress)
            _until(demo.settled, HISTORY_TIMEOUT_S, "the history stored and evaluated", demo.progress)
            say(f"history in: {demo.progress()}; waiting for the alerts to settle")
            demo.alerts_steady(quiet_s=15, timeout_s=PAGE_TIMEOUT_S)
            say(f"{len(demo.open_alerts())} alerts open")
            button = help_button(demo)
            if not args.no_press:
                say(f"pressing the help button {button.id} ({button.format})")
                press_help(demo, button)
                _until(lambda: any(a["rule"] == "help_button" and a["subject"] == button.subject
                                   for a in demo.open_alerts()), PAGE_TIMEOUT_S, "the help-button alert")
            say("taking the pictures in headless Chromium")
            shots = Shots(demo, out, Path(scratch) / "chromium")
            shots.take(button.subject)
            problems = shots.problems
        finally:
            demo.stop()
    say(f"done in {time.monotonic() - began:.0f} s")
    for problem in problems:
        say(f"CHECK: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
