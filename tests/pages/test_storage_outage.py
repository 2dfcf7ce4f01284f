"""InfluxDB stopped under a running placesense, as a carer sees it: the care page says placesense cannot see
properly and since when, a help press still reaches her, and when InfluxDB is back the banner goes and the
readings that waited on disk are stored. Its own InfluxDB, so stopping it touches no other test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually
from tests.pages.stack import PageStack, press_help, running_stack


@pytest.fixture
def stack(mosquitto: Mosquitto, own_influx: InfluxDB, tmp_path: Path) -> Iterator[PageStack]:
    with running_stack(mosquitto, own_influx, tmp_path / "stack") as one:
        yield one


def _banner(driver: webdriver.Chrome) -> str | None:
    node = driver.find_elements(By.ID, "monitoring")
    return node[0].text if node and node[0].is_displayed() else None


def test_the_care_page_says_when_influxdb_is_down_and_a_help_press_still_comes_through(
    stack: PageStack, own_influx: InfluxDB, wall_browser: webdriver.Chrome
) -> None:
    home = next(h for h in stack.homes_with("help_button") if h in stack.care_homes)
    wait = WebDriverWait(wall_browser, 60, poll_frequency=0.2)
    # The banner checked every second (the address can set that; 15 s by default), not waited for 15 s twice.
    wall_browser.get(stack.url("care", "care").replace("#", "?status_s=1#"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#home option"))
    assert _banner(wall_browser) is None
    stored_before = stack.stored()

    def influx_alerts() -> list[dict[str, str]]:
        return [a for a in stack.api("/api/v1/alerts?audience=ops", "admin")["alerts"]
                if a["rule"] == "influxdb_unreachable"]

    own_influx.stop()
    try:
        press_help(stack, home)  # a reading that now has to wait on disk
        alert = eventually(
            lambda: next((a for a in stack.api(f"/api/v1/alerts?state=open&subject={home}", "care")["alerts"]
                          if a["rule"] == "help_button"), None), 60, "the help-button alert while InfluxDB is down")
        assert alert["severity"] == "critical"
        banner = wait.until(_banner)
        assert banner.startswith("Monitoring degraded since"), banner
        assert httpx.get(f"{stack.base_url}/healthz", timeout=10).status_code == 503
        # The ops team hears of it too, while it lasts (on a loaded machine the watch may take a while).
        eventually(lambda: any(a["state"] == "open" for a in influx_alerts()), 60,
                   "the influxdb_unreachable ops alert opened")
    finally:
        own_influx.start()
    wait.until(lambda d: _banner(d) is None)
    # The press waited on disk and is in InfluxDB now: nothing lost.
    eventually(lambda: stack.stored() > stored_before, 60, "the waiting reading stored")
    # The banner reads the live state; the ops alert is resolved by the health watch's next check, soon after.
    eventually(lambda: (ops := influx_alerts()) and all(a["state"] == "resolved" for a in ops), 30,
               "the influxdb_unreachable ops alert resolved")
    stack.service.alerts.resolve(alert["id"], "test-cleanup")
