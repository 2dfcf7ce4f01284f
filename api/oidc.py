"""People sign in as themselves through the council's identity provider (OpenID Connect; most councils use
Microsoft Entra ID), so the audit log and every alert's history name a person, not a shared token.

The flow is the authorization code flow with PKCE (S256), a ``state`` and a ``nonce``: ``GET /auth/login`` sends
the browser to the provider, ``GET /auth/callback`` exchanges the code (authenticated with the client secret),
checks the ID token's signature against the provider's published keys (JWKS, via joserfc) and its issuer,
audience, expiry and nonce, and opens a server-side session. The browser holds only a random session id in a
cookie (HttpOnly, SameSite=Lax, Secure when the request came over https). The person's role and homes come from
the ``groups`` section of the tokens file (``api.auth``), looked up again on every request, so removing a group
mapping, or the person from the group at the provider followed by their session ending, takes effect without a
restart; ``POST /auth/logout`` ends a session at once.

Settings come from the environment only: ``PLACESENSE_OIDC_ISSUER`` (e.g.
``https://login.microsoftonline.com/<tenant>/v2.0``), ``PLACESENSE_OIDC_CLIENT_ID``,
``PLACESENSE_OIDC_CLIENT_SECRET``; optionally ``PLACESENSE_OIDC_REDIRECT_URL`` (the callback's public URL, when
placesense is behind a proxy), ``PLACESENSE_OIDC_GROUPS_CLAIM`` (default ``groups``) and
``PLACESENSE_OIDC_SESSION_HOURS`` (default 10, one shift). Without an issuer, sign-in is off and ``/auth/*``
answers 404. This module must not decide scopes (``api.auth`` does) nor hold route logic beyond the sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.auth import Principal, TokenStore
from api.problems import Problem
from placesense.basics.texts import LANGS, Lang

log = logging.getLogger(__name__)

COOKIE = "placesense_session"
PENDING_SECONDS = 600  # a sign-in not finished within 10 minutes starts again
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]


class OidcSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLACESENSE_OIDC_", extra="ignore")

    issuer: str = Field(default="", description="the provider's issuer URL; empty turns sign-in off")
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    redirect_url: str = Field(default="", description="the public URL of /auth/callback; else from the request")
    groups_claim: str = "groups"
    session_hours: float = Field(default=10.0, gt=0, le=24)

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)


class IdTokenRefused(Exception):
    """The ID token is not one placesense may accept; the message says why (for the log, not the browser)."""


@dataclass
class Session:
    name: str
    subject: str
    groups: tuple[str, ...]
    expires: float
    lang: Lang | None = None  # from the IdP's standard ``locale`` claim ("cy-GB"), when it is English or Welsh


@dataclass
class _Pending:
    verifier: str
    nonce: str
    next_path: str
    expires: float


@dataclass
class OidcClient:
    """Talks to one provider: discovery, keys, the code exchange and the ID token's checks."""

    settings: OidcSettings
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    _metadata: dict[str, Any] | None = None
    _keys: KeySet | None = None

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            response = self.http.get(url)
            response.raise_for_status()
            meta: dict[str, Any] = response.json()
            if meta.get("issuer") != self.settings.issuer:
                raise IdTokenRefused(f"the provider at {url} calls itself {meta.get('issuer')!r}")
            self._metadata = meta
        return self._metadata

    def keys(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            response = self.http.get(self.metadata()["jwks_uri"])
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
        return self._keys

    def authorize_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {
            "response_type": "code", "client_id": self.settings.client_id, "redirect_uri": redirect_uri,
            "scope": "openid profile email", "state": state, "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256",
        }
        return str(httpx.URL(self.metadata()["authorization_endpoint"], params=params))

    def exchange(self, code: str, redirect_uri: str, verifier: str) -> str:
        """The ID token for ``code``."""
        response = self.http.post(
            self.metadata()["token_endpoint"],
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                  "code_verifier": verifier},
            auth=(self.settings.client_id, self.settings.client_secret.get_secret_value()),
        )
        if response.status_code != 200:
            raise IdTokenRefused(f"the provider refused the code: {response.status_code} {response.text[:200]}")
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise IdTokenRefused("the provider's answer has no ID token")
        return id_token

    def validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, expiry and nonce are right."""
        try:
            try:
                token = jwt.decode(id_token, self.keys(), algorithms=ALGORITHMS)
            except JoseError:
                token = jwt.decode(id_token, self.keys(refresh=True), algorithms=ALGORITHMS)  # keys rotated
            registry = jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": self.settings.client_id},
                exp={"essential": True},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise IdTokenRefused(f"ID token refused: {exc}") from exc
        claims: dict[str, Any] = token.claims
        azp = claims.get("azp")
        if azp is not None and azp != self.settings.client_id:
            raise IdTokenRefused(f"ID token refused: issued to {azp!r}, not this client")
        return claims


class SignIn:
    """Sign-ins under way and open sessions, in this process's memory (a restart signs everyone out)."""

    def __init__(self, settings: OidcSettings, tokens: TokenStore) -> None:
        self.settings = settings
        self.client = OidcClient(settings)
        self.tokens = tokens
        self._pending: dict[str, _Pending] = {}
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def begin(self, redirect_uri: str, next_path: str) -> str:
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        now = time.monotonic()
        with self._lock:
            self._pending = {k: v for k, v in self._pending.items() if v.expires > now}
            self._pending[state] = _Pending(verifier, nonce, next_path, now + PENDING_SECONDS)
        return self.client.authorize_url(redirect_uri, state, nonce, verifier)

    def finish(self, state: str, code: str, redirect_uri: str) -> tuple[str, Session, str]:
        """Session id, session and where to go next; raises ``IdTokenRefused``."""
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None or pending.expires < time.monotonic():
            raise IdTokenRefused("unknown or expired sign-in state")
        claims = self.client.validate(self.client.exchange(code, redirect_uri, pending.verifier), pending.nonce)
        return (*self.open_session(claims), pending.next_path)

    def open_session(self, claims: dict[str, Any]) -> tuple[str, Session]:
        groups = claims.get(self.settings.groups_claim) or []
        if not isinstance(groups, list):
            groups = [groups]
        name = str(claims.get("name") or claims.get("preferred_username") or claims["sub"])
        email = claims.get("email") or claims.get("preferred_username")
        if email and email != name:
            name = f"{name} ({email})"
        locale = str(claims.get("locale") or "").lower()
        lang: Lang | None = next((code for code in LANGS if locale == code or locale.startswith(f"{code}-")), None)
        session = Session(name[:80], str(claims["sub"]), tuple(str(g) for g in groups),
                          time.monotonic() + self.settings.session_hours * 3600, lang)
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._sessions = {k: v for k, v in self._sessions.items() if v.expires > now}
            self._sessions[_key(sid)] = session
        return sid, session

    def principal(self, sid: str) -> Principal | None:
        """The signed-in person behind a session cookie, with the role their groups have now."""
        with self._lock:
            session = self._sessions.get(_key(sid))
        if session is None or session.expires < time.monotonic():
            return None
        person = self.tokens.for_person(session.name, session.groups)
        # Her own language in the identity provider outranks her group's.
        return replace(person, lang=session.lang) if person is not None and session.lang is not None else person

    def close(self) -> None:
        self.client.http.close()

    def end(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(_key(sid), None)


def _key(sid: str) -> str:
    """Sessions are kept by the hash of their id, as tokens are."""
    return hashlib.sha256(sid.encode()).hexdigest()


def _sign_in(request: Request) -> SignIn:
    sign_in: SignIn | None = getattr(request.app.state, "sign_in", None)
    if sign_in is None:
        raise Problem(404, "sign-in through an identity provider is not configured (PLACESENSE_OIDC_ISSUER)",
                      kind="not-found")
    return sign_in


def _redirect_uri(request: Request, sign_in: SignIn) -> str:
    return sign_in.settings.redirect_url or str(request.url_for("oidc_callback"))


def _safe_next(path: str) -> str:
    """Only a path on this server: ``//host`` or ``https://…`` would make the login an open redirect."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


router = APIRouter(prefix="/auth", tags=["sign-in"])


@router.get("/login", summary="Sign in through the council's identity provider", response_class=RedirectResponse,
            status_code=302)
def login(request: Request, next: Annotated[str, Query(max_length=500)] = "/") -> Response:
    sign_in = _sign_in(request)
    url = sign_in.begin(_redirect_uri(request, sign_in), _safe_next(next))
    return RedirectResponse(url, status_code=302)


@router.get("/callback", name="oidc_callback", summary="Where the identity provider sends the browser back",
            status_code=302)
def callback(
    request: Request,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=2000)] = "",
    error: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    sign_in = _sign_in(request)
    audit = request.app.state.api.audit
    if error or not code:
        audit.refused("(sign-in)", "none", "unauthenticated", detail=f"provider said: {error or 'no code'}")
        raise Problem(401, "the sign-in did not finish; go back to the page and sign in again",
                      kind="unauthenticated")
    try:
        sid, session, next_path = sign_in.finish(state, code, _redirect_uri(request, sign_in))
    except (IdTokenRefused, httpx.HTTPError) as exc:
        log.warning("sign-in refused: %s", exc)
        audit.refused("(sign-in)", "none", "unauthenticated", detail=str(exc))
        raise Problem(401, "the sign-in could not be checked; sign in again, or ask your administrator",
                      kind="unauthenticated") from exc
    if sign_in.tokens.for_person(session.name, session.groups) is None:
        sign_in.end(sid)
        audit.refused(session.name, "none", "role", detail="signed in, but in no group placesense knows")
        raise Problem(403, "you are signed in, but your account is in no group that may use placesense; "
                      "ask your administrator to add you", kind="forbidden-role")
    response = RedirectResponse(next_path, status_code=302)
    response.set_cookie(COOKIE, sid, max_age=int(sign_in.settings.session_hours * 3600), httponly=True,
                        secure=request.url.scheme == "https", samesite="lax", path="/")
    return response


@router.post("/logout", summary="Sign out (ends the session at once)", status_code=204)
def logout(request: Request) -> Response:
    sign_in = _sign_in(request)
    sid = request.cookies.get(COOKIE)
    if sid:
        sign_in.end(sid)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


def session_principal(request: Request) -> Principal | None:
    """The signed-in person behind the request's session cookie, if sign-in is on and the session is good."""
    sign_in: SignIn | None = getattr(request.app.state, "sign_in", None)
    sid = request.cookies.get(COOKIE)
    if sign_in is None or not sid:
        return None
    return sign_in.principal(sid)
