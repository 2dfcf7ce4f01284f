"""A real OpenID Connect provider for the sign-in tests: panva's ``oidc-provider`` (npm), pinned by
tests/oidc/package-lock.json and installed by this set-up with ``npm ci`` into build/oidc (never by hand), run
by tests/oidc/provider.mjs on a loopback port with signing keys this set-up makes (so a test can also sign a
token the provider's keys verify but that placesense must refuse: wrong audience, expired).
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import RSAKey

HERE = Path(__file__).parent
BUILD = HERE.parent.parent / "build" / "oidc"
CLIENT_ID = "placesense-test"
CLIENT_SECRET = "a-client-secret-for-tests-only-0123456789"
ACCOUNTS = {
    "alice": {"name": "Alice Jones", "groups": ["care-north", "everyone"]},
    "sian": {"name": "Siân Hughes", "groups": ["care-north"], "locale": "cy-GB"},  # her own IdP language: Welsh
    "bob": {"name": "Bob Smith", "groups": ["library-staff"]},  # in no group placesense maps
    "carol": {"name": "Carol Evans", "groups": ["ops-admins"]},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def install_provider() -> Path:
    """``npm ci`` into build/oidc from the pinned lock file, unless that exact install is already there."""
    BUILD.mkdir(parents=True, exist_ok=True)
    lock = BUILD / "package-lock.json"
    installed = (BUILD / "node_modules" / "oidc-provider").is_dir()
    if not (installed and lock.exists() and filecmp.cmp(lock, HERE / "package-lock.json", shallow=False)):
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(HERE / name, BUILD / name)
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=BUILD,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"npm ci of oidc-provider failed:\n{done.stdout}\n{done.stderr}"
    shutil.copyfile(HERE / "provider.mjs", BUILD / "provider.mjs")
    return BUILD / "provider.mjs"


@dataclass(frozen=True)
class Provider:
    issuer: str
    key: RSAKey  # the provider's own signing key


@pytest.fixture(scope="module")
def oidc_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def start_provider(
    tmp_path_factory: pytest.TempPathFactory, oidc_port: int
) -> Iterator[callable]:  # type: ignore[valid-type]
    """Start the provider once placesense's callback URL is known; stopped at the end of the module."""
    script = install_provider()
    tmp = tmp_path_factory.mktemp("oidc")
    key = RSAKey.generate_key(2048, parameters={"alg": "RS256", "use": "sig"}, private=True, auto_kid=True)
    (tmp / "jwks.json").write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    (tmp / "accounts.json").write_text(json.dumps(ACCOUNTS))
    procs: list[subprocess.Popen[bytes]] = []

    def start(redirect_uri: str) -> Provider:
        env = {**os.environ, "OIDC_PORT": str(oidc_port), "OIDC_CLIENT_ID": CLIENT_ID,
               "OIDC_CLIENT_SECRET": CLIENT_SECRET, "OIDC_REDIRECT_URI": redirect_uri,
               "OIDC_JWKS": str(tmp / "jwks.json"), "OIDC_ACCOUNTS": str(tmp / "accounts.json")}
        with (tmp / "provider.log").open("wb") as log:
            proc = subprocess.Popen(["node", str(script)], cwd=BUILD, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        issuer = f"http://127.0.0.1:{oidc_port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"oidc-provider exited:\n{(tmp / 'provider.log').read_text()}"
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return Provider(issuer, key)
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "oidc-provider did not start"
            time.sleep(0.1)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)
