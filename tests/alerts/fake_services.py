"""Local HTTP servers speaking GOV.UK Notify's and Microsoft Teams' documented request formats, because neither
service can be reached from the test machine.

- ``FakeNotify`` answers the endpoints of GOV.UK Notify's REST API that placesense's client (the official
  ``notifications-python-client``) calls: ``POST /v2/notifications/sms`` and ``/v2/notifications/email`` (201 with
  the notification's ``id``, ``reference``, rendered ``content`` and ``template``), ``GET /v2/notifications/{id}``
  (its ``status``), 400 with Notify's ``errors`` list for a number it cannot text, and 403 unless the request
  carries a JWT (HS256, ``iss`` = the service id, ``iat`` within 30 seconds) signed with the API key's secret, as
  Notify's authentication documentation says. Templates hold ``((placeholders))``, filled from
  ``personalisation``; a missing one is a 400 as in Notify. Numbers in ``fail_numbers`` end ``permanent-failure``.
- ``FakeTeams`` is an HTTPS server (a throwaway certificate made with Debian's ``openssl``) that takes what a Teams
  Workflows "post to a channel when a webhook request is received" trigger takes: a POST to
  ``/workflows/{id}/triggers/manual/paths/invoke`` with ``api-version``, ``sp``, ``sv`` and ``sig`` query parameters
  and a ``{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
  "content": {AdaptiveCard}}]}`` body; 202 when the signature matches, 401 otherwise.

Neither is the real service: they check the request formats and keep what they received for the tests.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

from tests.helpers import http_server

PLACEHOLDER = re.compile(r"\(\(([^)]+)\)\)")


@dataclass
class FakeNotify:
    service_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    secret: str = field(default_factory=lambda: str(uuid.uuid4()))
    sms_template_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    email_template_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    fail_numbers: set[str] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    @property
    def api_key(self) -> str:
        return f"placesense_test-{self.service_id}-{self.secret}"

    def templates(self) -> dict[str, tuple[str, str, str]]:
        return {self.sms_template_id: ("sms", "", "((body))"),
                self.email_template_id: ("email", "((subject))", "((body))")}

    def texts_to(self, number: str) -> list[str]:
        return [m["content"]["body"] for m in list(self.sent) if m.get("phone_number") == number]

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        return [m for m in list(self.sent) if m.get("email_address") == address]


def _notify_handler(state: FakeNotify) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, kind: str, message: str) -> None:
            self._reply(status, {"status_code": status, "errors": [{"error": kind, "message": message}]})

        def _authorised(self) -> bool:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                self._error(401, "AuthError", "Unauthorized: authentication token must be provided")
                return False
            try:
                claims = jwt.decode(header[7:], state.secret, algorithms=["HS256"], options={"verify_iat": True})
            except jwt.PyJWTError as exc:
                self._error(403, "AuthError", f"Invalid token: {exc}")
                return False
            if claims.get("iss") != state.service_id or abs(time.time() - int(claims.get("iat", 0))) > 30:
                self._error(403, "AuthError", "Invalid token: iss or iat")
                return False
            return True

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            if not self._authorised():
                return
            kind = {"/v2/notifications/sms": "sms", "/v2/notifications/email": "email"}.get(self.path)
            if kind is None:
                self._error(404, "NotFound", "not found")
                return
            template = state.templates().get(body.get("template_id", ""))
            if template is None or template[0] != kind:
                self._error(400, "BadRequestError", "Template not found")
                return
            personalisation = body.get("personalisation") or {}
            missing = [p for p in PLACEHOLDER.findall(template[1] + template[2]) if p not in personalisation]
            if missing:
                self._error(400, "BadRequestError", f"Missing personalisation: {', '.join(missing)}")
                return
            if kind == "sms" and not re.fullmatch(r"(\+44|0044|0)7\d{9}|\+[1-9]\d{7,14}", body["phone_number"]):
                self._error(400, "ValidationError", "phone_number Not a UK mobile number")
                return

            def fill(text: str) -> str:
                return PLACEHOLDER.sub(lambda m: str(personalisation[m.group(1)]), text)

            notification_id = str(uuid.uuid4())
            content: dict[str, Any] = {"body": fill(template[2])}
            if kind == "email":
                content.update(subject=fill(template[1]), from_email="alerts@notifications.service.gov.uk")
            else:
                content["from_number"] = "GOVUK"
            record = {
                "id": notification_id, "type": kind, "reference": body.get("reference"), "content": content,
                "status": "created", "template": {"id": body["template_id"], "version": 1},
                **{k: body[k] for k in ("phone_number", "email_address") if k in body},
            }
            state.sent.append(record)
            self._reply(201, {"id": notification_id, "reference": body.get("reference"), "content": content,
                              "uri": f"{state.url}/v2/notifications/{notification_id}",
                              "template": {"id": body["template_id"], "version": 1,
                                           "uri": f"{state.url}/v2/template/{body['template_id']}"}})

        def do_GET(self) -> None:
            if not self._authorised():
                return
            found = re.fullmatch(r"/v2/notifications/([0-9a-f-]{36})", self.path)
            record = next((m for m in state.sent if found and m["id"] == found.group(1)), None)
            if record is None:
                self._error(404, "NoResultFound", "No result found")
                return
            failing = record.get("phone_number") in state.fail_numbers or record.get("email_address") in \
                state.fail_numbers
            record["status"] = "permanent-failure" if failing else "delivered"
            self._reply(200, record)

    return Handler


@contextmanager
def fake_notify(state: FakeNotify | None = None) -> Iterator[FakeNotify]:
    state = state or FakeNotify()
    with http_server(_notify_handler(state)) as url:
        state.url = url
        yield state


@dataclass
class FakeTeams:
    workflow: str = field(default_factory=lambda: uuid.uuid4().hex)
    signature: str = field(default_factory=lambda: uuid.uuid4().hex)
    cards: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    port: int = 0
    certificate: Path | None = None

    @property
    def apprise_url(self) -> str:
        """The Apprise URL of this channel's Workflows webhook (the client must trust ``certificate``)."""
        return f"workflows://127.0.0.1:{self.port}/{self.workflow}/{self.signature}?image=no"

    def texts(self) -> list[str]:
        return [" ".join(str(block.get("text", "")) for block in card["body"]) for card in list(self.cards)]


def _teams_handler(state: FakeTeams) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            if parts.path != f"/workflows/{state.workflow}/triggers/manual/paths/invoke" or \
                    query.get("sig") != [state.signature] or "api-version" not in query:
                state.refused += 1
                self._reply(401)
                return
            attachments = body.get("attachments")
            if body.get("type") != "message" or not isinstance(attachments, list) or not attachments:
                self._reply(400)
                return
            for attachment in attachments:
                card = attachment.get("content", {})
                if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive" or \
                        card.get("type") != "AdaptiveCard" or not isinstance(card.get("body"), list):
                    self._reply(400)
                    return
                state.cards.append(card)
            self._reply(202)

    return Handler


@contextmanager
def fake_teams(tmp: Path) -> Iterator[FakeTeams]:
    state = FakeTeams()
    key, cert = tmp / "teams.key", tmp / "teams.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    state.certificate = cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with http_server(_teams_handler(state), tls=context) as url:
        state.port = urlsplit(url).port or 0
        yield state
