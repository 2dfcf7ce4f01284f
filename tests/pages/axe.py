"""axe-core, the accessibility checker, run inside the pages by the browser tests.

``axe_source()`` installs the version pinned in ``tests/pages/package-lock.json`` into ``build/pages-npm`` with
``npm ci`` (once; again when the lock changes) and returns ``axe.min.js``. ``violations()`` injects it into the
page a driver shows and runs the WCAG 2.0, 2.1 and 2.2 level A and AA rules, which is what the Public Sector
Bodies Accessibility Regulations ask for.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from selenium import webdriver

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
PREFIX = ROOT / "build" / "pages-npm"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
RUN_JS = """const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then((r) => done(r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary)}))))
  .catch((e) => done([{id: 'axe-error', help: String(e), nodes: []}]));"""


@cache
def axe_source() -> str:
    lock = (HERE / "package-lock.json").read_bytes()
    script = PREFIX / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists() or (PREFIX / "package-lock.json").read_bytes() != lock:
        npm = shutil.which("npm")
        assert npm, "npm is missing: make setup installs Debian's npm"
        PREFIX.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(HERE / name, PREFIX / name)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=PREFIX, check=True,
                       capture_output=True, timeout=300)
    return script.read_text(encoding="utf-8")


def violations(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 AA violations on the page ``driver`` shows now."""
    driver.execute_script(axe_source())
    driver.set_script_timeout(60)
    found: list[dict[str, Any]] = driver.execute_async_script(RUN_JS, WCAG_AA)
    return found
