"""A person's first session: sign in with the printed link, find a port, terminate its process."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PASSWORD, screenshot

pytestmark = pytest.mark.browser


def test_it_signs_in_with_a_password_after_the_link(live_console, browser, signed_in_state):
    # signed_in_state used the printed link and set the password; now the password alone works.
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{live_console.url}/ports/")
        page.wait_for_url("**/login/?next=/ports/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/ports/")
        assert page.locator("h1").inner_text() == "Listening ports"
    finally:
        context.close()


def test_it_finds_a_socket_and_terminates_it(live_console, page, listening_child):
    child = listening_child(host="0.0.0.0")
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{live_console.url}/ports/")

    row = page.locator("#port-table tbody tr", has_text=f"{child.pid}")
    assert row.count() >= 1
    page.fill("input[name=q]", str(child.pid))
    page.wait_for_function(
        "n => document.querySelectorAll('#port-table tbody tr').length === n", arg=1
    )
    assert "all interfaces" in row.first.inner_text()
    screenshot(page, "ports-search")

    page.get_by_role("link", name=str(child.port), exact=True).click()
    page.wait_for_url(f"**/ports/{child.port}/")
    page.get_by_role("link", name=f"Terminate pid {child.pid}…").click()
    confirm = page.locator("#confirm-terminate")
    confirm.wait_for()
    assert f"pid {child.pid}" in page.locator(".confirm").inner_text()
    screenshot(page, "terminate-confirm")
    confirm.click()
    page.locator(".result").wait_for()
    assert "exited after SIGTERM" in page.locator(".result").inner_text()
    assert child.process.wait(timeout=5) is not None
    screenshot(page, "terminate-result")

    page.goto(f"{live_console.url}/ports/?q={child.pid}")
    assert "No listening sockets match" in page.locator("#port-table").inner_text()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_it_finds_free_ports_in_the_browser(live_console, page):
    page.goto(f"{live_console.url}/ports/")
    page.get_by_role("link", name="Free port").click()
    page.fill("input[name=near]", "5000")
    page.fill("input[name=count]", "3")
    page.get_by_role("button", name="Find").click()
    page.locator(".free-ports code").first.wait_for()
    assert page.locator(".free-ports code").count() == 3
    screenshot(page, "free-ports")


def test_it_follows_a_dark_colour_scheme(live_console, browser, signed_in_state):
    context = browser.new_context(
        color_scheme="dark", storage_state=signed_in_state, viewport={"width": 1400, "height": 900}
    )
    try:
        page = context.new_page()
        page.goto(f"{live_console.url}/ports/")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 18, 22)"  # --bg of the dark palette
        screenshot(page, "ports-dark")
    finally:
        context.close()
