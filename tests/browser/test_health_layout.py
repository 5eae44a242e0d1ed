"""The Health pages at 1400, 1280 and 390 px, light and dark: nothing wider than the window, no
box spilling or scrolling sideways (long names, a long failure reason in the state history), the
channel form showing only the chosen kind's fields. Screenshots: tests/browser/artifacts/health/.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, PASSWORD
from tests.conftest import wait_until

pytestmark = pytest.mark.browser

WIDTHS = (1400, 1280, 390)
THEMES = ("light", "dark")
PAGE_CHECKS = (Path(__file__).parent / "page_checks.js").read_text()
SCREENS = {
    "checks": "/checks/",
    "check": "/checks/{up}/",
    "check-long-reason": "/checks/{long}/",
    "check-edit": "/checks/{up}/edit/",
    "check-new": "/checks/new/",
    "alerts": "/checks/alerts/",
    "alerts-of-check": "/checks/alerts/?check={long}",
    "alert-edit": "/checks/alerts/{channel}/edit/",
    "import": "/checks/import/",
}
# A reason with no space to break at: the "why" column must wrap it inside its card.
LONG_WORD = "ready-" * 40


class _Api:
    def __init__(self, console) -> None:
        import httpx

        self.client = httpx.Client(base_url=f"{console.url}/api/v1/", timeout=30)
        answer = self.client.post("auth/token", json={"username": "admin", "password": PASSWORD})
        self.client.headers["Authorization"] = f"Bearer {answer.json()['access']}"

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.client.request(method, path, json=body)
        assert response.status_code < 300, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json()

    def settled(self, check_id: int) -> bool:
        results = self.call("GET", f"checks/{check_id}/results")["items"]
        return len(results) >= 3 and self.call("GET", f"checks/{check_id}")["state"] != "pending"


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture(scope="module")
def seeded(live_console) -> Iterator[dict[str, int]]:
    """Checks up and down (one with a long name and a long failure), two channels."""
    api = _Api(live_console)
    try:
        channel = api.call(
            "POST",
            "alerts/channels",
            {
                "name": "layout-hook",
                "kind": "webhook",
                "config": {"url": f"http://127.0.0.1:{_closed_port()}/hooks/" + "x" * 80},
            },
        )
        api.call(
            "POST",
            "alerts/channels",
            {
                "name": "layout-slack",
                "kind": "slack",
                "config": {"webhook_url": "https://hooks.slack.com/services/T0/B0/xyz"},
            },
        )
        up = api.call(
            "POST",
            "checks",
            {
                "name": "Layout liveness",
                "service": "layout",
                "type": "http",
                "target": {"url": f"{live_console.url}/health"},
                "interval_s": 1,
                "warn_ms": 200,
                "channels": ["layout-hook"],
            },
        )
        long = api.call(
            "POST",
            "checks",
            {
                "name": "layout-" + "a-check-with-a-really-long-name-" * 3,
                "service": "layout",
                "type": "http",
                "target": {"url": f"{live_console.url}/health", "body_contains": LONG_WORD},
                "interval_s": 1,
                "failures_before_down": 1,
            },
        )
        for check in (up, long):
            assert wait_until(lambda check=check: api.settled(check["id"]), 30, 0.5), (
                f"{check['name']} has no history after 30 s"
            )
        yield {"up": up["id"], "long": long["id"], "channel": channel["id"]}
    finally:
        api.client.close()


@pytest.fixture(scope="module")
def contexts(browser, signed_in_state) -> Iterator:
    opened: dict[tuple[int, str], object] = {}

    def get(width: int, theme: str):
        if (width, theme) not in opened:
            phone = width < 600
            context = browser.new_context(
                viewport={"width": width, "height": 900},
                color_scheme=theme,
                is_mobile=phone,
                has_touch=phone,
                storage_state=signed_in_state,
            )
            opened[(width, theme)] = context.new_page()
        return opened[(width, theme)]

    try:
        yield get
    finally:
        for page in opened.values():
            page.context.close()


def _problems(measured: dict) -> list[str]:
    problems = []
    if measured["scrollWidth"] > measured["innerWidth"]:
        problems.append(f"document {measured['scrollWidth']} px in {measured['innerWidth']} px")
    if measured["bodyClipped"]:
        problems.append("body clips its content")
    for kind in ("spills", "scrolls"):
        problems += [
            f"{kind}: {box['selector']} ({box['scrollWidth']} px in {box['clientWidth']} px; "
            f"{box['cause']})"
            for box in measured[kind]
        ]
    return problems


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("screen", SCREENS)
def test_the_health_pages_fit_the_window(live_console, seeded, contexts, screen, width, theme):
    page = contexts(width, theme)
    page.goto(live_console.url + SCREENS[screen].format(**seeded))
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    measured = page.evaluate(PAGE_CHECKS)
    folder = ARTIFACTS / "health"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{screen}-{width}-{theme}.png"), full_page=True)
    assert _problems(measured) == [], f"{screen} at {width} px, {theme}"


def test_the_long_reason_wraps_inside_the_state_history(live_console, seeded, contexts):
    page = contexts(390, "light")
    page.goto(f"{live_console.url}/checks/{seeded['long']}/")
    why = page.locator("#check-live .history td.why", has_text="ready-ready").first
    card = page.locator("#check-live .columns .card").first
    expect(why).to_be_visible()
    assert why.bounding_box()["x"] + why.bounding_box()["width"] <= (
        card.bounding_box()["x"] + card.bounding_box()["width"]
    )


def test_the_channel_form_shows_only_the_chosen_kinds_fields(live_console, seeded, contexts):
    page = contexts(1280, "light")
    page.goto(f"{live_console.url}/checks/alerts/")
    form = page.locator("form.channel-form")
    expect(form.locator("input[name=url]")).to_be_visible()  # webhook, the first kind
    expect(form.locator("input[name=slack_url]")).to_be_hidden()
    form.locator("select[name=kind]").select_option("slack")
    expect(form.locator("input[name=slack_url]")).to_be_visible()
    expect(form.locator("input[name=slack_channel]")).to_be_visible()
    expect(form.locator("input[name=url]")).to_be_hidden()
    expect(form.locator("input[name=recipients]")).to_be_hidden()
    form.locator("select[name=kind]").select_option("email")
    expect(form.locator("input[name=recipients]")).to_be_visible()
    expect(form.locator("input[name=slack_url]")).to_be_hidden()


def test_the_chart_has_a_value_on_hover_for_every_answered_run(live_console, seeded, contexts):
    page = contexts(1400, "light")
    page.goto(f"{live_console.url}/checks/{seeded['up']}/")
    point = page.locator(".chart-wide .latency-chart g.pt:not(.pt-down)").first
    expect(point.locator("title")).to_have_text(
        re.compile(r"^\d\d:\d\d:\d\d: [\d.]+ ms, (up|degraded)$")
    )
    expect(
        page.locator(".chart-wide .latency-chart text.axis", has_text=" ms").first
    ).to_be_attached()
