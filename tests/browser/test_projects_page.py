"""A project in conflict, resolved from the Projects page with its one-click fix."""

from __future__ import annotations

import pytest

from ports.free_ports import find_free_port
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


def test_it_resolves_a_conflict_by_terminating_the_holder(live_console, page, listening_child):
    squatter = listening_child()
    # A fallback known to be free, so the one right answer is that fallback.
    (fallback,) = find_free_port(squatter.port + 1)
    page.goto(f"{live_console.url}/projects/new/")
    page.fill("input[name=name]", "api-gateway")
    page.fill("input[name=preferred_port]", str(squatter.port))
    page.fill("input[name=fallback_ports]", str(fallback))
    page.fill("input[name=working_directory]", "/srv/api-gateway")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/projects/api-gateway/")

    page.goto(f"{live_console.url}/projects/")
    row = page.locator("#project-api-gateway")
    assert "conflict" in row.inner_text()
    row.get_by_role("button", name="Use next free fallback").click()
    allocation = page.locator("#project-api-gateway .allocation-result")
    allocation.wait_for()
    assert allocation.inner_text().startswith(f"Use port {fallback}: PORT={fallback}")
    assert f"{fallback} is api-gateway's fallback #1 and is free" in allocation.inner_text()
    screenshot(page, "projects-conflict")

    row.get_by_role("link", name=f"Terminate python ({squatter.pid})…").click()
    page.locator("#confirm-terminate").click()
    page.locator(".result").wait_for()
    assert squatter.process.wait(timeout=5) is not None
    page.goto(f"{live_console.url}/projects/")
    assert "stopped" in page.locator("#project-api-gateway").inner_text()
    screenshot(page, "projects-resolved")


def test_it_refuses_an_import_of_nothing_with_the_reason(live_console, page):
    from playwright.sync_api import expect

    page.goto(f"{live_console.url}/projects/")
    before = page.locator(".page-head p.muted").inner_text()
    page.set_input_files(
        "input[name=file]", {"name": ".devports.yml", "mimeType": "application/yaml", "buffer": b""}
    )
    page.locator("label.check", has_text="Replace").locator("input").check()
    page.get_by_role("button", name="Import").click()
    page.wait_for_url("**/projects/import/")
    expect(page.locator("#import-problems")).to_contain_text(
        "Not imported: the file is empty: there is nothing to import"
    )
    screenshot(page, "projects-import-empty")
    page.fill("textarea[name=text]", "projects: {}\n")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-problems")).to_contain_text("lists no projects")
    page.goto(f"{live_console.url}/projects/")
    assert page.locator(".page-head p.muted").inner_text() == before
