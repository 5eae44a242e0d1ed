"""The Health pages live in a real browser: a check's page goes up then down without a reload,
and a filtered list receives only its own rows (no htmx oobErrorNoTarget)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.health.servers import EchoTCP

pytestmark = pytest.mark.browser

LIVE = 15_000  # ms: a run every second, down after one failure; generous for a busy machine


def _create_tcp_check(page, url: str, name: str, port: int) -> str:
    """Through the form a person uses; returns the check page's URL."""
    page.goto(f"{url}/checks/new/?port={port}&host=127.0.0.1&proto=tcp")
    assert page.locator("select[name=type]").input_value() == "tcp"
    page.fill("input[name=name]", name)
    page.fill("input[name=service]", "live-tests")
    page.fill("input[name=interval_s]", "1")
    page.fill("input[name=failures_before_down]", "1")
    page.get_by_role("button", name="Create check").click()
    page.wait_for_url("**/checks/*/")
    return page.url


def _record_oob_errors(page) -> None:
    page.evaluate(
        """() => {
          window.__oobErrors = 0;
          document.body.addEventListener("htmx:oobErrorNoTarget", () => window.__oobErrors++);
        }"""
    )


def test_a_checks_page_shows_up_then_down_without_a_reload(live_console, page):
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    server = EchoTCP()
    try:
        _create_tcp_check(page, live_console.url, "Live TCP listener", server.port)
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
        marker = page.evaluate("() => (window.__portsideMarker = Math.random())")
        _record_oob_errors(page)
        # Pending when the page opened; up once the scheduler's first runs come in.
        expect(page.locator("#check-state .badge")).to_have_text("up", timeout=LIVE)
        expect(page.locator("#last-result")).to_contain_text("connected to 127.0.0.1")
        screenshot(page, "health-check-live-up")

        server.stop()  # the service dies: the page turns down by itself
        expect(page.locator("#check-state .badge")).to_have_text("down", timeout=LIVE)
        expect(page.locator("#last-result")).to_contain_text("failed")
        history = page.locator("#check-live .history").first
        expect(history.locator("tbody tr").first).to_contain_text("up → down")
        results = page.locator("#check-live .history").nth(1)
        # A failed run shows no latency: a dash (en dash), not the time it took to fail.
        expect(results.locator("tbody tr").first.locator("td").nth(2)).to_have_text("\u2013")
        expect(page.locator(".latency-chart .down-mark").first).to_be_attached()
        screenshot(page, "health-check-live-down")
        assert page.evaluate("() => window.__portsideMarker") == marker  # never reloaded
        assert page.evaluate("() => window.__oobErrors") == 0
    finally:
        server.stop()
    assert not errors, errors


def test_a_filtered_list_gets_its_rows_and_no_others(live_console, page):
    shown, hidden = EchoTCP(), EchoTCP()
    try:
        _create_tcp_check(page, live_console.url, "Filter shown", shown.port)
        _create_tcp_check(page, live_console.url, "Filter hidden", hidden.port)
        page.goto(f"{live_console.url}/checks/?q=Filter+shown")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
        _record_oob_errors(page)
        row = page.locator("#check-groups tr", has_text="Filter shown")
        expect(row.locator(".badge")).to_have_text("up", timeout=LIVE)
        expect(page.locator("#check-groups tr", has_text="Filter hidden")).to_have_count(0)
        shown.stop()
        expect(row.locator(".badge")).to_have_text("down", timeout=LIVE)
        expect(row.locator("td").nth(3)).to_have_text("failed")
        # The other check ran the whole time: its rows were never pushed to this page.
        assert page.evaluate("() => window.__oobErrors") == 0

        # A new search swaps the list and tells the socket; the other row now updates live.
        page.fill("input[name=q]", "Filter hidden")
        other = page.locator("#check-groups tr", has_text="Filter hidden")
        expect(other.locator(".badge")).to_have_text("up", timeout=LIVE)
        hidden.stop()
        expect(other.locator(".badge")).to_have_text("down", timeout=LIVE)
        assert page.evaluate("() => window.__oobErrors") == 0
    finally:
        shown.stop()
        hidden.stop()
