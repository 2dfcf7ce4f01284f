"""Fixtures of the browser tests: the demo's fleet on a real placesense (see ``stack.py``) with two days of the
simulator's homes and air sites, and headless Debian Chromium driven by selenium.

The tests are skipped only when /usr/bin/chromium is missing (``make setup`` installs Debian's chromium and
chromium-driver, so CI has them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.pages.stack import (
    CHROMEDRIVER,
    CHROMIUM,
    PHONE,
    SMALL_PHONE,
    WALL,
    PageStack,
    chromium,
    history,
    now_ms,
    publish_events,
)
from tests.pages.stack import running_stack as _running_stack

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: install Debian's chromium and chromium-driver (make setup does)"
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="package")
def pages(mosquitto: Mosquitto, influx: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageStack]:
    with _running_stack(mosquitto, influx, tmp_path_factory.mktemp("pages")) as stack:
        publish_events(stack, history(stack.registry, days=2, end_ms=now_ms() - 60_000))
        yield stack


def _browser(size: tuple[int, int], tmp_path: Path) -> Iterator[webdriver.Chrome]:
    assert CHROMEDRIVER.exists(), f"{CHROMIUM} is installed but {CHROMEDRIVER} is not: install chromium-driver"
    driver = chromium(size, tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def wall_browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Chromium with an operations-room screen's window."""
    yield from _browser(WALL, tmp_path)


@pytest.fixture
def phone_browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Chromium with a phone-sized window."""
    yield from _browser(PHONE, tmp_path)


@pytest.fixture
def small_phone(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Chromium at the narrowest common phone's width, for reflow."""
    yield from _browser(SMALL_PHONE, tmp_path)
