"""Chat tools as a channel, through Apprise (Microsoft Teams, Slack, Matrix, …; one library rather than one client
per service). A rota names a chat target; the target's URL, which holds its secret, is passed in from the
environment, and the outbox stores only the name.

This module must not read settings or the environment, or decide who is told.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from placesense.alerts.channels.base import DeliveryError, Sent
from placesense.alerts.outbox import Delivery


class AppriseChannel:
    """Posts to chat targets named in the rotas; each name maps to an Apprise URL (``workflows://…`` for a Teams
    channel's Workflows webhook, ``slack://…``, ``matrixs://…``). The URLs hold secrets and come from the
    environment; the outbox stores only the name."""

    name = "chat"
    label = "chat (Apprise)"

    def __init__(self, targets: dict[str, str]) -> None:
        # Apprise loads its plugins here, once; its email plugin still imports the standard library's deprecated
        # imghdr on Python 3.11 and 3.12, which says so: a known warning of theirs, not ours to act on.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
            import apprise

            self._apprise = apprise
            self._targets: dict[str, Any] = {}
            for target, url in targets.items():
                notifier = apprise.Apprise()
                if not notifier.add(url):
                    raise ValueError(f"chat target {target!r}: Apprise does not understand its URL")
                self._targets[target] = notifier

    def send(self, delivery: Delivery) -> Sent:
        notifier = self._targets.get(delivery.recipient)
        if notifier is None:
            raise DeliveryError(f"no chat target {delivery.recipient!r} is set up", retryable=False)
        with self._apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            ok = notifier.notify(title=str(delivery.payload.get("title", "")), body=str(delivery.payload["text"]))
        if not ok:
            said = captured.getvalue().strip().splitlines()
            raise DeliveryError(f"the chat service did not take it: {said[-1] if said else 'no reason given'}", True)
        return Sent("delivered", "apprise")
