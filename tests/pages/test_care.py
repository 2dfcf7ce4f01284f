"""The care view in headless Chromium: only the token's homes, a home's alerts (a help-button press over MQTT),
acknowledging one with a note, and the last 24 hours of the simulator's activity."""

from __future__ import annotations

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from rules.findings import Finding
from tests.helpers import eventually
from tests.pages.stack import PageStack, now_ms, press_help

NOTE = "phoned, she is fine"
ALERTS_JS = """return [...document.querySelectorAll('#alerts [data-alert]')].map((c) => ({
  id: c.dataset.alert, text: c.innerText}));"""


def _type(field: WebElement, text: str) -> bool:
    field.clear()
    field.send_keys(text)
    return True


def test_care_view_shows_a_homes_alerts_and_acknowledges_one(pages: PageStack, wall_browser: webdriver.Chrome) -> None:
    home = next(h for h in pages.homes_with("help_button") if h in pages.care_homes)
    other = next(h for h in pages.care_homes if h != home)
    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    wall_browser.get(pages.url("care", "care"))
    wait.until(lambda d: len(Select(d.find_element(By.ID, "home")).options) > 0)
    options = [o.get_attribute("value") for o in Select(wall_browser.find_element(By.ID, "home")).options]
    assert options == list(pages.care_homes), "the care view lists exactly the token's homes"

    select = Select(wall_browser.find_element(By.ID, "home"))
    select.select_by_value(other)
    wait.until(lambda d: d.find_element(By.ID, "alerts").text.strip() != "")
    press_help(pages, home)
    alert = eventually(
        lambda: next((a for a in pages.api(f"/api/v1/alerts?state=open&subject={home}", "care")["alerts"]
                      if a["rule"] == "help_button"), None),
        what="the help-button alert",
    )
    select.select_by_value(home)
    cards = wait.until(lambda d: [c for c in d.execute_script(ALERTS_JS) if c["id"] == str(alert["id"])])
    # The care team sees what happened (the wall display does not).
    assert "Help button pressed" in cards[0]["text"] and "help button" in cards[0]["text"]
    assert "opened by placesense" in cards[0]["text"]

    # The list redraws on every live update: act on fresh elements, retrying when a redraw replaced them.
    acting = WebDriverWait(wall_browser, 30, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))
    card_css = f"#alerts [data-alert='{alert['id']}']"
    acting.until(lambda d: _type(d.find_element(By.CSS_SELECTOR, f"{card_css} textarea"), NOTE))
    # A new alert for the home redraws the list live; the note being typed survives it.
    other_alert = pages.service.alerts.apply(
        Finding("cold_home", "care", home, "warning", "Living room 15.2 °C for 4 h", now_ms(), evidence={"c": 15.2}))
    assert other_alert is not None
    wait.until(lambda d: [c for c in d.execute_script(ALERTS_JS) if c["id"] == str(other_alert.id)])
    typed = wall_browser.execute_script("return document.querySelector(arguments[0]).value;", f"{card_css} textarea")
    assert typed == NOTE
    acting.until(lambda d: d.find_element(By.XPATH, f"//*[@data-alert='{alert['id']}']//button[.='Acknowledge']")
                 .click() or True)
    acked = wait.until(lambda d: [c for c in d.execute_script(ALERTS_JS)
                                  if c["id"] == str(alert["id"]) and "ACKNOWLEDGED" in c["text"].upper()])
    assert "acknowledged by south-care" in acked[0]["text"] and NOTE in acked[0]["text"]
    stored = pages.service.alerts.get(alert["id"])
    assert stored.state == "acknowledged" and stored.history[-1].note == NOTE

    # The timeline: the simulator's last day of movement, door and bed events, per room.
    rooms = set(wait.until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#timeline table.timeline tbody th')].map((th) => th.innerText);")))
    assert {"kitchen", "bedroom"} <= rooms, rooms
    assert wall_browser.find_elements(By.CSS_SELECTOR, "#timeline td.a1, #timeline td.a2, #timeline td.a3")
    for done in (alert["id"], other_alert.id):
        pages.service.alerts.resolve(done, "test-cleanup")
