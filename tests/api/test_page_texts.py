"""The pages' Welsh dictionary (``api/pages/i18n/cy.json``) against the pages themselves: every word the HTML
shows and every ``t("...")`` in the scripts has its Welsh, with the same {placeholders}; no entry is left over
from an English text that changed; ``/pages/texts.js`` carries it as a script."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from api.views import PAGES_DIR, page_texts

CY: dict[str, str] = json.loads((PAGES_DIR / "i18n" / "cy.json").read_text(encoding="utf-8"))
PAGES = ("care", "street", "display", "devices")
SCRIPTS = sorted(PAGES_DIR.glob("*.js"))
ATTRIBUTES = ("aria-label", "title", "placeholder", "alt")
# A JavaScript string literal passed to t(...) or handed to el(...) as a child: "..." with \" escapes.
T_CALL = re.compile(r'\bt\(\s*"((?:[^"\\]|\\.)*)"')
PLACEHOLDER = re.compile(r"\{(\w+)\}")
CONCAT = re.compile(r'"\s*\+\s*"')


class _Words(HTMLParser):
    """The words a page's HTML shows: text outside scripts and styles, the title, and spoken attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.words += [value for name, value in attrs if name in ATTRIBUTES and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        flat = " ".join(data.split())
        if flat and not self._skip:
            self.words.append(flat)


def _html_words(page: str) -> list[str]:
    parser = _Words()
    parser.feed((PAGES_DIR / f"{page}.html").read_text(encoding="utf-8"))
    return parser.words


def _source(path: Path) -> str:
    """A page file with "a " + "b" joined into "a b", as the script sees the string."""
    return CONCAT.sub("", path.read_text(encoding="utf-8"))


def _script_keys() -> set[str]:
    return {json.loads(f'"{m}"') for path in SCRIPTS for m in T_CALL.findall(_source(path))}


@pytest.mark.parametrize("page", PAGES)
def test_every_word_of_the_pages_html_has_its_welsh(page: str) -> None:
    missing = [w for w in _html_words(page) if w not in CY and w != "placesense"]
    assert not missing, f"{page}.html shows words with no Welsh in api/pages/i18n/cy.json: {missing}"


def test_every_text_the_scripts_look_up_has_its_welsh() -> None:
    keys = _script_keys()
    assert len(keys) > 40, "the scripts' t(...) calls were not found"
    missing = sorted(k.strip() for k in keys if k.strip() and k.strip() not in CY)
    assert not missing, f"t(...) texts with no Welsh in api/pages/i18n/cy.json: {missing}"


def test_welsh_entries_fill_in_the_same_placeholders() -> None:
    wrong = {k: v for k, v in CY.items()
             if k != "_about" and set(PLACEHOLDER.findall(k)) != set(PLACEHOLDER.findall(v))}
    assert not wrong


def test_no_welsh_entry_is_left_over_from_a_changed_english_text() -> None:
    source = "\n".join(_source(p) for p in [*SCRIPTS, *PAGES_DIR.glob("*.html")])
    flat = " ".join(source.split())
    # Keys a script builds from a code ("action:resolved", a rule's name, a room, a band) are checked by name.
    built = re.compile(r"^(action:\w+|[A-Z][a-z]+( [a-z]+)*|[a-z]+( [a-z]+)?|Very High|Daqi)$")
    stale = [k for k in CY
             if k != "_about" and not built.match(k) and k not in flat and json.dumps(k)[1:-1] not in flat]
    assert not stale, f"Welsh entries whose English text no page uses any more: {stale}"


def test_texts_script_carries_the_dictionary() -> None:
    script = page_texts()
    assert script.startswith("window.PLACESENSE_TEXTS = ") and script.rstrip().endswith(";")
    assert json.loads(script.split(" = ", 1)[1].rstrip().rstrip(";"))["cy"] == CY


def test_each_page_loads_the_dictionary_before_its_scripts() -> None:
    for page in PAGES:
        html = (PAGES_DIR / f"{page}.html").read_text(encoding="utf-8")
        assert html.index('src="/pages/texts.js"') < html.index('src="/pages/common.js"'), page


def test_the_welsh_is_marked_as_a_draft_for_review() -> None:
    assert "native speaker" in CY["_about"]
    assert "native speaker" in (Path(__file__).parents[2] / "docs" / "welsh.md").read_text(encoding="utf-8")
