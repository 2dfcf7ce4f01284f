"""``make screenshots`` stays runnable and the README stays true to it, without running it (it starts the whole
demo and takes a minute or more): its ``--help`` loads every module it uses, and the images it says it writes are
the ones committed under docs/screenshots and linked from the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_screenshot_script_loads_and_the_readme_links_every_image_it_writes() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts/screenshots.py"), "--help"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "placesense demo" in done.stdout and "--out" in done.stdout
    written = set(re.findall(r"^- ([\w-]+\.png):", done.stdout, flags=re.MULTILINE))
    assert {"display.png", "street.png", "care.png", "devices.png"} <= written
    assert written == {p.name for p in (ROOT / "docs/screenshots").glob("*.png")}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert {name for name in written if f"docs/screenshots/{name}" not in readme} == set()
