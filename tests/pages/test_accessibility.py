"""WCAG 2.2 AA on every page, in headless Chromium: axe-core (``tests/pages/axe.py``) finds no violation on the care,
street, wall and API pages and the token form, in the states people meet (alerts open and acknowledged, a refused
action's message, nothing to show, a sign-in of the wrong role, the round's map), at a 390 px phone's width and on
a desktop; the main actions work from the keyboard alone and the focused control is visibly marked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from placesense.alerts.store import Alert
from placesense.basics.findings import Finding
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.pages.axe import violations
from tests.pages.stack import (
    SMALL_PHONE,
    PageStack,
    dry_spell,
    history,
    now_ms,
    publish_events,
    running_stack,
)

# What has the focus, and whether it shows: a ring (an outline that is not transparent) or GOV.UK's yellow fill.
FOCUSED_JS = """const a = document.activeElement; const s = getComputedStyle(a);
const ring = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 && s.outlineColor !== 'rgba(0, 0, 0, 0)';
return {target: a.matches(arguments[0]), text: a.innerText, what: a.outerHTML.slice(0, 100), body: a === document.body,
        visible: ring || s.backgroundColor === 'rgb(255, 221, 0)'};"""
POPUP_JS = """const p = document.querySelector('#map .leaflet-popup');
return !p ? 'none' : getComputedStyle(p).opacity === '1' && !p.getAnimations().length ? 'open' : 'fading';"""
WIDTH_JS = "return document.documentElement.scrollWidth;"
DRY_BED = "bed-006"


def assert_no_violations(driver: webdriver.Chrome, state: str) -> None:
    found = violations(driver)
    lines = [f"{v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in found]
    assert not found, f"axe-core on {state} ({driver.current_url}):\n" + "\n".join(lines)


@pytest.fixture(scope="module")
def pages(mosquitto: Mosquitto, influx: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageStack]:
    """This module's own stack (the package's ``pages``, shadowed): the bed dried out and the alerts raised here
    never reach the other page tests, which count what they see."""
    with running_stack(mosquitto, influx, tmp_path_factory.mktemp("pages-a11y")) as stack:
        publish_events(stack, history(stack.registry, days=2, end_ms=now_ms() - 60_000))
        yield stack


@pytest.fixture
def care_alerts(pages: PageStack) -> Iterator[list[Alert]]:
    """In the first care home: a critical alert, an acknowledged warning, and one resolved for the handover list."""
    home = pages.care_homes[0]
    made = [pages.service.alerts.apply(Finding(rule, "care", home, severity, message, now_ms(), evidence={}))
            for rule, severity, message in (
                ("help_button", "critical", "Help button pressed in the hall"),
                ("cold_home", "warning", "Living room 15.0 °C for 4 h"),
                ("no_activity", "warning", "No movement since 07:00"))]
    alerts = [a for a in made if a is not None]
    assert len(alerts) == 3
    pages.service.alerts.ack(alerts[1].id, "south-care", "phoned her daughter")
    pages.service.alerts.resolve(alerts[2].id, "south-care", "she was out shopping")
    try:
        yield alerts
    finally:
        for alert in alerts[:2]:
            pages.service.alerts.resolve(alert.id, "test-cleanup")


def _wait(driver: webdriver.Chrome) -> WebDriverWait[Any]:
    return WebDriverWait(driver, 30, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))


def _care_loaded(driver: webdriver.Chrome, alert_id: int) -> None:
    _wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#alerts [data-alert='{alert_id}']")
                        and d.find_elements(By.CSS_SELECTOR, "#history [data-resolved]")
                        and d.find_element(By.ID, "routine").text.strip()
                        and d.find_element(By.ID, "timeline").text.strip())


def test_care_page_on_a_desktop(pages: PageStack, wall_browser: webdriver.Chrome, care_alerts: list[Alert]) -> None:
    critical = care_alerts[0]
    wait = _wait(wall_browser)
    wall_browser.get(pages.url("care", "care"))
    _care_loaded(wall_browser, critical.id)
    # The refused action's message: resolving a critical alert without a note.
    wait.until(lambda d: d.find_element(
        By.XPATH, f"//*[@data-alert='{critical.id}']//button[.='Resolve']").click() or True)
    problem = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f"[data-alert='{critical.id}'] .field-error").text)
    # The note box is marked invalid and described by the problem, so a screen reader reads both together.
    described = wall_browser.execute_script(
        "const t = document.activeElement; return [t.tagName, t.getAttribute('aria-invalid'),"
        " document.getElementById(t.getAttribute('aria-describedby')).textContent];")
    assert described == ["TEXTAREA", "true", problem], described
    assert_no_violations(wall_browser, "the care page with alerts open, acknowledged, resolved and a refused resolve")
    # The timeline's shades are in words too (for a screen reader, and not by colour alone), each hour labelled.
    words = wall_browser.execute_script(
        "return [...document.querySelectorAll('#timeline td.cell')].map((td) => td.textContent);")
    assert words and set(words) <= {"none", "a little", "some", "a lot"} and set(words) - {"none"}, words
    hours = wall_browser.execute_script(
        "return [...document.querySelectorAll('#timeline thead th')].slice(1).map((th) => th.textContent);")
    assert len(hours) == 24 and all(len(h) == 5 for h in hours), hours

    # Another home: nothing open there, its overview row points back to the first home.
    Select(wall_browser.find_element(By.ID, "home")).select_by_value(pages.care_homes[1])
    wait.until(lambda d: d.find_element(By.ID, "alerts").text == "No open alerts for this home.")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#overview button"))
    assert_no_violations(wall_browser, "the care page of a home with no open alert")


def test_care_and_street_pages_on_a_phone(pages: PageStack, small_phone: webdriver.Chrome,
                                          care_alerts: list[Alert]) -> None:
    wait = _wait(small_phone)
    small_phone.get(pages.url("care", "care"))
    _care_loaded(small_phone, care_alerts[0].id)
    assert_no_violations(small_phone, "the care page on a phone")
    assert small_phone.execute_script(WIDTH_JS) <= SMALL_PHONE[0], "reflow: the page scrolls sideways"

    # The network goes: the page's error messages.
    small_phone.execute_cdp_cmd("Network.enable", {})
    small_phone.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    Select(small_phone.find_element(By.ID, "home")).select_by_value(pages.care_homes[1])
    wait.until(lambda d: "Cannot reach placesense" in d.find_element(By.ID, "alerts").text)
    assert_no_violations(small_phone, "the care page on a phone that lost the network")
    small_phone.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    # The care team's sign-in on the street page: told it cannot see beds.
    small_phone.get(pages.url("street", "care"))
    small_phone.refresh()  # only the fragment changed: load the page again with the new token
    wait.until(lambda d: "cannot see street beds" in d.find_element(By.ID, "beds").text)
    assert_no_violations(small_phone, "the street page for a sign-in of another role")
    assert small_phone.execute_script(WIDTH_JS) <= SMALL_PHONE[0], "reflow: the page scrolls sideways"


def test_street_round_with_map_and_the_keyboard_alone(pages: PageStack, small_phone: webdriver.Chrome) -> None:
    """A bed to water, on the Leaflet map and the list, with a broken sensor card; then "Watered" from the keyboard:
    Tab until the bed's button has the (visible) focus, Enter."""
    spec = pages.registry.flowerbeds[DRY_BED]
    publish_events(pages, dry_spell(pages.registry, [DRY_BED], end_ms=now_ms() - 60_000, only_dry=True))
    fault = pages.service.alerts.apply(Finding("sensor_fault", "street", DRY_BED, "warning",
                                               f"The probe in {spec.name} has read 0.0 % for 6 hours.", now_ms(),
                                               evidence={"stuck_hours": 6}))
    assert fault is not None
    try:
        wait = _wait(small_phone)
        small_phone.get(pages.url("street", "street"))
        button_css = f"#beds [data-bed='{DRY_BED}'] button.watered"
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, button_css)
                   and d.find_elements(By.CSS_SELECTOR, f"#broken [data-subject='{DRY_BED}']")
                   and d.find_elements(By.CSS_SELECTOR, "#map .leaflet-marker-icon"))
        assert_no_violations(small_phone, "the street round with a bed to water, its map and a broken sensor")

        # A numbered stop's popup, opened from the keyboard (Leaflet's markers take the focus and Enter).
        # A live update redraws the stops and closes a popup: press again until one is open and has faded in.
        def popup_open(driver: webdriver.Chrome) -> bool:
            state = driver.execute_script(POPUP_JS)
            if state != "none":
                return state == "open"  # or fading in: wait, as Enter again would close it
            driver.execute_script("document.querySelector('#map .leaflet-marker-icon').focus();")
            ActionChains(driver).send_keys(Keys.ENTER).perform()
            return False

        wait.until(popup_open)
        assert_no_violations(small_phone, "the street round with a stop's popup open")

        # Keyboard only, from the top of the page: every stop on the way shows its focus.
        small_phone.refresh()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, button_css))
        stops = []
        for _ in range(80):
            ActionChains(small_phone).send_keys(Keys.TAB).perform()
            stops.append(small_phone.execute_script(FOCUSED_JS, button_css))
            if stops[-1]["target"]:
                break
        assert stops[-1]["target"], f"Tab never reached the bed's Watered button: {stops}"
        hidden = [s["what"] for s in stops if not s["visible"] and not s["body"]]
        assert not hidden, f"the focus does not show on: {hidden}"
        assert any("leaflet-marker-icon" in s["what"] for s in stops), f"no map stop reached by Tab: {stops}"
        ActionChains(small_phone).send_keys(Keys.ENTER).perform()
        wait.until(lambda d: f"{spec.name} marked watered at" in d.find_element(By.ID, "done").text)
        # The pressed button is gone with its bed: the focus is on what happened, not thrown back to the top.
        assert small_phone.execute_script("return document.activeElement.id;") == "done"
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, f"#beds [data-bed='{DRY_BED}']"))
        assert DRY_BED not in {b["bed_id"] for b in pages.api("/api/v1/flowerbeds/watering", "street")["beds"]}
        assert_no_violations(small_phone, "the street round after a bed was watered")
    finally:
        pages.service.alerts.resolve(fault.id, "test-cleanup")





def test_care_acknowledge_and_home_picker_with_the_keyboard_alone(
    pages: PageStack, wall_browser: webdriver.Chrome, care_alerts: list[Alert],
) -> None:
    """Choose the home with arrow keys, Tab to the note, type, Tab to Acknowledge, Enter."""
    warning = pages.service.alerts.apply(Finding("cold_home", "care", pages.care_homes[1], "warning",
                                                 "Bedroom 15.1 °C for 4 h", now_ms(), evidence={}))
    assert warning is not None
    try:
        wait = _wait(wall_browser)
        wall_browser.get(pages.url("care", "care"))
        _care_loaded(wall_browser, care_alerts[0].id)
        picker = wall_browser.find_element(By.ID, "home")
        picker.send_keys(Keys.ARROW_DOWN)  # the second home, from the keyboard
        card_css = f"#alerts [data-alert='{warning.id}']"
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, card_css))
        for _ in range(40):
            ActionChains(wall_browser).send_keys(Keys.TAB).perform()
            if wall_browser.execute_script(FOCUSED_JS, f"{card_css} textarea")["target"]:
                break
        ActionChains(wall_browser).send_keys("checked the heating").send_keys(Keys.TAB).perform()
        focused = wall_browser.execute_script(FOCUSED_JS, f"{card_css} button")
        assert focused["target"] and focused["text"] == "Acknowledge", focused
        assert focused["visible"], f"the focus does not show: {focused}"
        ActionChains(wall_browser).send_keys(Keys.ENTER).perform()
        wait.until(lambda d: pages.service.alerts.get(warning.id).state == "acknowledged")
        assert pages.service.alerts.get(warning.id).history[-1].note == "checked the heating"
        # Said in the page's status line (role=status, read out by screen readers).
        wait.until(lambda d: d.find_element(By.ID, "status").text == "Acknowledged: Bedroom 15.1 °C for 4 h")
        # Redrawn, the card keeps the focus, on its next action (and keeps it through the live update after).
        wait.until(lambda d: "ACKNOWLEDGED" in d.find_element(By.CSS_SELECTOR, card_css).text.upper())
        wait.until(lambda d: d.execute_script(FOCUSED_JS, f"{card_css} button")["text"] == "Resolve")
        ActionChains(wall_browser).send_keys(Keys.ENTER).perform()  # resolve it too: the card goes, the list has focus
        wait.until(lambda d: pages.service.alerts.get(warning.id).state == "resolved")
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, card_css))
        assert wall_browser.execute_script("return document.activeElement.id;") == "alerts"
    finally:
        if pages.service.alerts.get(warning.id).state != "resolved":
            pages.service.alerts.resolve(warning.id, "test-cleanup")


def test_wall_display_api_docs_and_token_form(pages: PageStack, wall_browser: webdriver.Chrome,
                                              care_alerts: list[Alert]) -> None:
    wait = _wait(wall_browser)
    wall_browser.get(pages.url("display", "display"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#alerts [data-alert='{care_alerts[0].id}']")
               and d.find_element(By.ID, "air").text.strip() and d.find_element(By.ID, "offline").text.strip())
    assert_no_violations(wall_browser, "the wall display with alerts open")

    wall_browser.get(f"{pages.base_url}/docs")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 15)
    assert_no_violations(wall_browser, "the API docs")
    # One operation opened, as a reader does to see its parameters and responses.
    wall_browser.find_element(By.CSS_SELECTOR, ".opblock-get .opblock-summary-control").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock.is-open .responses-wrapper"))
    assert_no_violations(wall_browser, "the API docs with an operation open")

    # No token yet: the page asks for one.
    wall_browser.execute_script("localStorage.clear();")
    wall_browser.get(f"{pages.base_url}/care")
    wait.until(lambda d: d.find_elements(By.ID, "token"))
    assert_no_violations(wall_browser, "the token form")
