"""A real console (`manage.py serve` in a subprocess) and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ports.free_ports import find_free_port
from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# serve refuses root without --allow-root; CI and these machines run as root.
ROOT_FLAG = ["--allow-root"] if os.geteuid() == 0 else []
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class LiveConsole:
    url: str
    sign_in_link: str
    process: subprocess.Popen
    data_dir: Path | None = None


def console_environment(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "CONSOLE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def chromium_path() -> str | None:
    return (
        os.environ.get("PORTSIDE_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


def start_console(data_dir: Path, port: int) -> LiveConsole:
    """`manage.py serve` as a user runs it; returns once uvicorn has started the app."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), *ROOT_FLAG],
        cwd=ROOT,
        env=console_environment(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: queue.Queue[str] = queue.Queue()

    def drain() -> None:
        # Keep reading for the server's whole life: a full pipe would block its logging.
        for line in process.stdout:
            output.put(line)
        output.put("")

    threading.Thread(target=drain, daemon=True).start()
    link = ""
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = output.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if match := re.search(r"(http://\S+/login/link/\S+/)", line):
            link = match.group(1)
        if "Application startup complete" in line:
            return LiveConsole(f"http://127.0.0.1:{port}", link, process, data_dir)
        if line == "":
            break
    stop_console(process)
    # Say why: a port another test run took meanwhile reads differently from a crash.
    said = "".join(seen[-15:])
    raise AssertionError(
        f"the console did not start within 60 s (exit {process.returncode}):\n{said}"
    )


def manage(console: LiveConsole, *args: str) -> str:
    """`manage.py ARGS` against a running console's data (its SQLite database in WAL mode
    takes a second writer); returns stdout."""
    assert console.data_dir is not None, "this console was not started by start_console"
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=console_environment(console.data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"manage.py {args[0]} failed: {done.stderr[-2000:]}"
    return done.stdout


def stop_console(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)  # our own child, by pid
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def live_console(tmp_path_factory) -> Iterator[LiveConsole]:
    console = start_console(tmp_path_factory.mktemp("console-data"), find_free_port(21000)[0])
    try:
        assert console.sign_in_link, "serve printed no sign-in link"
        yield console
    finally:
        stop_console(console.process)


@contextlib.contextmanager
def launched_chromium():
    """Debian's Chromium under Playwright, closed on exit.

    Playwright's sync API marks the thread's event loop as running between its calls, so an
    asyncio test that runs while it is open fails. Browsers are therefore opened per module
    (and for the one-time sign-in), never for the whole session.
    """
    executable = chromium_path()
    if executable is None:
        skip_or_fail("no Chromium found (make test installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as instance:
        yield instance


PASSWORD = "lantern-harbour-2026"


def sign_in_first_time(page, sign_in_link: str) -> None:
    """What a new user does: open the printed link, sign in, choose a first password."""
    page.goto(sign_in_link)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/account/password/")
    page.fill("input[name=new_password1]", PASSWORD)
    page.fill("input[name=new_password2]", PASSWORD)
    page.get_by_role("button", name="Save password").click()
    page.wait_for_url("**/ports/")


@pytest.fixture(scope="session")
def signed_in_state(live_console) -> dict:
    """One first sign-in for the session (the link works once); pages reuse its cookies."""
    with launched_chromium() as instance:
        context = instance.new_context()
        sign_in_first_time(context.new_page(), live_console.sign_in_link)
        return context.storage_state()


@pytest.fixture
def page(browser, signed_in_state):
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, storage_state=signed_in_state
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
