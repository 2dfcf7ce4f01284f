"""The street view on a phone-sized headless Chromium: the bed the firmware simulator dried out on the list and on
the round's map (Leaflet, served by placesense), live without a reload; "Watered" takes it off; "Sensor checked" is
recorded; broken sensors by bed name and place; a sign-in of another role is told so."""

from __future__ import annotations

from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from api.timefmt import rfc3339
from placesense.basics.findings import Finding
from tests.helpers import eventually
from tests.pages.stack import PageStack, dry_spell, now_ms, publish_events

BEDS_JS = """return [...document.querySelectorAll('#beds > li[data-bed]')].map((li) => ({
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
    wait.until(lambda d: d.find_element(By.ID, "round-summary").text.startswith("1 bed ·"))
    assert phone_browser.execute_script("return document.documentElement.scrollWidth") <= 412, "wider than a phone"


TEXT_JS = "const node = document.querySelector(arguments[0]); return node ? node.innerText : null;"


def click(wait: WebDriverWait[WebDriver], selector: str) -> None:
    """Click what ``selector`` finds, again if a live reload replaced it between finding and clicking."""

    def attempt(driver: WebDriver) -> bool:
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
        except StaleElementReferenceException:
            return False
        return True

    wait.until(attempt)


MARKERS_JS = """return [...document.querySelectorAll('#map .leaflet-marker-icon')].map((m) => m.textContent);"""


def test_round_map_watered_and_sensor_checked(pages: PageStack, phone_browser: webdriver.Chrome) -> None:
    bed = "bed-005"
    spec = pages.registry.flowerbeds[bed]
    wait = WebDriverWait(phone_browser, 30, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,))  # the page redraws live
    phone_browser.get(pages.url("street", "street"))
    wait.until(lambda d: d.find_element(By.ID, "updated").text != "not yet")
    assert phone_browser.execute_script("return typeof window.L") == "object", "Leaflet did not load from placesense"

    # Live: the bed dries while the page is open, and appears without a reload (the alert feed tells the page).
    publish_events(pages, dry_spell(pages.registry, [bed], end_ms=now_ms() - 60_000, only_dry=True))
    listed = wait.until(lambda d: [r for r in d.execute_script(BEDS_JS) if r["bed"] == bed] or None)
    text = listed[0]["text"]
    assert spec.name in text and f"{spec.lat:.5f}, {spec.lon:.5f}" in text, "no coordinates for an offline round"
    rows = phone_browser.execute_script(BEDS_JS)
    # The map carries one numbered stop per bed of the list, in the list's order.
    assert wait.until(lambda d: d.execute_script(MARKERS_JS) == [str(i + 1) for i in range(len(rows))])
    assert [r["text"].split(".")[0] for r in rows] == [str(i + 1) for i in range(len(rows))]
    assert phone_browser.execute_script("return document.documentElement.scrollWidth") <= 412, "wider than a phone"

    # A broken sensor on that bed: a card by the bed's name and place, and the round's card warns about it.
    pages.service.alerts.apply(Finding("sensor_fault", "street", bed, "warning",
                                       f"The probe in {spec.name} has read 0.0 % for 6 hours.", now_ms(),
                                       evidence={"stuck_hours": 6}))
    card = f"#broken [data-subject='{bed}']"
    shown = wait.until(lambda d: d.execute_script(TEXT_JS, card))
    assert shown.startswith(spec.name) and f"{spec.lat:.5f}, {spec.lon:.5f}" in shown
    assert "sensor reads wrongly" in shown and "stop " in shown
    assert "0.0 %" not in shown.split("What it said then")[0], "a stale value shown as if current"
    wait.until(lambda d: "check the soil by hand" in d.find_element(By.CSS_SELECTOR, f"#beds [data-bed='{bed}']").text)

    # "Sensor checked" on the broken card: recorded and shown, and the alert acknowledged by the street team.
    click(wait, f"{card} button.sensor-checked")
    def checked(d: WebDriver) -> str | None:
        text: str = d.find_element(By.CSS_SELECTOR, f"#broken [data-subject='{bed}']").text
        return text if "Sensor checked at" in text else None
    assert "by parks-team" in wait.until(checked)
    fault = next(a for a in pages.api(f"/api/v1/alerts?subject={bed}&state=active", "street")["alerts"]
                 if a["rule"] == "sensor_fault")
    assert fault["state"] == "acknowledged" and fault["history"][-1]["by"] == "parks-team"

    # "Watered": the bed leaves the list and the map at once, and the API agrees.
    before = len(phone_browser.execute_script(BEDS_JS))
    click(wait, f"#beds [data-bed='{bed}'] button.watered")
    wait.until(lambda d: bed not in {r["bed"] for r in d.execute_script(BEDS_JS)})
    wait.until(lambda d: f"{spec.name} marked watered at" in d.find_element(By.ID, "done").text)
    assert len(phone_browser.execute_script(MARKERS_JS)) == before - 1
    assert bed not in {b["bed_id"] for b in pages.api("/api/v1/flowerbeds/watering", "street")["beds"]}
    # ... and is listed as watered today, for the handover.
    watered = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#watered-today [data-bed='{bed}']") or None)
    assert watered[0].get_attribute("textContent").startswith(f"{spec.name} at ")
    pages.service.alerts.resolve(fault["id"], "test-cleanup")


def test_a_sign_in_of_another_role_is_told_it_cannot_see_street_beds(
    pages: PageStack, phone_browser: webdriver.Chrome
) -> None:
    wait = WebDriverWait(phone_browser, 30, poll_frequency=0.1)
    phone_browser.get(pages.url("street", "care"))
    beds = wait.until(lambda d: d.find_element(By.ID, "beds").text.strip() or None)
    assert beds == "This sign-in cannot see street beds. Ask your administrator for a street token."
    assert "All sensors reporting" not in phone_browser.find_element(By.ID, "broken").text
    assert phone_browser.find_elements(By.CSS_SELECTOR, "button.watered") == []
    # The wall display's token reads the round but may not act on it: no buttons, and no error either.
    phone_browser.get(pages.url("street", "display"))
    phone_browser.refresh()  # only the fragment changed: load the page again with the new token
    wait.until(lambda d: d.find_element(By.ID, "updated").text != "not yet")
    assert "cannot see street beds" not in phone_browser.find_element(By.ID, "beds").text
    assert phone_browser.find_elements(By.CSS_SELECTOR, "button.watered, button.sensor-checked") == []
