"""The port page in a real browser: live after Stop the server and while its port opens and closes,
and the port, free-port and projects pages no wider than the window at 1400, 1280 and 390 px,
light and dark, with long command lines, a long project and every form error showing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from ports.free_ports import find_free_port
from tests.browser.conftest import screenshot
from tests.conftest import LISTEN_SCRIPT, Child, spawn_listener

pytestmark = pytest.mark.browser

DEADLINE_MS = 15_000
WIDTHS = (1400, 1280, 390)
THEMES = ("light", "dark")
LONG_ARGUMENTS = [
    "--config=/home/developer/projects/a-project-with-a-long-name/config/development.local.yaml",
    "--access-logfile=/var/log/a-project-with-a-long-name/access-with-a-long-file-name.log",
    "--workers=4",
]
# Off-screen to the right, or a box that scrolls sideways, inside the page's <main>. A visually
# hidden box (a stacked table's header row) is clipped away and does not count.
OVERFLOW_JS = """() => {
  const width = window.innerWidth;
  const all = [...document.querySelectorAll("main *")];
  const clipped = all.filter((el) => getComputedStyle(el).clipPath === "inset(50%)");
  const found = [];
  for (const el of all) {
    if (clipped.some((hidden) => hidden.contains(el))) continue;
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 1) {
      found.push(`${el.localName}.${el.className} ends at ${Math.round(box.right)}`);
    }
    const overflow = getComputedStyle(el).overflowX;
    if ((overflow === "auto" || overflow === "scroll") && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${el.localName}.${el.className} scrolls: ${el.scrollWidth} in ${el.clientWidth}`);
    }
  }
  return {document: document.documentElement.scrollWidth, window: width, found: found.slice(0, 5)};
}"""


@pytest.fixture
def long_listener() -> Iterator[Child]:
    """A listener whose command line is far longer than a phone is wide."""
    process = subprocess.Popen(
        [sys.executable, "-c", LISTEN_SCRIPT, "127.0.0.1", "0", "-", "tcp", *LONG_ARGUMENTS],
        stdout=subprocess.PIPE,
        text=True,
    )
    child = Child(process, int(process.stdout.readline()))
    try:
        yield child
    finally:
        child.stop()


def _open_live(page, url: str) -> None:
    page.goto(url)
    from playwright.sync_api import expect

    expect(page.locator("#live-status")).to_have_text("live", timeout=DEADLINE_MS)


def test_it_updates_the_page_live_after_stopping_its_server(
    live_console, browser, signed_in_state, page, listening_child
):
    from playwright.sync_api import expect

    child = listening_child()
    url = f"{live_console.url}/ports/{child.port}/"
    # A second window on the same port, where nobody clicks: only its socket can change it.
    watcher_context = browser.new_context(storage_state=signed_in_state)
    try:
        watcher = watcher_context.new_page()
        _open_live(watcher, url)
        _open_live(page, url)
        expect(page.locator("#port-badge")).to_have_text("in use")
        expect(page.locator("#port-history")).to_contain_text("still open")

        page.get_by_role("link", name="Stop the server…").click()
        page.locator("#confirm-stop").click()
        expect(page.locator("#terminate-panel .result")).to_contain_text(
            f"port {child.port} is free now", timeout=DEADLINE_MS
        )
        assert child.process.wait(timeout=10) is not None
        for each in (page, watcher):
            expect(each.locator("#port-badge")).to_have_text("free", timeout=DEADLINE_MS)
            expect(each.locator("#explanation h2")).to_have_text("Free", timeout=DEADLINE_MS)
            expect(each.locator("#port-history tbody tr").first).to_have_class(
                "span-closed", timeout=DEADLINE_MS
            )
            expect(each.locator("#port-history")).not_to_contain_text("still open")
            expect(each.locator("#port-holders")).not_to_contain_text(str(child.pid))
        screenshot(page, "port-stopped-live")
        screenshot(watcher, "port-stopped-watcher")
    finally:
        watcher_context.close()


def test_it_shows_a_listener_that_opens_and_closes_while_the_page_is_open(live_console, page):
    from playwright.sync_api import expect

    (port,) = find_free_port(33000)
    _open_live(page, f"{live_console.url}/ports/{port}/")
    expect(page.locator("#port-badge")).to_have_text("free")
    child = spawn_listener(port=port)
    try:
        expect(page.locator("#port-badge")).to_have_text("in use", timeout=DEADLINE_MS)
        expect(page.locator("#port-holders")).to_contain_text(
            f"pid {child.pid}", timeout=DEADLINE_MS
        )
        expect(page.get_by_role("link", name=f"Terminate pid {child.pid}…")).to_be_visible()
        expect(page.locator("#explanation h2")).to_have_text("Why “address already in use”")
        screenshot(page, "port-opened-live")
    finally:
        child.stop()
    expect(page.locator("#port-badge")).to_have_text("free", timeout=DEADLINE_MS)
    expect(page.locator("#port-history tbody tr").first).to_have_class(
        "span-closed", timeout=DEADLINE_MS
    )


def _create_project(page, console_url: str, port: int) -> str:
    name = f"layout-{port}-a-project-name-longer-than-a-phone-is-wide"
    page.goto(f"{console_url}/projects/new/")
    page.fill("input[name=name]", name)
    page.fill("input[name=preferred_port]", str(port))
    page.fill("input[name=fallback_ports]", ", ".join(str(port + n) for n in range(1, 13)))
    page.fill(
        "input[name=working_directory]",
        "/home/developer/projects/a-project-with-a-long-name/services/api-gateway",
    )
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**/projects/{name}/")
    return name


def _layout_screens(page, console_url: str, port: int, project: str):
    """(name, how to get there) for each of this part's pages, in a state that stresses it."""

    def project_errors() -> None:
        page.goto(f"{console_url}/projects/new/")
        page.fill("input[name=name]", "Not A Valid Name!")
        page.fill("input[name=fallback_ports]", "abc, 99999")
        page.get_by_role("button", name="Save").click()
        page.locator(".error-summary").wait_for()

    def import_errors() -> None:
        page.goto(f"{console_url}/projects/import/")
        page.fill("textarea[name=text]", "projects:\n  Bad: {preferred_port: 0}\n  api: {}\n")
        page.get_by_role("button", name="Import").click()
        page.locator("#import-problems").wait_for()

    def stop_plan() -> None:
        page.goto(f"{console_url}/ports/{port}/")
        page.get_by_role("link", name="Stop the server…").click()
        page.locator("#confirm-stop").wait_for()

    return [
        ("port", stop_plan),
        ("free-ports", lambda: page.goto(f"{console_url}/ports/free/?near={port}&count=5")),
        ("free-ports-errors", lambda: page.goto(f"{console_url}/ports/free/?near=x&count=")),
        ("projects", lambda: page.goto(f"{console_url}/projects/")),
        ("project", lambda: page.goto(f"{console_url}/projects/{project}/")),
        ("project-errors", project_errors),
        ("projects-import-errors", import_errors),
    ]


def test_its_pages_fit_every_window_in_both_colour_schemes(
    live_console, browser, signed_in_state, page, long_listener
):
    project = _create_project(page, live_console.url, long_listener.port)
    problems = []
    for theme in THEMES:
        for width in WIDTHS:
            context = browser.new_context(
                viewport={"width": width, "height": 900},
                color_scheme=theme,
                storage_state=signed_in_state,
            )
            try:
                each = context.new_page()
                for name, visit in _layout_screens(
                    each, live_console.url, long_listener.port, project
                ):
                    visit()
                    assert each.evaluate("getComputedStyle(document.body).marginTop") == "0px", (
                        f"{name}: the stylesheet did not load"
                    )
                    measured = each.evaluate(OVERFLOW_JS)
                    if measured["document"] > measured["window"] or measured["found"]:
                        problems.append(f"{name} {width} {theme}: {measured}")
                    screenshot(each, f"layout-{name}-{width}-{theme}")
            finally:
                context.close()
    assert not problems, "\n".join(problems)
