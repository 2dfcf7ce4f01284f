"""The API docs in headless Chromium: Swagger UI renders every operation from this server's own files, nothing
from another origin, and nothing the page's Content-Security-Policy had to refuse."""

from __future__ import annotations

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.pages.stack import PageStack

# Installed before any of the page's own scripts: the browser reports every blocked load or script here.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def test_api_docs_render_from_this_server_alone_under_its_csp(pages: PageStack, wall_browser: webdriver.Chrome) -> None:
    page = httpx.get(f"{pages.base_url}/docs", timeout=10)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace('http-equiv', '')  # every address on the page is this server's
    wall_browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    wall_browser.get(f"{pages.base_url}/docs")
    operations = WebDriverWait(wall_browser, 30, poll_frequency=0.1).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 15 and d.find_elements(By.CSS_SELECTOR,
                                                                                             ".opblock"))
    assert any("/api/v1/readings" in op.text for op in operations)
    loaded = wall_browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name);")
    assert loaded and all(url.startswith(pages.base_url + "/") for url in loaded), loaded
    assert wall_browser.execute_script("return window.__violations;") == []


def test_every_response_carries_a_content_security_policy(pages: PageStack) -> None:
    for path in ("/docs", "/display", "/street", "/care", "/openapi.json", "/healthz", "/api/v1/alerts",
                 "/no-such-page", "/docs/assets/swagger-ui-bundle.js", "/pages/docs.js"):
        resp = httpx.get(pages.base_url + path, timeout=10)
        policy = resp.headers.get("content-security-policy", "")
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, (path, resp.headers)
        assert resp.headers["x-content-type-options"] == "nosniff", path
    assert httpx.get(pages.base_url + "/redoc", timeout=10).status_code == 404  # ReDoc would load a CDN script
