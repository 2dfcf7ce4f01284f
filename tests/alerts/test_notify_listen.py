"""The feed's push side: listeners get every change on the publishing thread, in order, until they stop; a
listener that raises neither breaks the lifecycle nor starves the other listeners and queues."""

from __future__ import annotations

import threading

import pytest

from placesense.alerts.changes import AlertChange
from placesense.alerts.feed import AlertFeed
from placesense.alerts.lifecycle import AlertService
from placesense.alerts.store import AlertStore
from placesense.basics.clock import EventClock
from placesense.basics.db import make_engine
from placesense.basics.findings import Finding


def test_listeners_receive_changes_until_they_stop(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    feed = AlertFeed(maxsize=8)
    service = AlertService(AlertStore(make_engine(database_url)), EventClock(1), publishers=[feed])
    heard: list[tuple[str, str, int]] = []
    threads: set[int] = set()

    def record(change: AlertChange) -> None:
        heard.append((change.action, change.alert.state, change.alert.id))
        threads.add(threading.get_ident())

    def broken(change: AlertChange) -> None:
        raise RuntimeError("listener bug")

    stop = feed.listen(record)
    stop_broken = feed.listen(broken)
    with feed.subscription() as pulled:
        assert len(feed) == 3
        alert = service.apply(Finding("help_button", "care", "h-0001", "critical", "Help button pressed", 1_000))
        assert alert is not None
        service.ack(alert.id, "north-care", note="on my way")
        assert heard == [("opened", "open", alert.id), ("acknowledged", "acknowledged", alert.id)]
        assert threads == {threading.get_ident()}  # pushed on the publishing thread, before apply returned
        assert "listener bug" in caplog.text
        first = pulled.get(timeout_s=1)
        assert first is not None and first.action == "opened"  # the queue still got it

        stop()
        stop()  # harmless twice
        stop_broken()
        service.resolve(alert.id, "north-care")
        assert [action for action, _, _ in heard] == ["opened", "acknowledged"]
        assert len(feed) == 1
    assert len(feed) == 0
