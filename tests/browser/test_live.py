"""The Ports page is live: rows appear and leave without a reload, and survive a server restart."""

from __future__ import annotations

import pytest

from ports.free_ports import find_free_port
from tests.browser.conftest import (
    screenshot,
    sign_in_first_time,
    start_console,
    stop_console,
)

pytestmark = pytest.mark.browser


def _row(page, port: int):
    return page.locator("#port-rows tr", has=page.locator(f"a:text-is('{port}')"))


def test_it_shows_a_new_socket_without_reload_and_removes_it(live_console, page, listening_child):
    page.goto(f"{live_console.url}/ports/")
    page.locator("#live-status[data-state=live]").wait_for(timeout=10_000)
    marker = page.evaluate("() => (window.__portsideMarker = Math.random())")

    child = listening_child(host="0.0.0.0")
    row = _row(page, child.port)
    row.wait_for(timeout=5_000)
    assert "just-opened" in row.get_attribute("class")
    assert "all interfaces" in row.inner_text()
    rows = page.locator("#port-rows tr[data-sort]").count()
    assert page.locator("#shown-count").inner_text() == str(rows)
    notice = page.locator(".live-notice", has_text=f"port {child.port} opened by python")
    assert f"(pid {child.pid})" in notice.inner_text()
    screenshot(page, "live-row-opened")

    child.stop()
    row.wait_for(state="detached", timeout=5_000)
    assert page.locator(".live-notice", has_text=f"port {child.port} closed").count() == 1
    # Same page object all along: nothing reloaded it.
    assert page.evaluate("() => window.__portsideMarker") == marker


def test_it_pushes_only_rows_that_match_the_search(live_console, page, listening_child):
    page.goto(f"{live_console.url}/ports/?q=no-such-process-anywhere")
    page.locator("#live-status[data-state=live]").wait_for(timeout=10_000)
    child = listening_child()
    page.wait_for_timeout(1_000)  # several sampler ticks: a wrong push would have arrived
    assert _row(page, child.port).count() == 0


def test_it_reconnects_after_the_server_restarts(browser, tmp_path, listening_child):
    port = find_free_port(22000)[0]
    console = start_console(tmp_path, port)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        sign_in_first_time(page, console.sign_in_link)
        status = page.locator("#live-status")
        page.locator("#live-status[data-state=live]").wait_for(timeout=10_000)

        stop_console(console.process)
        page.locator("#live-status[data-state=reconnecting]").wait_for(timeout=10_000)
        screenshot(page, "live-reconnecting")
        console = start_console(tmp_path, port)
        page.locator("#live-status[data-state=live]").wait_for(timeout=20_000)
        assert status.inner_text() == "live"

        # The socket after the restart carries events again, filtered as before.
        child = listening_child()
        _row(page, child.port).wait_for(timeout=5_000)
    finally:
        context.close()
        stop_console(console.process)


FORK_ON_ENTER = (
    "import os, socket, sys, time\n"
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
    "print(s.getsockname()[1], flush=True)\n"
    "sys.stdin.readline()\n"
    "child = os.fork()\n"
    "if child == 0:\n"
    "    time.sleep(3600)\n"
    "print(child, flush=True)\n"
    "time.sleep(3600)\n"
)


def test_it_keeps_the_row_when_its_owner_changes(live_console, page):
    """An owner change removes the old row and inserts the new one in the same push."""
    import os
    import signal
    import subprocess
    import sys

    parent = subprocess.Popen(
        [sys.executable, "-c", FORK_ON_ENTER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    child_pid = None
    try:
        port = int(parent.stdout.readline())
        page.goto(f"{live_console.url}/ports/")
        page.locator("#live-status[data-state=live]").wait_for(timeout=10_000)
        row = _row(page, port)
        row.wait_for(timeout=5_000)
        parent.stdin.write("\n")
        parent.stdin.flush()
        child_pid = int(parent.stdout.readline())
        # The new row lists both holders: the pushed insert survived the delete before it.
        page.locator(f"#port-rows tr:has-text('{child_pid}')").wait_for(timeout=5_000)
        assert row.count() == 1 and str(parent.pid) in row.inner_text()
    finally:
        for pid in (child_pid, parent.pid):  # only our own processes, by pid
            if pid:
                os.kill(pid, signal.SIGKILL)
        parent.wait()  # the forked child is the parent's to reap; init adopts it once killed
