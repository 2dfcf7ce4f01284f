"""The wall display in headless Chromium: a help button pressed over MQTT shows up live, without a reload, and
redacted; resolving it takes it off the wall, live too."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from placesense.basics.findings import Finding
from tests.pages.stack import PageStack, chromium, now_ms, press_help

# The wall re-renders on every event, so read what it shows in one go rather than through element handles.
CARDS_JS = """return [...document.querySelectorAll('#alerts [data-alert]')].map((c) => ({
  id: c.dataset.alert, text: c.innerText, audience: c.dataset.audience}));"""
CRITICAL_JS = "return document.querySelector('.count.critical b').innerText;"


def _open_alert(stack: PageStack, home: str, rule: str) -> dict[str, Any] | None:
    alerts = stack.api(f"/api/v1/alerts?state=open&subject={home}", "admin")["alerts"]
    return next((a for a in alerts if a["rule"] == rule), None)


def _cards(browser: webdriver.Chrome) -> dict[str, dict[str, str]]:
    return {card["id"]: card for card in browser.execute_script(CARDS_JS)}


def test_wall_display_shows_a_new_alert_live_without_reload(pages: PageStack, wall_browser: webdriver.Chrome) -> None:
    # A home outside the care token's scope, whose button is a Zigbee one (through the Zigbee2MQTT bridge).
    home = next(h for h in pages.homes_with("help_button") if h not in pages.care_homes)
    assert _open_alert(pages, home, "help_button") is None
    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    wall_browser.get(pages.url("display", "display"))
    # The token leaves the address bar at once; the page is loaded and its live feed connected.
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Live"))
    assert "token=" not in wall_browser.current_url
    wait.until(lambda d: d.find_element(By.ID, "alerts").text.strip() != "")
    wall_browser.execute_script("window.__sameDocument = true;")
    critical_before = int(wall_browser.execute_script(CRITICAL_JS))
    before = _cards(wall_browser)

    press_help(pages, home)

    new = wait.until(lambda d: [c for i, c in _cards(d).items()
                                if i not in before and "help button" in c["text"].lower()])
    alert = _open_alert(pages, home, "help_button")
    assert alert is not None and alert["severity"] == "critical", new
    assert [c["id"] for c in new] == [str(alert["id"])]
    card = new[0]
    assert home in card["text"] and "Help button" in card["text"] and "CRITICAL" in card["text"].upper()
    assert card["audience"] == "care" and "CARE" in card["text"].upper()
    # Pseudonymous and redacted: a wall display never shows what happened to the person.
    assert "details are shown to the care team only" in card["text"]
    assert "Help button pressed" not in wall_browser.find_element(By.TAG_NAME, "body").text
    assert int(wall_browser.execute_script(CRITICAL_JS)) == critical_before + 1
    assert wall_browser.execute_script("return window.__sameDocument === true;"), "the page was reloaded"

    pages.service.alerts.resolve(alert["id"], "test-cleanup")
    wait.until(lambda d: str(alert["id"]) not in _cards(d))
    assert int(wall_browser.execute_script(CRITICAL_JS)) == critical_before
    assert wall_browser.execute_script("return window.__sameDocument === true;"), "the page was reloaded"


STATE_JS = """const card = document.querySelector(`#alerts [data-alert="${arguments[0]}"]`);
return card ? card.innerText : null;"""


def test_a_second_press_after_acknowledgement_shows_critical_again_live(
    pages: PageStack, wall_browser: webdriver.Chrome
) -> None:
    home = next(h for h in pages.homes_with("help_button") if h not in pages.care_homes)
    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    wall_browser.get(pages.url("display", "display"))
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Live"))
    wall_browser.execute_script("window.__sameDocument = true;")
    press_help(pages, home)
    alert = wait.until(lambda _: _open_alert(pages, home, "help_button"))
    wait.until(lambda d: d.execute_script(STATE_JS, alert["id"]))
    critical = int(wall_browser.execute_script(CRITICAL_JS))
    pages.service.alerts.ack(alert["id"], "carer-anna", "on my way")
    wait.until(lambda d: "ACKNOWLEDGED" in (d.execute_script(STATE_JS, alert["id"]) or "").upper())

    press_help(pages, home)  # she presses again while the carer is on the way

    wait.until(lambda d: "ACKNOWLEDGED" not in (d.execute_script(STATE_JS, alert["id"]) or "ACKNOWLEDGED").upper())
    text = wall_browser.execute_script(STATE_JS, alert["id"])
    assert "CRITICAL" in text.upper()
    assert int(wall_browser.execute_script(CRITICAL_JS)) == critical
    reopened = _open_alert(pages, home, "help_button")
    assert reopened is not None and reopened["id"] == alert["id"] and reopened["state"] == "open"
    assert [h["action"] for h in reopened["history"]][-2:] == ["acknowledged", "reopened"]
    assert wall_browser.execute_script("return window.__sameDocument === true;"), "the page was reloaded"
    pages.service.alerts.resolve(alert["id"], "test-cleanup")


def test_the_wall_says_when_placesense_cannot_see_and_when_it_can_again(
    pages: PageStack, wall_browser: webdriver.Chrome
) -> None:
    evaluator = pages.service.evaluator
    child = evaluator.pid
    assert child is not None
    wait = WebDriverWait(wall_browser, 40, poll_frequency=0.2)
    wall_browser.get(pages.url("display", "display"))
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Live"))
    assert not wall_browser.find_element(By.ID, "monitoring").is_displayed()
    evaluator.stall_alert_s = 1.0  # an attribute of the real watchdog; the default is 20 s
    os.kill(child, signal.SIGSTOP)  # the rules process stops answering, as a rule stuck in a loop would
    try:
        evaluator.tick()  # owe it an answer (the live clock's ticker would, within 5 s)
        banner = wait.until(lambda d: d.find_element(By.ID, "monitoring") if
                            d.find_element(By.ID, "monitoring").is_displayed() else None)
        assert banner.text.startswith("Monitoring degraded since")
        assert "Alerts are not being checked" in banner.text
        assert httpx.get(f"{pages.base_url}/healthz", timeout=10).status_code == 503
    finally:
        os.kill(child, signal.SIGCONT)
        evaluator.stall_alert_s = 20.0
    wait.until(lambda d: not d.find_element(By.ID, "monitoring").is_displayed())
    assert evaluator.pid == child
    ops = [a for a in pages.api("/api/v1/alerts?audience=ops", "admin")["alerts"] if a["rule"] == "evaluation_stalled"]
    assert ops and ops[0]["state"] == "resolved"


FIT_JS = """const box = document.getElementById('alerts').getBoundingClientRect();
return {scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
  view: [window.innerWidth, window.innerHeight],
  cards: [...document.querySelectorAll('#alerts [data-alert]')].map((c) => ({id: c.dataset.alert,
    bottom: c.getBoundingClientRect().bottom, text: c.innerText})),
  boxBottom: box.bottom, more: (document.querySelector('#alerts .more') || {}).innerText || '',
  clock: document.getElementById('clock').innerText, updated: document.getElementById('updated').innerText,
  body: document.body.innerText, background: getComputedStyle(document.documentElement).backgroundColor};"""


def _next_page(browser: webdriver.Chrome, first: set[str]) -> list[dict[str, Any]]:
    """The cards the wall shows once it has turned to a page with none of ``first``."""
    def shown(d: webdriver.Chrome) -> list[dict[str, Any]]:
        cards: list[dict[str, Any]] = d.execute_script(FIT_JS)["cards"]
        return cards if cards and not {c["id"] for c in cards} & first else []
    turned: list[dict[str, Any]] = WebDriverWait(browser, 25, poll_frequency=0.2).until(shown)
    return turned


def _page_showing(browser: webdriver.Chrome, text: str, total: int) -> list[dict[str, Any]]:
    """The cards holding ``text`` on the first page (as the wall turns, 10 s each) that shows any."""
    def shown(d: webdriver.Chrome) -> list[dict[str, Any]]:
        return [c for c in d.execute_script(FIT_JS)["cards"] if text in c["text"]]
    found: list[dict[str, Any]] = WebDriverWait(browser, 10 * (total // 3 + 2), poll_frequency=0.2).until(shown)
    return found


def test_the_wall_fits_its_screen_pages_through_many_alerts_most_serious_first(
    pages: PageStack, tmp_path: Path,
) -> None:
    beds = list(pages.registry.flowerbeds.values())
    site = next(iter(pages.registry.air_sites.values()))
    # One alert per (rule, subject): two kinds of unusual reading on every bed, more than either screen holds.
    made = [pages.service.alerts.apply(Finding(
        f"sensor_anomaly_soil_moisture_pct{suffix}", "street", bed.id, "info",
        f"Soil sensor reading unusual ({bed.id})", now_ms(), evidence={"pct": 1.0}))
        for bed in beds for suffix in ("", "_vs_neighbours")]
    made.append(pages.service.alerts.apply(Finding(
        "sensor_fault", "street", site.id, "warning", "Air sensor stuck", now_ms(), evidence={})))
    # The most serious comes last and is an operations alert: it still heads the wall.
    made.append(pages.service.alerts.apply(Finding(
        "broker_lost", "ops", "placesense", "critical", "Broker lost", now_ms(), evidence={})))
    assert all(a is not None for a in made)
    try:
        for size in ((1920, 1080), (1280, 800)):
            browser = chromium(size, tmp_path / f"profile-{size[0]}")
            try:
                wait = WebDriverWait(browser, 30, poll_frequency=0.1)
                # A 2 s page interval (the address can set one) so the paging below does not wait 10 s a turn.
                browser.get(pages.url("display", "display").replace("#", "?page_s=2#"))
                wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Live"))
                total = len(pages.api("/api/v1/alerts?state=active&limit=1000", "display")["alerts"])
                # Settled: every alert is in (the "+N more" line counts them).
                ending = f"of {total}, next page in 2 s"
                seen = wait.until(lambda d, end=ending: (f := d.execute_script(FIT_JS))["more"].endswith(end) and f)
                assert seen["scroll"][0] <= seen["view"][0] and seen["scroll"][1] <= seen["view"][1], (size, seen)
                assert all(c["bottom"] <= seen["boxBottom"] + 1 for c in seen["cards"]), (size, seen["cards"])
                assert seen["more"].startswith(f"+{total - len(seen['cards'])} more"), (seen["more"], total)
                assert seen["cards"][0]["id"] == str(made[-1].id), "the critical operations alert leads the wall"
                assert seen["background"] == "rgb(11, 12, 12)", "no white band below the content"
                assert "null" not in seen["body"] and "undefined" not in seen["body"]
                # Human labels and names: the bed by its name, the rule in words.
                first = {c["id"] for c in seen["cards"]}
                # The next page comes by itself and shows the alerts the first page could not.
                turned = _next_page(browser, first)
                assert turned
                # Paging on, the info alerts come after the warnings other tests may have left open.
                street = _page_showing(browser, "Soil sensor reading", total)
                assert all(next(b.name for b in beds if f"({b.id})" in c["text"]) in c["text"] for c in street)
                assert any("Soil moisture reading unusual" in c["text"] for c in street)
                assert not [c for c in street if "sensor anomaly" in c["text"] or "moisture pct" in c["text"]]
                assert re.fullmatch(r"\d\d:\d\d", seen["clock"]) and seen["updated"].startswith("updated ")
                # Someone reading at the wall can stop the paging, and start it again (WCAG 2.2.2).
                pause = browser.find_element(By.ID, "pause")
                pause.click()
                paused = wait.until(lambda d: (f := d.execute_script(FIT_JS))["more"].endswith("paging paused") and f)
                assert pause.get_attribute("aria-pressed") == "true" and pause.text == "Resume paging"
                pause.click()
                wait.until(lambda d: "next page in 2 s" in d.execute_script(FIT_JS)["more"])
                assert _next_page(browser, {c["id"] for c in paused["cards"]}), "paging did not resume"
            finally:
                browser.quit()
    finally:
        for alert in made:
            if alert is not None:
                pages.service.alerts.resolve(alert.id, "test-cleanup")
