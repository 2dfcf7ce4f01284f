"""The street view on a phone-sized headless Chromium lists the bed the firmware simulator dried out."""

from __future__ import annotations

from typing import Any

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api.timefmt import rfc3339
from tests.helpers import eventually
from tests.pages.stack import PageStack, dry_spell, now_ms, publish_events

BEDS_JS = """return [...document.querySelectorAll('#beds > li')].map((li) => ({
  bed: li.dataset.bed, text: li.innerText, cls: li.className}));"""


def test_street_view_lists_the_bed_the_simulator_dried_out(pages: PageStack, phone_browser: webdriver.Chrome) -> None:
    bed = "bed-003"
    name = pages.registry.flowerbeds[bed].name
    wait = WebDriverWait(phone_browser, 30, poll_frequency=0.1)
    phone_browser.get(pages.url("street", "street"))
    wait.until(lambda d: d.find_element(By.ID, "beds").text.strip() != "")
    assert phone_browser.find_element(By.ID, "beds").text == "No bed needs water today."
    assert phone_browser.execute_script("return document.documentElement.scrollWidth") <= 412, "wider than a phone"

    events = dry_spell(pages.registry, [bed], end_ms=now_ms() - 60_000, only_dry=True)
    assert {e.device.subject for e in events} == {bed}
    last = events[-1].measurement.metrics["soil_moisture_pct"]
    assert last < pages.registry.flowerbeds[bed].dry_below_pct, "the simulator did not dry the bed out"
    publish_events(pages, events)
    # The rules see stored readings moments later: wait for their verdict, then for the page's.
    last_at = rfc3339(events[-1].measurement.ts_ms)

    def verdict() -> dict[str, Any] | None:
        watering: dict[str, Any] = pages.api("/api/v1/flowerbeds/watering", "street")
        return watering if [b["last_reading"] for b in watering["beds"]] == [last_at] else None

    watering = eventually(verdict, what="the watering list after the last reading")
    assert [b["bed_id"] for b in watering["beds"]] == [bed], watering

    phone_browser.refresh()
    listed = wait.until(lambda d: d.execute_script(BEDS_JS) or None)
    assert [row["bed"] for row in listed] == [bed]
    text = listed[0]["text"]
    assert name in text and "WATER NOW" in text.upper() and "now" in listed[0]["cls"].split()
    assert f"{round(watering['beds'][0]['moisture_pct'])} % moisture (needs water below 25 %)" in text
    link = phone_browser.find_element(By.CSS_SELECTOR, f"[data-bed='{bed}'] a")
    bed_spec = pages.registry.flowerbeds[bed]
    assert f"mlat={bed_spec.lat}&mlon={bed_spec.lon}" in (link.get_attribute("href") or "")
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("1 beds"))
    assert phone_browser.execute_script("return document.documentElement.scrollWidth") <= 412, "wider than a phone"
