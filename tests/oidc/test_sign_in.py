"""People sign in as themselves: a real authorization-code + PKCE flow against a real OpenID Connect provider
(oidc-provider, see conftest), a server-side session, the role and homes from the tokens file's groups, and an
acknowledgement the alert's history and the audit log name the person by. Refusals: a person in no mapped group,
an ID token for another client, an expired one; a group mapping or a token removed from the file stops working on
the next request, with no restart.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from joserfc import jwt

from api.app import create_app
from api.auth import hash_token, load_tokens
from api.oidc import COOKIE, IdTokenRefused, SignIn
from devices.registry import Registry
from placesense.basics.findings import Finding
from placesense.service import Service
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.api.conftest import REGISTRY, serve
from tests.helpers import stack_settings
from tests.oidc.conftest import CLIENT_ID, CLIENT_SECRET, Provider

DEVICE_TOKEN = f"tok-device-{uuid.uuid4().hex}"
GROUPS = [
    {"group": "care-north", "role": "care", "homes": ["h-0001"]},
    {"group": "ops-admins", "role": "admin"},
]


@dataclass
class Site:
    base_url: str
    service: Service
    sign_in: SignIn
    provider: Provider
    tokens_path: Path

    def write_tokens(self, groups: list[dict[str, Any]], with_device_token: bool = True) -> None:
        device = {"name": "gateway-7", "role": "admin", "sha256": hash_token(DEVICE_TOKEN)}
        tokens = [device] if with_device_token else []
        fresh = self.tokens_path.with_suffix(".new")
        fresh.write_text(yaml.safe_dump({"tokens": tokens, "groups": groups}))
        os.replace(fresh, self.tokens_path)  # a new file, as an editor or config management writes it


@pytest.fixture(scope="module")
def site(
    mosquitto: Mosquitto, influx: InfluxDB, tmp_path_factory: pytest.TempPathFactory, oidc_port: int,
    start_provider: Any,
) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("signin")
    unique = uuid.uuid4().hex[:10]
    settings = stack_settings(mosquitto, influx, f"t_oidc_{unique}", tmp, f"oidc-{unique}")
    service = Service.build(settings, registry=Registry.from_data(REGISTRY))
    service.start()
    tokens_path = tmp / "tokens.yaml"
    env = {"PLACESENSE_OIDC_ISSUER": f"http://127.0.0.1:{oidc_port}", "PLACESENSE_OIDC_CLIENT_ID": CLIENT_ID,
           "PLACESENSE_OIDC_CLIENT_SECRET": CLIENT_SECRET}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        site = Site("", service, None, None, tokens_path)  # type: ignore[arg-type]
        site.write_tokens(GROUPS)
        app = create_app(service, manage_lifecycle=False, tokens=load_tokens(tokens_path))
    server, base_url = serve(app)
    site.base_url, site.sign_in = base_url, app.state.sign_in
    site.provider = start_provider(f"{base_url}/auth/callback")
    yield site
    server.should_exit = True
    site.sign_in.close()
    service.stop()
    httpx.post(f"{influx.url}/query", data={"q": f'DROP DATABASE "t_oidc_{unique}"'}, timeout=30)


def sign_in(site: Site, who: str, next_path: str = "/api/v1/alerts") -> tuple[httpx.Client, httpx.Response]:
    """A browser's journey: placesense → provider (login, consent) → placesense's callback → ``next_path``."""
    browser = httpx.Client(follow_redirects=True, timeout=20, headers={"X-Login-As": who})
    response = browser.get(f"{site.base_url}/auth/login", params={"next": next_path})
    return browser, response


def open_alert(site: Site, home: str) -> int:
    finding = Finding("help_button", "care", home, "critical", "Help button pressed", time.time_ns() // 10**6,
                      evidence={"minutes": 1})
    alert = site.service.alerts.apply(finding)
    assert alert is not None
    return alert.id


def test_a_carer_signs_in_and_her_acknowledgement_names_her(site: Site) -> None:
    browser, landing = sign_in(site, "alice")
    with contextlib.closing(browser):
        assert landing.status_code == 200, landing.text
        assert str(landing.url) == f"{site.base_url}/api/v1/alerts"
        # A code flow with PKCE went through the provider, and the session is a cookie only the server reads.
        hops = [str(r.url) for r in landing.history]
        assert any("code_challenge_method=S256" in h for h in hops)
        assert any(h.startswith(f"{site.base_url}/auth/callback?code=") for h in hops)
        set_cookie = next(r.headers["set-cookie"] for r in landing.history if COOKIE in r.headers.get("set-cookie", ""))
        assert "httponly" in set_cookie.lower() and "samesite=lax" in set_cookie.lower()

        alert_id = open_alert(site, "h-0001")
        # The cookie goes with any request the browser makes, so a change must come from placesense's own pages:
        # another site's form (or a request that does not say where it came from) is refused.
        ack_url = f"{site.base_url}/api/v1/alerts/{alert_id}/ack"
        for origin in ({"Origin": "https://evil.example"}, {}):
            refused = browser.post(ack_url, json={"note": "x"}, headers=origin)
            assert refused.status_code == 403 and refused.json()["type"].endswith("forbidden-origin"), refused.text
        assert site.service.alerts.get(alert_id).state == "open"  # the refused requests changed nothing
        acked = browser.post(ack_url, json={"note": "on my way"}, headers={"Origin": site.base_url})
        assert acked.status_code == 200, acked.text
        assert acked.json()["history"][-1]["by"] == "Alice Jones (alice@council.example)"
        # Her care group covers h-0001 only.
        other = open_alert(site, "h-0002")
        assert browser.post(f"{site.base_url}/api/v1/alerts/{other}/ack",
                            headers={"Origin": site.base_url}).status_code == 404

    audit = httpx.get(f"{site.base_url}/api/v1/audit", params={"home": "h-0001"},
                      headers={"Authorization": f"Bearer {DEVICE_TOKEN}"}, timeout=20)
    assert audit.status_code == 200
    acks = [e for e in audit.json()["entries"] if e["action"] == "alert.ack" and e["detail"] == str(alert_id)]
    assert acks and acks[0]["token_name"] == "Alice Jones (alice@council.example)" and acks[0]["role"] == "care"


def test_a_person_in_no_mapped_group_is_refused(site: Site) -> None:
    browser, landing = sign_in(site, "bob")
    with contextlib.closing(browser):
        assert landing.status_code == 403
        assert "no group" in landing.json()["detail"]
        assert browser.get(f"{site.base_url}/api/v1/alerts").status_code == 401


def test_removing_a_group_mapping_or_a_token_takes_effect_without_restart(site: Site) -> None:
    browser, landing = sign_in(site, "carol", "/api/v1/devices")
    with contextlib.closing(browser):
        assert landing.status_code == 200, landing.text
        site.write_tokens([g for g in GROUPS if g["group"] != "ops-admins"])
        assert browser.get(f"{site.base_url}/api/v1/devices").status_code == 401
        assert httpx.get(f"{site.base_url}/api/v1/devices", headers={"Authorization": f"Bearer {DEVICE_TOKEN}"},
                         timeout=20).status_code == 200
        site.write_tokens(GROUPS, with_device_token=False)
        assert httpx.get(f"{site.base_url}/api/v1/devices", headers={"Authorization": f"Bearer {DEVICE_TOKEN}"},
                         timeout=20).status_code == 401
        # Carol's group is mapped again: her session stands (the provider still says she is in it).
        assert browser.get(f"{site.base_url}/api/v1/devices").status_code == 200
        assert browser.post(f"{site.base_url}/auth/logout").status_code == 204
        assert browser.get(f"{site.base_url}/api/v1/devices").status_code == 401
    site.write_tokens(GROUPS)


def forged(site: Site, **changes: Any) -> tuple[str, str]:
    """An ID token signed with the provider's own key, with ``changes`` to otherwise good claims."""
    now = int(time.time())
    nonce = uuid.uuid4().hex
    claims = {"iss": site.provider.issuer, "aud": CLIENT_ID, "sub": "alice", "iat": now, "exp": now + 300,
              "nonce": nonce, "name": "Alice Jones", "groups": ["care-north"], **changes}
    header = {"alg": "RS256", "kid": site.provider.key.kid}
    return jwt.encode(header, claims, site.provider.key), nonce


def test_id_tokens_for_another_client_or_expired_are_refused(site: Site) -> None:
    good, nonce = forged(site)
    assert site.sign_in.client.validate(good, nonce)["sub"] == "alice"  # the keys are the provider's
    for changes in ({"aud": "another-app"}, {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
                    {"iss": "http://127.0.0.1:1"}):
        token, nonce = forged(site, **changes)
        with pytest.raises(IdTokenRefused):
            site.sign_in.client.validate(token, nonce)
    token, _ = forged(site)
    with pytest.raises(IdTokenRefused):
        site.sign_in.client.validate(token, "another-nonce")


def test_a_person_whose_identity_provider_says_welsh_gets_the_pages_in_welsh(site: Site) -> None:
    browser, landing = sign_in(site, "sian", next_path="/api/v1/me")
    with contextlib.closing(browser):
        assert landing.status_code == 200, landing.text
        assert landing.json() == {"name": "Siân Hughes (sian@council.example)", "role": "care", "lang": "cy"}
    browser, landing = sign_in(site, "alice", next_path="/api/v1/me")
    with contextlib.closing(browser):
        assert landing.json()["lang"] is None  # no locale, and her groups set none: the browser's language
