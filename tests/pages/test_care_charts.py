"""The care page's charts in headless Chromium on the demo's two days of history: room temperature over the last
7 days and getting-up times, each drawn by the vendored uPlot on a canvas that is really painted, with a caption
that says the same in words (the numbers the API gives) and the numbers as a table, and no WCAG 2.2 AA violation
inside them (axe-core). With a week of one home's history, getting up is drawn against the usual range."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.pages.axe import WCAG_AA, axe_source
from tests.pages.stack import PageStack, history, now_ms, publish_events, running_stack

# Pixels of the chart's canvas painted in a colour close to the line's (GOV.UK blue, #1d70b8).
PAINTED_JS = """const canvas = document.querySelector(arguments[0] + ' canvas');
if (!canvas || !canvas.width) return 0;
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let n = 0;
for (let i = 0; i < data.length; i += 4) {
  if (data[i + 3] > 200 && Math.abs(data[i] - 29) < 40 && Math.abs(data[i + 1] - 112) < 40
      && Math.abs(data[i + 2] - 184) < 40) n++;
}
return n;"""
# Pixels of the usual-range band: the line's blue at 15 % opacity (the canvas is transparent behind it).
BAND_JS = """const canvas = document.querySelector(arguments[0] + ' canvas');
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let n = 0;
for (let i = 0; i < data.length; i += 4) {
  if (data[i + 3] > 25 && data[i + 3] < 55 && Math.abs(data[i] - 29) < 12 && Math.abs(data[i + 1] - 112) < 12
      && Math.abs(data[i + 2] - 184) < 12) n++;
}
return n;"""
AXE_IN_JS = """const done = arguments[arguments.length - 1];
axe.run({include: arguments[1]}, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then((r) => done(r.violations.map((v) => ({id: v.id, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(' '))}))))
  .catch((e) => done([{id: 'axe-error', help: String(e), nodes: []}]));"""


def _clock(minutes: float) -> str:
    """As the page writes a time of day (JavaScript's Math.round: halves up)."""
    m = math.floor(minutes + 0.5) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def _figure(browser: webdriver.Chrome, chart: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = browser.execute_script(
        """const f = document.querySelector(`figure[data-chart='${arguments[0]}']`);
        if (!f) return null;
        return {caption: f.querySelector('figcaption').textContent,
                hidden: f.querySelector('.chart').getAttribute('aria-hidden'),
                rows: [...f.querySelectorAll('details tbody tr')].map((r) => r.textContent)};""", chart)
    return found


def test_care_page_charts_temperature_and_getting_up_with_words_and_numbers(
    pages: PageStack, wall_browser: webdriver.Chrome,
) -> None:
    home = next(h for h in pages.homes_with("climate") if h in pages.care_homes)
    sensor = pages.device(home, "climate")
    start = (datetime.now(tz=UTC) - timedelta(days=7)).isoformat()
    readings = pages.api(f"/api/v1/readings?device={sensor.id}&metric=temperature_c&limit=10000"
                         f"&start={start.replace('+00:00', 'Z')}", "care")["points"]
    assert len(readings) > 10, "the demo history has the living room's temperature"
    routine = pages.api(f"/api/v1/homes/{home}/routine", "care")["routine"]
    learned = routine["wake_history"]
    assert learned, "two days of history close at least one routine day"

    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    wall_browser.get(pages.url("care", "care"))
    wait.until(lambda d: len(Select(d.find_element("id", "home")).options) > 0)
    Select(wall_browser.find_element("id", "home")).select_by_value(home)

    # Room temperature: the canvas is painted, and the caption says what it shows, with the API's numbers.
    assert wait.until(lambda d: d.execute_script(PAINTED_JS, "#temperature-chart")) > 50
    temperature = _figure(wall_browser, "temperature")
    assert temperature is not None and temperature["hidden"] == "true"
    values = [p["value"] for p in readings]
    caption = temperature["caption"]
    assert caption.startswith("Living room: "), caption
    assert f"{values[-1]:.1f} °C at" in caption
    assert f"between {min(values):.1f} °C and {max(values):.1f} °C" in caption, caption
    assert temperature["rows"] and all("°C" in row for row in temperature["rows"])

    # Getting up: one point a day learned, the caption naming the earliest and latest and the usual range.
    assert wait.until(lambda d: d.execute_script(PAINTED_JS, "#wake-chart")) > 10
    wake = _figure(wall_browser, "wake")
    assert wake is not None and wake["hidden"] == "true"
    times = [d["wake_min"] for d in learned]
    earliest, latest = (_clock(m) for m in (min(times), max(times)))
    said = (f"Got up at {earliest} on the only day learned so far." if len(learned) == 1
            else f"Got up between {earliest} and {latest} over the last {len(learned)} days learned.")
    assert said in wake["caption"], wake
    if routine["usual_wake"]["weekday"] is None and routine["usual_wake"]["weekend"] is None:
        assert "no usual range yet" in wake["caption"]
    assert len(wake["rows"]) == len(learned)

    wall_browser.execute_script(axe_source())
    wall_browser.set_script_timeout(60)
    found = wall_browser.execute_async_script(AXE_IN_JS, WCAG_AA, [["#wake-chart"], ["#temperature-chart"]])
    assert found == [], found


@pytest.fixture(scope="module")
def week(mosquitto: Mosquitto, influx: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageStack]:
    """A week of one home's history: enough learned days for a usual getting-up range."""
    with running_stack(mosquitto, influx, tmp_path_factory.mktemp("week")) as stack:
        home = stack.care_homes[0]
        events = history(stack.registry, days=7, end_ms=now_ms() - 60_000)
        publish_events(stack, [e for e in events if e.device.subject == home])
        yield stack


def test_getting_up_is_drawn_against_the_usual_range_once_there_is_one(
    week: PageStack, wall_browser: webdriver.Chrome,
) -> None:
    home = week.care_homes[0]
    routine = week.api(f"/api/v1/homes/{home}/routine", "care")["routine"]
    usual = routine["usual_wake"]["weekday"] or routine["usual_wake"]["weekend"]
    assert usual is not None and len(routine["wake_history"]) >= 3, routine["wake_history"]

    wait = WebDriverWait(wall_browser, 30, poll_frequency=0.1)
    wall_browser.get(week.url("care", "care"))
    wait.until(lambda d: len(Select(d.find_element("id", "home")).options) > 0)
    Select(wall_browser.find_element("id", "home")).select_by_value(home)
    assert wait.until(lambda d: d.execute_script(PAINTED_JS, "#wake-chart")) > 10
    # The usual range is a pale blue band behind the points.
    assert wall_browser.execute_script(BAND_JS, "#wake-chart") > 500
    wake = _figure(wall_browser, "wake")
    assert wake is not None
    weekday = routine["usual_wake"]["weekday"]
    if weekday is not None:
        assert f"Usually up between {_clock(weekday['low'])} and {_clock(weekday['high'])} on weekdays" \
            in wake["caption"], wake["caption"]
    assert "inside the usual range" in wake["caption"] or "Outside the usual range on" in wake["caption"]
    assert all(" to " in row for row in wake["rows"])  # each day's usual range in the table
