"""A person's first health check: create it from "Monitor this port", watch it go down live."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot
from tests.health.servers import ControlledHTTP

pytestmark = pytest.mark.browser


def test_it_creates_a_check_and_watches_it_go_down(live_console, page):
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    server = ControlledHTTP()
    try:
        _create_and_watch(page, live_console.url, server)
    finally:
        server.stop()
    assert not errors, errors


def _create_and_watch(page, url: str, server: ControlledHTTP) -> None:
    page.goto(f"{url}/checks/new/?port={server.port}&host=127.0.0.1&service=Flask&proto=tcp")
    assert page.locator("select[name=type]").input_value() == "http"
    assert page.locator("input[name=url]").input_value() == f"http://127.0.0.1:{server.port}/"
    assert page.locator("input[name=host]").is_hidden()  # the TCP fields are hidden by CSS
    page.fill("input[name=name]", "Flask app")
    page.fill("input[name=service]", "demo")
    page.fill("input[name=url]", server.url)
    page.fill("input[name=interval_s]", "1")
    page.fill("input[name=timeout_s]", "0.5")
    page.fill("input[name=failures_before_down]", "1")
    page.fill("input[name=warn_ms]", "400")
    screenshot(page, "health-form")
    page.get_by_role("button", name="Create check").click()
    page.wait_for_url("**/checks/*/")
    assert page.locator("h1").inner_text() == "Flask app"

    page.goto(f"{url}/checks/")
    row = page.locator("#check-groups tr", has_text="Flask app")
    row.locator(".state-up").wait_for(timeout=10_000)
    screenshot(page, "health-list-up")

    server.stop()  # the service dies; the row turns red without a reload
    row.locator(".badge.state-down").wait_for(timeout=10_000)
    # Refused, or cut off mid-answer if the server stopped during a probe.
    assert row.locator("td").nth(3).get_attribute("title") not in ("", "HTTP 200")
    screenshot(page, "health-list-down")

    row.locator("a").first.click()
    page.wait_for_url("**/checks/*/")
    assert "up → " in page.locator("#check-detail").inner_text()
    page.get_by_role("button", name="Run now").click()
    page.locator(".flash-inline").wait_for()
    screenshot(page, "health-detail")
