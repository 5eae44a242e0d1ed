"""A person's first health check: create it from "Monitor this port", watch it go down live.

Playwright's sync API refuses to start while another sync Playwright (the browser suite's
session fixture) is alive in the same thread, so this scenario drives its own Chromium from a
thread of its own, against a console of its own.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ports.actions import find_free_port
from tests.browser.conftest import CHROMIUM_FLAGS, PASSWORD, chromium_path, screenshot
from tests.conftest import skip_or_fail
from tests.health.servers import ControlledHTTP

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def health_console(tmp_path_factory):
    """`manage.py serve` with its own data directory; yields (url, sign-in link)."""
    port = find_free_port(23000)[0]
    env = {
        **os.environ,
        "CONSOLE_DATA_DIR": str(tmp_path_factory.mktemp("health-console")),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    # As root (a container, CI) serve must be told that this is on purpose.
    root_flag = ["--allow-root"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), *root_flag],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:  # a full pipe would block the server's logging
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=drain, daemon=True).start()
    try:
        link, deadline, seen = "", time.monotonic() + 60, []
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            if match := re.search(r"(http://\S+/login/link/\S+/)", line):
                link = match.group(1)
            if "Application startup complete" in line or line == "":
                break
        assert link and process.poll() is None, "".join(seen[-20:])
        yield f"http://127.0.0.1:{port}", link
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)  # our own child, by pid
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def _in_thread(scenario) -> None:
    failure: list[BaseException] = []

    def run() -> None:
        try:
            scenario()
        except BaseException as error:  # re-raised in the test's thread
            failure.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the browser scenario hung"
    if failure:
        raise failure[0]


def test_it_creates_a_check_and_watches_it_go_down(health_console):
    executable = chromium_path()
    if executable is None:
        skip_or_fail("no Chromium found (make test installs Debian's chromium package)")
    url, link = health_console
    server = ControlledHTTP()
    try:
        _in_thread(lambda: _scenario(executable, url, link, server))
    finally:
        server.stop()


def _scenario(executable: str, url: str, link: str, server: ControlledHTTP) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            errors: list[str] = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.goto(link)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/account/password/")
            page.fill("input[name=new_password1]", PASSWORD)
            page.fill("input[name=new_password2]", PASSWORD)
            page.get_by_role("button", name="Save password").click()
            page.wait_for_url("**/ports/")
            _create_and_watch(page, url, server)
            assert not errors, errors
        finally:
            browser.close()


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
