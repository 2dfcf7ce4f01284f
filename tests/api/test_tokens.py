"""The tokens file: hashes only, clear errors, and the documented shell one-liner gives the same hash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from api.auth import TokenStore, hash_token, load_tokens
from placesense.basics.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "config" / "tokens.example.yaml"


def test_example_file_loads_and_every_role_is_there() -> None:
    store = load_tokens(EXAMPLE)
    assert len(store) == 5
    assert store.identify("not in the file, long enough") is None


def test_shell_one_liner_matches(tmp_path: Path) -> None:
    secret = "k3Jd9sLq0Zx8VbN2mW4tYp6R"
    shell = subprocess.run(f"printf %s '{secret}' | sha256sum | cut -d' ' -f1", shell=True, check=True,
                           capture_output=True, text=True).stdout.strip()
    assert shell == hash_token(secret)
    path = tmp_path / "tokens.yaml"
    path.write_text(f"tokens:\n  - name: north\n    role: care\n    homes: [h-0001]\n    sha256: {shell}\n")
    principal = load_tokens(path).identify(secret)
    assert principal is not None and principal.role == "care" and principal.homes == {"h-0001"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("tokens:\n  - name: a\n    role: care\n    sha256: " + "a" * 64, "needs the homes"),
        ("tokens:\n  - name: a\n    role: street\n    homes: [h-1]\n    sha256: " + "a" * 64, "only apply to care"),
        ("tokens:\n  - name: a\n    role: admin\n    sha256: secret-in-clear", "sha256"),
        ("tokens:\n  - name: a\n    role: root\n    sha256: " + "a" * 64, "role"),
        ("tokens:\n  - {name: a, role: admin, sha256: " + "a" * 64 + "}\n  - {name: a, role: admin, sha256: "
         + "b" * 64 + "}", "used twice"),
        ("tokens: [", "not valid YAML"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_tokens(path)


def test_missing_file_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PLACESENSE_TOKENS_PATH"):
        load_tokens(tmp_path / "absent.yaml")


def test_a_token_or_group_may_set_the_pages_language() -> None:
    secret = "k3Jd9sLq0Zx8VbN2mW4tYp6R"
    store = TokenStore.from_data({
        "tokens": [{"name": "wrexham-wall", "role": "display", "sha256": hash_token(secret), "lang": "cy"}],
        "groups": [{"group": "gofal-gogledd", "role": "care", "homes": ["h-0001"], "lang": "cy"},
                   {"group": "parks", "role": "street"}],
    })
    wall = store.identify(secret)
    assert wall is not None and wall.lang == "cy"
    carer = store.for_person("Siân Jones", ["gofal-gogledd"])
    assert carer is not None and carer.lang == "cy"
    street = store.for_person("Alex", ["parks"])
    assert street is not None and street.lang is None
    with pytest.raises(ConfigError, match="lang"):
        TokenStore.from_data({"tokens": [{"name": "a", "role": "admin", "sha256": "a" * 64, "lang": "fr"}]})
