"""The care view in headless Chromium: only the token's homes, a home's alerts (a help-button press over MQTT),
acknowledging one with a note, and the last 24 hours of the simulator's activity."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from placesense.basics.findings import Finding
from tests.helpers import eventually
from tests.pages.stack import SMALL_PHONE, PageStack, chromium, now_ms, press_help

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
    assert "Help button pressed" in cards[0]["text"] and "Help button · since" in cards[0]["text"]
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


OVERVIEW_JS = """return [...document.querySelectorAll('#overview [data-overview]')].map((c) => ({
  id: c.dataset.overview, home: c.dataset.home, text: c.innerText}));"""


def _option_text(browser: webdriver.Chrome, home: str) -> str:
    return str(browser.execute_script(
        "return document.querySelector(`#home option[value='${arguments[0]}']`).textContent;", home))


def test_a_critical_alert_in_another_home_is_seen_first_and_resolving_it_needs_a_note(
    pages: PageStack, wall_browser: webdriver.Chrome,
) -> None:
    home = next(h for h in pages.homes_with("help_button") if h in pages.care_homes)
    other = next(h for h in pages.care_homes if h != home)
    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    acting = WebDriverWait(wall_browser, 30, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))
    wall_browser.get(pages.url("care", "care"))
    wait.until(lambda d: len(Select(d.find_element(By.ID, "home")).options) > 0)
    Select(wall_browser.find_element(By.ID, "home")).select_by_value(other)
    wait.until(lambda d: d.find_element(By.ID, "alerts").text.strip() != "")

    # A warning in the selected home, older than the critical one that follows in the other home.
    warning = pages.service.alerts.apply(
        Finding("cold_home", "care", other, "warning", "Living room 15.0 °C for 4 h", now_ms(), evidence={"c": 15.0}))
    assert warning is not None
    press_help(pages, home)
    alert = eventually(
        lambda: next((a for a in pages.api(f"/api/v1/alerts?state=open&subject={home}", "care")["alerts"]
                      if a["rule"] == "help_button"), None),
        what="the help-button alert",
    )
    # The overview lists every home's alerts, most serious first: the other home's critical one above the
    # selected home's warning, though it is newer; the picker marks its home.
    rows = wait.until(lambda d: (r := d.execute_script(OVERVIEW_JS))
                      and {str(alert["id"]), str(warning.id)} <= {x["id"] for x in r} and r)
    ids = [r["id"] for r in rows]
    assert ids.index(str(alert["id"])) < ids.index(str(warning.id)), rows
    critical_row = next(r for r in rows if r["id"] == str(alert["id"]))
    assert critical_row["home"] == home and "CRITICAL" in critical_row["text"].upper()
    assert "Help button pressed" in critical_row["text"]
    wait.until(lambda d: "critical" in _option_text(d, home))
    assert "critical" not in _option_text(wall_browser, other)

    # "Show" moves to that home, where the alert can be acted on.
    acting.until(lambda d: d.find_element(
        By.CSS_SELECTOR, f"#overview [data-overview='{alert['id']}'] button").click() or True)
    assert Select(wall_browser.find_element(By.ID, "home")).first_selected_option.get_attribute("value") == home
    card_css = f"#alerts [data-alert='{alert['id']}']"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, card_css))

    # Acknowledge with one note: the box is empty afterwards, ready for the resolve note.
    acting.until(lambda d: _type(d.find_element(By.CSS_SELECTOR, f"{card_css} textarea"), NOTE))
    acting.until(lambda d: d.find_element(By.XPATH, f"//*[@data-alert='{alert['id']}']//button[.='Acknowledge']")
                 .click() or True)
    wait.until(lambda d: "ACKNOWLEDGED" in d.find_element(By.CSS_SELECTOR, card_css).text.upper())
    assert wall_browser.find_element(By.CSS_SELECTOR, f"{card_css} textarea").get_attribute("value") == ""

    # Resolving a critical alert without a note is refused on the page, with the reason next to the box.
    acting.until(lambda d: d.find_element(By.XPATH, f"//*[@data-alert='{alert['id']}']//button[.='Resolve']")
                 .click() or True)
    wait.until(lambda d: "before resolving a critical alert" in d.find_element(
        By.CSS_SELECTOR, f"{card_css} .field-error").text)
    assert pages.service.alerts.get(alert["id"]).state == "acknowledged"

    acting.until(lambda d: _type(d.find_element(By.CSS_SELECTOR, f"{card_css} textarea"), "visited, reset the button"))
    acting.until(lambda d: d.find_element(By.XPATH, f"//*[@data-alert='{alert['id']}']//button[.='Resolve']")
                 .click() or True)
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, card_css))
    stored = pages.service.alerts.get(alert["id"])
    assert stored.state == "resolved"
    assert [h.note for h in stored.history if h.action in ("acknowledged", "resolved")] == [
        NOTE, "visited, reset the button"], "each action keeps its own note"

    # The handover list: resolved in the last 24 hours, with who did what; the severity filter narrows it.
    resolved_css = f"#history [data-resolved='{alert['id']}']"
    handover = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, resolved_css))[0].text
    assert "resolved by south-care" in handover and "visited, reset the button" in handover and NOTE in handover
    Select(wall_browser.find_element(By.ID, "history-severity")).select_by_value("warning")
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, resolved_css))
    Select(wall_browser.find_element(By.ID, "history-severity")).select_by_value("critical")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, resolved_css))
    pages.service.alerts.resolve(warning.id, "test-cleanup")


def test_routine_reads_as_sentences_and_a_phone_never_scrolls_sideways(
    pages: PageStack, tmp_path: Path,
) -> None:
    home = pages.care_homes[0]
    routine = pages.api(f"/api/v1/homes/{home}/routine", "care")["routine"]
    browser = chromium(SMALL_PHONE, tmp_path / "profile")
    try:
        wait = WebDriverWait(browser, 30, poll_frequency=0.1)
        browser.get(pages.url("care", "care"))
        text = wait.until(lambda d: d.find_element(By.ID, "routine").text.strip())
        # Plain words: the warm-up as a sentence, each feature the detector can compare as its own sentence; no JSON.
        assert f"{routine['warm_up']['days_learned']}" in text and "routine" in text.lower()
        assert not set("{}[]\"") & set(text), text
        for feature in routine["features"]:
            shown = browser.find_element(By.CSS_SELECTOR, f"#routine [data-feature='{feature['feature']}']").text
            assert shown == (f"{feature['text']}." if "text" in feature else
                             f"{feature['label']}: not enough days yet to say what is usual."), shown
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline table.timeline"))
        width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth];")
        assert width[0] <= width[1] == SMALL_PHONE[0], f"the page scrolls sideways: {width}"
    finally:
        browser.quit()


def test_an_outage_is_told_in_plain_words_and_actions_are_reachable_by_keyboard(
    pages: PageStack, wall_browser: webdriver.Chrome,
) -> None:
    home = pages.care_homes[0]
    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    finding = Finding("cold_home", "care", home, "warning", "Bedroom 15.1 °C for 4 h", now_ms(), evidence={"c": 15.1})
    alert = pages.service.alerts.apply(finding)
    assert alert is not None
    try:
        wall_browser.get(pages.url("care", "care"))
        card_css = f"#alerts [data-alert='{alert.id}']"
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, card_css))
        # Keyboard only: from the note, Tab reaches Acknowledge, which shows it has the focus.
        wall_browser.find_element(By.CSS_SELECTOR, f"{card_css} textarea").click()
        ActionChains(wall_browser).send_keys(Keys.TAB).perform()
        focused = wall_browser.execute_script(
            "const a = document.activeElement; return [a.innerText, getComputedStyle(a).backgroundColor];")
        assert focused == ["Acknowledge", "rgb(255, 221, 0)"], focused

        # The network goes: the page says so in words a carer understands, not a socket error.
        wall_browser.execute_cdp_cmd("Network.enable", {})
        wall_browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        Select(wall_browser.find_element(By.ID, "home")).select_by_value(pages.care_homes[1])
        wait.until(lambda d: "Cannot reach placesense" in d.find_element(By.ID, "alerts").text)
        body = wall_browser.find_element(By.TAG_NAME, "body").text
        assert "Errno" not in body and "Failed to fetch" not in body
    finally:
        wall_browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        pages.service.alerts.resolve(alert.id, "test-cleanup")
