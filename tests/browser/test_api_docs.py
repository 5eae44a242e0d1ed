"""The API docs in the console's frame: Try it out with the browser session, reads and writes."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from ports.free_ports import find_free_port
from tests.browser.conftest import ROOT, screenshot
from tests.conftest import skip_or_fail

pytestmark = pytest.mark.browser

DEADLINE_MS = 20_000
AXE = ROOT / "tests/fixtures/axe/node_modules/axe-core/axe.min.js"
SERIOUS = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
  .filter((v) => v.impact === "serious" || v.impact === "critical")
  .map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")}`)"""


def _open_docs(page, console_url: str) -> dict[str, list[str]]:
    """Open /api/v1/docs and wait for Swagger UI; what the page asked for and complained of."""
    seen: dict[str, list[str]] = {"requests": [], "console": []}
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("console", lambda message: seen["console"].append(message.text))
    page.goto(f"{console_url}/api/v1/docs")
    expect(page.locator("#operations-ports-ports_api_list_ports")).to_be_visible(
        timeout=DEADLINE_MS
    )
    return seen


def _execute(operation) -> None:
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()


def _status(operation):
    return operation.locator(".live-responses-table tbody .response-col_status").first


def test_it_runs_get_ports_with_the_signed_in_session(live_console, page):
    seen = _open_docs(page, live_console.url)
    operation = page.locator("#operations-ports-ports_api_list_ports")
    _execute(operation)
    operation.get_by_role("button", name="Execute").click()
    expect(_status(operation)).to_have_text("200", timeout=DEADLINE_MS)
    body = operation.locator(".live-responses-table .response-col_description pre").first
    expect(body).to_contain_text('"sampled_at"', timeout=DEADLINE_MS)
    screenshot(page, "api-docs-get-ports")
    # Swagger UI and its styles come from this console, never a CDN, and the CSP holds.
    console_host = urlsplit(live_console.url).netloc
    assert {urlsplit(url).netloc for url in seen["requests"]} == {console_host}
    assert [text for text in seen["console"] if "Content Security Policy" in text] == []


def test_it_writes_with_the_session_and_the_csrf_header(live_console, page):
    _open_docs(page, live_console.url)
    operation = page.locator("#operations-projects-ports_registry_api_create_project")
    _execute(operation)
    (port,) = find_free_port(38400)
    project = {"name": "docs-try-it-out", "preferred_port": port}
    operation.locator("textarea.body-param__text").fill(json.dumps(project))
    operation.get_by_role("button", name="Execute").click()
    try:
        expect(_status(operation)).to_have_text("201", timeout=DEADLINE_MS)
    finally:
        csrf = page.locator("#swagger-ui").get_attribute("data-csrf-token")
        page.request.delete(
            f"{live_console.url}/api/v1/projects/{project['name']}",
            headers={"X-CSRFToken": csrf or ""},
        )


def test_it_shows_the_docs_inside_the_consoles_frame(live_console, page):
    _open_docs(page, live_console.url)
    nav = page.locator("header.topbar nav")
    expect(nav.get_by_role("link", name="API")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link", name="Ports")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Portside API")
    expect(page).to_have_title("API · Portside")


LUMINANCE = """(selector) => {
  const colour = (element, property) => getComputedStyle(element)[property];
  const luminance = (text) => {
    const [r, g, b] = text.match(/[0-9.]+/g).slice(0, 3).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  };
  return {
    page: luminance(colour(document.body, "backgroundColor")),
    text: luminance(colour(document.querySelector(selector), "color")),
  };
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_it_follows_the_consoles_light_and_dark(live_console, browser, signed_in_state, scheme):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        storage_state=signed_in_state,
        color_scheme=scheme,
    )
    try:
        page = context.new_page()
        _open_docs(page, live_console.url)
        # Swagger UI's own text (an operation's path) against the console's page background.
        seen = page.evaluate(LUMINANCE, ".swagger-ui .opblock-summary-path")
        if scheme == "dark":
            assert seen["page"] < 0.2, seen
            assert seen["text"] > 0.6, seen
        else:
            assert seen["page"] > 0.8, seen
            assert seen["text"] < 0.4, seen
        screenshot(page, f"api-docs-{scheme}")
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_it_passes_axe_once_try_it_out_has_filled_the_page(
    live_console, browser, signed_in_state, scheme
):
    # Swagger UI names neither its parameter selects, nor the body editor, nor its copy buttons,
    # and its colours fail contrast; api-docs.js and api_docs.css make up for them. The page
    # quality test looks at the docs as they open; this looks after a read and a form are open.
    if not AXE.exists():
        skip_or_fail("axe-core is not installed (make test runs npm ci in tests/fixtures/axe)")
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        storage_state=signed_in_state,
        color_scheme=scheme,
    )
    try:
        page = context.new_page()
        _open_docs(page, live_console.url)
        reads = page.locator("#operations-ports-ports_api_list_ports")
        _execute(reads)
        reads.get_by_role("button", name="Execute").click()
        expect(_status(reads)).to_have_text("200", timeout=DEADLINE_MS)
        _execute(page.locator("#operations-projects-ports_registry_api_create_project"))
        page.evaluate(AXE.read_text())
        assert page.evaluate(SERIOUS) == []
    finally:
        context.close()
