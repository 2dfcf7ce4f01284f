"""The pages in Welsh (Cymraeg), in headless Chromium: each page read with ``?lang=cy`` has ``<html lang="cy">``,
Welsh headings and buttons (the admin's devices page and the care page's chart captions too), and alert messages in
Welsh, rendered from the alert's template (not translated on the page); the language switch takes the reader back
to English and the choice sticks.

The words are checked against ``api/pages/i18n/cy.json`` and ``placesense/basics/texts.py`` so a reworded English
text that loses its Welsh shows up here as well as in the unit tests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from placesense.basics.findings import Finding
from placesense.basics.texts import text
from tests.helpers import eventually
from tests.pages.stack import PageStack, dry_spell, now_ms, press_help, publish_events

CY = json.loads((Path(__file__).parents[2] / "api" / "pages" / "i18n" / "cy.json").read_text(encoding="utf-8"))
HEADINGS_JS = "return [...document.querySelectorAll('h1, h2')].map((h) => h.textContent.trim());"
LANG_JS = "return document.documentElement.lang;"
# Read in one go by script: a live update may redraw a card between finding an element and reading it.
TEXT_JS = "const node = document.querySelector(arguments[0]); return node ? node.innerText : null;"


def _welsh_url(pages: PageStack, page: str, who: str) -> str:
    return f"{pages.base_url}/{page}?lang=cy#token={pages.tokens[who]}"


def _open_alert(pages: PageStack, subject: str, rule: str, who: str) -> dict[str, Any] | None:
    found = pages.api(f"/api/v1/alerts?state=open&subject={subject}", who)["alerts"]
    return next((a for a in found if a["rule"] == rule), None)


def test_care_page_in_welsh_with_a_welsh_alert_and_the_switch_back(
    pages: PageStack, wall_browser: webdriver.Chrome
) -> None:
    home = next(h for h in pages.homes_with("help_button") if h in pages.care_homes)
    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    wall_browser.get(_welsh_url(pages, "care", "care"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#home option"))
    assert wall_browser.execute_script(LANG_JS) == "cy"
    assert wall_browser.title == "placesense · gofal"
    headings = wall_browser.execute_script(HEADINGS_JS)
    assert headings[:2] == ["Gofal", "Rhybuddion agored yn eich holl gartrefi"], headings
    assert {"Rhybuddion agored yn y cartref hwn", "Wedi'u datrys yn ddiweddar"} <= set(headings), headings
    assert "Care" not in headings and "Resolved recently" not in headings

    press_help(pages, home)
    alert = eventually(lambda: _open_alert(pages, home, "help_button", "care"), what="the help-button alert")
    # The API gives the message in both languages; English stays the contract's message, word for word.
    assert alert["texts"]["en"] == alert["message"] and alert["message"].startswith("Help button pressed at")
    assert alert["texts"]["cy"].startswith("Pwyswyd y botwm help am")
    wall_browser.execute_script("const s = document.getElementById('home'); s.value = arguments[0];"
                                "s.dispatchEvent(new Event('change'));", home)
    card_css = f"#alerts [data-alert='{alert['id']}']"
    card = wait.until(lambda d: d.execute_script(TEXT_JS, card_css))
    assert alert["texts"]["cy"] in card and "Help button pressed" not in card
    assert "Botwm help · ers" in card and "agorwyd gan placesense" in card
    # Times on the 24-hour clock and Welsh day names (Chromium's own Welsh would say "Sat 08:09 AM").
    assert re.search(r"ers (Sul|Llun|Maw|Mer|Iau|Gwe|Sad) \d\d:\d\d · ar agor ers \d+ mun", card), card
    assert " AM" not in card and " PM" not in card
    buttons = wall_browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((b) => b.textContent);", f"{card_css} button")
    assert buttons == [CY["Acknowledge"], CY["Resolve"]] == ["Cydnabod", "Datrys"]
    overview = wait.until(lambda d: d.execute_script(TEXT_JS, f"[data-overview='{alert['id']}']"))
    assert alert["texts"]["cy"] in overview and "ar agor ers" in overview

    # The switch names the other language in that language, and takes this browser back to English for good.
    switch = wall_browser.find_element(By.ID, "lang-switch")
    assert switch.text == "English" and switch.get_attribute("lang") == "en-GB"
    switch.click()
    wait.until(lambda d: d.execute_script(LANG_JS) == "en-GB")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Care")
    wall_browser.get(f"{pages.base_url}/care")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Care")
    assert wall_browser.find_element(By.ID, "lang-switch").text == "Cymraeg"
    pages.service.alerts.resolve(alert["id"], "test-cleanup")


def test_street_page_in_welsh_lists_a_dry_bed_in_welsh(pages: PageStack, phone_browser: webdriver.Chrome) -> None:
    bed = "bed-007"
    spec = pages.registry.flowerbeds[bed]
    wait = WebDriverWait(phone_browser, 30, poll_frequency=0.1)
    phone_browser.get(_welsh_url(pages, "street", "street"))
    wait.until(lambda d: d.find_element(By.ID, "updated").text != CY["not yet"])
    assert phone_browser.execute_script(LANG_JS) == "cy"
    headings = phone_browser.execute_script(HEADINGS_JS)
    assert headings[0] == "Rownd heddiw" and "Gwelyau i'w dyfrio" in headings and "Ansawdd aer" in headings

    publish_events(pages, dry_spell(pages.registry, [bed], end_ms=now_ms() - 60_000, only_dry=True))

    def needs_water_now() -> dict[str, Any] | None:  # first "soon", then "now" as the last readings arrive
        alert = _open_alert(pages, bed, "needs_water", "street")
        return alert if alert is not None and alert["evidence"]["status"] == "now" else None

    alert = eventually(needs_water_now, what="the needs-water-now alert")
    assert alert["texts"]["cy"].startswith(f"Mae angen dŵr ar {spec.name} nawr: lleithder y pridd")
    row = wait.until(lambda d: d.execute_script(TEXT_JS, f"#beds [data-bed='{bed}']"))
    assert spec.name in row and "DŴR NAWR" in row.upper() and "% lleithder (angen dŵr o dan 25 %)" in row
    assert "moisture" not in row and "Watered" not in row
    button = phone_browser.execute_script(
        "const b = document.querySelector(arguments[0]); return [b.textContent, b.getAttribute('aria-label')];",
        f"#beds [data-bed='{bed}'] button.watered")
    assert button == ["Wedi dyfrio", f"Wedi dyfrio: {spec.name}"]


def test_wall_display_in_welsh_shows_a_street_alert_in_welsh(pages: PageStack, wall_browser: webdriver.Chrome) -> None:
    bed = pages.registry.flowerbeds["bed-008"]
    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    wall_browser.get(_welsh_url(pages, "display", "display"))
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Byw"))
    assert wall_browser.execute_script(LANG_JS) == "cy"
    headings = wall_browser.execute_script(HEADINGS_JS)
    assert headings == ["Gweithrediadau placesense", "Rhybuddion agored", "Dyfrio heddiw", "Ansawdd aer",
                        "Dyfeisiau all-lein"], headings

    words = text("over_watered", bed=bed.name, moisture=82.0, wet=70.0)
    # Critical, so it heads the wall at once (the newest of the most serious) instead of waiting its page.
    made = pages.service.alerts.apply(Finding("over_watered", "street", bed.id, "critical", words.english, now_ms(),
                                              evidence={"moisture_pct": 82.0}, text=words))
    assert made is not None
    card = wait.until(lambda d: d.execute_script(TEXT_JS, f"#alerts [data-alert='{made.id}']"))
    assert f"Mae gormod o ddŵr ar {bed.name}: lleithder y pridd 82 %, uwchlaw 70 %." in card
    assert "Gormod o ddŵr" in card and "STRYD" in card.upper() and "over-watered" not in card
    pages.service.alerts.resolve(made.id, "test-cleanup")


def test_a_token_set_to_welsh_opens_the_pages_in_welsh(pages: PageStack, wall_browser: webdriver.Chrome) -> None:
    assert pages.api("/api/v1/me", "display-cy") == {"name": "wrexham-wall", "role": "display", "lang": "cy"}
    assert pages.api("/api/v1/me", "display")["lang"] is None
    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    wall_browser.get(pages.url("display", "display-cy"))
    wait.until(lambda d: d.execute_script(LANG_JS) == "cy")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Gweithrediadau placesense")
    # A person's own choice in this browser outranks the token's.
    wall_browser.find_element(By.ID, "lang-switch").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "placesense operations")
    wall_browser.get(f"{pages.base_url}/display")
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Live"))
    assert wall_browser.execute_script(LANG_JS) == "en-GB"


def test_devices_page_in_welsh_for_an_admin(pages: PageStack, wall_browser: webdriver.Chrome) -> None:
    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    wall_browser.get(_welsh_url(pages, "devices", "admin"))
    caption = wait.until(lambda d: d.execute_script(TEXT_JS, "#devices caption"))
    assert wall_browser.execute_script(LANG_JS) == "cy"
    assert wall_browser.title == "placesense · dyfeisiau"
    headings = wall_browser.execute_script(HEADINGS_JS)
    assert headings == ["Dyfeisiau", "Angen sylw", "Wedi'u darganfod, heb eu cofrestru", "Cofrestru dyfais",
                        "Pob dyfais"], headings
    # The table is built by the script: its caption and column headings are Welsh too, with the count filled in.
    count = len(pages.api("/api/v1/devices", "admin")["devices"])
    assert caption == f"Dyfeisiau wedi'u cofrestru: {count}, rhai all-lein yn gyntaf", caption
    columns = wall_browser.execute_script(
        "return [...document.querySelectorAll('#devices thead th')].map((h) => h.textContent);")
    assert columns == ["Dyfais", "Math", "Lle", "Cyflwr", "Batri", "Neges olaf", "Signal"], columns
    assert wall_browser.find_element(By.ID, "lang-switch").text == "English"


def test_care_page_chart_caption_in_welsh(pages: PageStack, wall_browser: webdriver.Chrome) -> None:
    home = next(h for h in pages.homes_with("climate") if h in pages.care_homes)
    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    wall_browser.get(_welsh_url(pages, "care", "care"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#home option[value='{home}']"))
    wall_browser.execute_script("const s = document.getElementById('home'); s.value = arguments[0];"
                                "s.dispatchEvent(new Event('change'));", home)
    caption = wait.until(lambda d: d.execute_script(TEXT_JS, "figure[data-chart='temperature'] figcaption"))
    # "Ystafell fyw: 19.8 °C am Sad 08:09; dros y 7 diwrnod diwethaf rhwng 18.2 °C a 21.4 °C, 19.9 °C ar gyfartaledd."
    welsh = r"°C am (Sul|Llun|Maw|Mer|Iau|Gwe|Sad) \d\d:\d\d; dros y 7 diwrnod diwethaf rhwng"
    assert re.search(welsh, caption), caption
    assert caption.startswith("Ystafell fyw: ") and "ar gyfartaledd" in caption and "over the last" not in caption
    headings = wall_browser.execute_script(HEADINGS_JS)
    assert {"Codi dros yr wythnosau diwethaf", "Tymheredd yr ystafelloedd dros y 7 diwrnod diwethaf"} <= set(headings)
    summary = wall_browser.execute_script(TEXT_JS, "figure[data-chart='temperature'] summary")
    assert summary == "Dangos y rhifau"
    wake = wait.until(lambda d: d.execute_script(TEXT_JS, "figure[data-chart='wake'] figcaption"))
    assert wake.startswith("Cododd ") and "Got up" not in wake, wake
