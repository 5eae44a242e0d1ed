"""The Ports list in a real browser: it fits every width, stays live under a filter, folds a
burst of notices, copies, keeps its sort, groups by server and remembers hide-system."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.ports.list_helpers import listen_as, start_notebook

pytestmark = pytest.mark.browser

CHECKS_JS = (Path(__file__).parent / "page_checks.js").read_text()
COLUMNS = (
    "port",
    "proto",
    "address",
    "exposure",
    "process",
    "user",
    "service",
    "cpu",
    "memory",
    "command",
    "actions",
)
LIVE = 10_000  # ms: the socket connects, the sampler sees a change, the row arrives


@pytest.fixture
def open_page(browser, signed_in_state, live_console):
    """open_page(width, scheme, path, permissions) -> a Ports page of its own context."""
    contexts = []

    def open_(width=1400, scheme="light", path="/ports/", permissions=()):
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            color_scheme=scheme,
            storage_state=signed_in_state,
        )
        if permissions:
            context.grant_permissions(list(permissions), origin=live_console.url)
        contexts.append(context)
        page = context.new_page()
        page.console_messages = []
        page.on("console", lambda message: page.console_messages.append(message))
        page.goto(f"{live_console.url}{path}")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
        return page

    try:
        yield open_
    finally:
        for context in contexts:
            context.close()


def _row(page, port: int):
    return page.locator("#port-rows tr", has=page.locator(f"a:text-is('{port}')"))


def _assert_no_sideways_scrolling(page, where: str) -> None:
    measured = page.evaluate(CHECKS_JS)
    assert measured["scrollWidth"] <= measured["innerWidth"], where
    assert measured["scrolls"] == [], where
    assert measured["spills"] == [], where


def _set_preference(page, label: str, on: bool) -> None:
    box = page.get_by_label(label)
    if box.is_checked() != on:
        with page.expect_response(lambda r: "/ports/list-preferences/" in r.url):
            box.set_checked(on)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1400, 1280, 390])
def test_it_fits_every_width_with_a_row_open(open_page, listening_child, width, scheme):
    notebook = start_notebook(kernels=2)
    child = listening_child(host="0.0.0.0")
    try:
        page = open_page(width, scheme)
        _row(page, notebook.port).locator("summary").click()
        expect(_row(page, notebook.port).locator(".cmd-full")).to_be_visible()
        _assert_no_sideways_scrolling(page, f"{width} px, {scheme}")
        if width >= 1280:
            # Every column shows, and the table fits its card.
            for column in COLUMNS:
                expect(page.locator(f"thead th.col-{column}")).to_be_visible()
            fits = page.evaluate(
                "() => { const t = document.querySelector('table.port-list');"
                " return t.scrollWidth <= t.parentElement.clientWidth; }"
            )
            assert fits
        else:
            # One card per listener; the table's header row is only its sort links.
            row = _row(page, child.port)
            expect(row).to_have_css("display", "flex")
            expect(page.locator("thead th.col-command")).to_be_hidden()
            expect(row.locator("td.col-process")).to_contain_text("python")
            expect(row.locator(".badge")).to_have_text("all interfaces")
        screenshot(page, f"ports-list-{width}-{scheme}")
    finally:
        notebook.stop()


def test_it_pushes_no_row_a_filtered_page_lacks(open_page, listening_child):
    """Sockets open and close under a search, and the search changes meanwhile: htmx never
    looks for a row the page does not have (htmx:oobErrorNoTarget)."""
    shown = listening_child()
    page = open_page(path=f"/ports/?q={shown.pid}")
    expect(page.locator("#port-rows tr[data-sort]")).to_have_count(1)
    others = [listening_child() for _ in range(3)]
    for other in others:
        other.stop()
    shown.stop()
    expect(_row(page, shown.port)).to_have_count(0, timeout=LIVE)
    # The search changes while sockets come and go.
    page.fill("input[name=q]", "python")
    late = listening_child()
    expect(_row(page, late.port)).to_have_count(1, timeout=LIVE)
    page.fill("input[name=q]", "no-such-process-anywhere")
    expect(page.locator("#port-rows tr.empty-row")).to_have_count(1)
    late.stop()
    page.fill("input[name=q]", "")
    expect(_row(page, late.port)).to_have_count(0, timeout=LIVE)
    texts = [message.text for message in page.console_messages]
    assert not [text for text in texts if "oobErrorNoTarget" in text], texts
    assert not [m.text for m in page.console_messages if m.type == "error"], texts


def test_it_folds_a_burst_of_notices_without_moving_the_table(open_page, listening_child):
    page = open_page()
    table_top = page.locator("#port-table").bounding_box()["y"]
    children = [listening_child() for _ in range(8)]
    summary = page.locator("#live-notices .live-summary")
    expect(summary.locator(".notice-text")).to_have_text(re.compile(r"^\d+ ports changed$"))
    summary.locator("summary").click()
    # Other sockets of a busy machine may fold in too: each of ours is there.
    for child in children:
        line = summary.locator(".summary-list li", has_text=f"port {child.port} opened")
        expect(line).to_have_count(1, timeout=LIVE)
    folded = int(summary.locator(".notice-text").inner_text().split()[0])
    assert folded >= len(children)
    assert page.locator("#live-notices .live-notice:not(.live-summary)").count() <= 5
    expect(summary.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    assert page.locator("#live-notices").evaluate("e => getComputedStyle(e).position") == "fixed"
    assert page.locator("#port-table").bounding_box()["y"] == table_top
    screenshot(page, "ports-list-notices-folded")
    summary.get_by_role("button", name=re.compile(r"^Dismiss: \d+ ports changed$")).click()
    expect(summary).to_have_count(0)
    for child in children:
        child.stop()


def test_it_dismisses_a_notice_and_tells_its_time(open_page, listening_child):
    page = open_page()
    child = listening_child()
    notice = page.locator(".live-notice", has_text=f"port {child.port} opened")
    expect(notice.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"), timeout=LIVE)
    notice.get_by_role("button", name=f"Dismiss: port {child.port} opened").click()
    expect(notice).to_have_count(0)


def test_it_copies_a_pid_and_says_so(open_page, listening_child):
    child = listening_child()
    page = open_page(
        path=f"/ports/?q={child.pid}", permissions=("clipboard-read", "clipboard-write")
    )
    row = _row(page, child.port)
    row.locator("summary").click()
    button = row.get_by_role("button", name="Copy pid")
    button.click()
    expect(row.locator(".copy-status")).to_have_text(f"Copied: {child.pid}")
    expect(row.get_by_role("button", name="Copied ✓")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == str(child.pid)
    row.get_by_role("button", name="Copy command").click()
    assert "sys.argv" in page.evaluate("navigator.clipboard.readText()")


def test_it_keeps_the_sort_when_a_filter_changes(open_page):
    page = open_page()
    page.locator("thead th.col-cpu a").click()
    page.wait_for_url(re.compile(r"sort=-cpu"))
    page.select_option("select[name=proto]", "tcp")
    page.wait_for_url(re.compile(r"proto=tcp"))
    assert "sort=-cpu" in page.url
    expect(page.locator("thead th.col-cpu")).to_have_attribute("aria-sort", "descending")
    page.fill("input[name=q]", "python")
    page.wait_for_url(re.compile(r"q=python"))
    assert "sort=-cpu" in page.url
    assert "proto=tcp" in page.url
    expect(page.locator("thead th.col-cpu")).to_have_attribute("aria-sort", "descending")


def test_it_groups_a_notebook_with_its_kernels_live(open_page):
    notebook = start_notebook(kernels=3)
    page = open_page(path="/ports/?q=python")
    try:
        _set_preference(page, "Group by server", True)
        header = page.locator(f"tr.server-group[id^='server-{notebook.pid}-']")
        expect(header.locator(".group-count")).to_have_text("4 sockets")
        key = header.get_attribute("id")
        for port in notebook.ports:
            expect(_row(page, port)).to_have_attribute("data-group", key)
        # A new kernel arrives under its notebook, not at the table's end.
        port = notebook.add_kernel()
        expect(_row(page, port)).to_have_attribute("data-group", key, timeout=LIVE)
        expect(header.locator(".group-count")).to_have_text("5 sockets")
        groups_in_order = page.evaluate(
            "() => [...document.querySelectorAll('#port-rows tr')].map(r => r.dataset.group)"
        )
        first = groups_in_order.index(key)
        assert groups_in_order[first : first + 6] == [key] * 6  # header and its five rows
        screenshot(page, "ports-list-grouped")
    finally:
        _set_preference(page, "Group by server", False)
        notebook.stop()


def test_it_remembers_hide_system_services_across_reloads(open_page):
    other = listen_as() if os.geteuid() == 0 else None
    page = open_page()
    try:
        if other is not None:
            expect(_row(page, other.port)).to_have_count(1, timeout=LIVE)
        _set_preference(page, "Hide system services", True)
        page.reload()
        expect(page.get_by_label("Hide system services")).to_be_checked()
        expect(page.locator("#port-table")).to_contain_text("hidden")
        if other is not None:
            # nobody's socket is a system account's: hidden, and remembered.
            expect(_row(page, other.port)).to_have_count(0)
        _set_preference(page, "Hide system services", False)
        page.reload()
        expect(page.get_by_label("Hide system services")).not_to_be_checked()
        if other is not None:
            expect(_row(page, other.port)).to_have_count(1)
    finally:
        _set_preference(page, "Hide system services", False)
        if other is not None:
            other.stop()
