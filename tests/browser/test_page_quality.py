"""Every page of the console at 1400, 1280 and 390 px, light and dark, on a machine with real data.

Each combination asserts (a) no sideways scrolling: the document is no wider than the window,
no visible box spills its content sideways, and no box scrolls sideways; and (b) axe-core finds
no violation of impact serious or critical. One console, one browser and one page per kind of
visitor serve all of them.

Screenshots go to tests/browser/artifacts/quality/ (git-ignored), or to the folder named by
PORTSIDE_SCREENSHOTS (the README's are refreshed with PORTSIDE_SCREENSHOTS=docs/screenshots).
PORTSIDE_QUALITY_FINDINGS=path writes every failure of the run to that Markdown file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser.conftest import PASSWORD, ROOT
from tests.browser.quality_checks import (
    AXE_RUN,
    CHECKS_JS,
    HEIGHT,
    Finding,
    look_at,
    problems_in,
    report,
    same_everywhere,
)
from tests.browser.quality_seed import VIEWER, SeedApi, seed_console
from tests.conftest import Child, skip_or_fail

pytestmark = pytest.mark.browser

WIDTHS = (1400, 1280, 390)
THEMES = ("light", "dark")
AXE = ROOT / "tests/fixtures/axe/node_modules/axe-core/axe.min.js"


@dataclass(frozen=True)
class Screen:
    """One page of the console: its path (filled from the seed) and who looks at it."""

    name: str
    path: str
    who: str = "admin"  # admin | viewer | anonymous
    status: int = 200
    ready: str = ""  # a selector that shows when the page has drawn itself after loading


SCREENS = (
    Screen("ports", "/ports/"),
    Screen("port", "/ports/{exposed_port}/"),
    Screen("port-terminate", "/ports/{exposed_port}/terminate/?pid={pid}&create_time={when}"),
    Screen(
        "port-stop",
        "/ports/{exposed_port}/stop/?server_pid={server_pid}&server_create_time={server_create_time}",
    ),
    Screen("port-free", "/ports/{free_port}/"),
    Screen("free-ports", "/ports/free/?near=5000&count=5"),
    Screen("projects", "/projects/"),
    Screen("project", "/projects/{project}/"),
    Screen("project-new", "/projects/new/"),
    Screen("project-edit", "/projects/{project}/edit/"),
    Screen("projects-import", "/projects/import/"),
    Screen("checks", "/checks/"),
    Screen("check", "/checks/{check}/"),
    Screen("check-down", "/checks/{down_check}/"),
    Screen("check-new", "/checks/new/"),
    Screen("check-edit", "/checks/{check}/edit/"),
    Screen("checks-import", "/checks/import/"),
    Screen("alerts", "/checks/alerts/"),
    Screen("alert-edit", "/checks/alerts/{channel}/edit/"),
    Screen("security", "/security/"),
    Screen("users", "/users/"),
    Screen("tokens", "/account/tokens/"),
    Screen("audit", "/audit/"),
    Screen("password", "/account/password/"),
    Screen("api-docs", "/api/v1/docs", ready="#swagger-ui .opblock"),
    Screen("ports-viewer", "/ports/", who="viewer"),
    Screen("login", "/login/", who="anonymous"),
    Screen("sign-in-link-used", "/login/link/{used_link}/", who="anonymous", status=410),
    Screen("error-404", "/ports/no-such-page/", status=404),
    Screen("error-403", "/users/", who="viewer", status=403),
    Screen("error-405", "/checks/{check}/run/", status=405),
)
# No URL answers 500 on purpose, so the 500 page is not among them.


@dataclass
class Seed:
    values: dict[str, str]
    children: list[Child]


FINDINGS: list[Finding] = []
RAN: set[tuple[str, int, str]] = set()


@pytest.fixture(scope="module")
def seed(live_console) -> Iterator[Seed]:
    children: list[Child] = []
    api = SeedApi(live_console)
    try:
        yield Seed(seed_console(live_console, api, children), children)
    finally:
        api.client.close()
        for child in children:
            child.stop()
        # The session's console serves other browser tests next: no checks left running.
        if api.made:
            cleaner = SeedApi(live_console)
            for path in reversed(api.made):
                cleaner.call("DELETE", path)
            cleaner.client.close()


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        skip_or_fail("axe-core is not installed (make test runs npm ci in tests/fixtures/axe)")
    return AXE.read_text()


@pytest.fixture(scope="module")
def pages(browser, live_console, signed_in_state, seed) -> Iterator:
    """pages(who, width) -> a Playwright page, one per visitor and kind of screen, reused."""
    contexts = []
    opened: dict[tuple[str, bool], object] = {}

    def get(who: str, width: int):
        phone = width < 600
        if (who, phone) not in opened:
            context = browser.new_context(
                viewport={"width": width, "height": HEIGHT},
                is_mobile=phone,
                has_touch=phone,
                storage_state=signed_in_state if who == "admin" else None,
            )
            contexts.append(context)
            page = context.new_page()
            if who == "viewer":
                page.goto(f"{live_console.url}/login/")
                page.fill("input[name=username]", VIEWER)
                page.fill("input[name=password]", PASSWORD)
                page.locator("input[name=password]").press("Enter")
                page.wait_for_url("**/ports/")
            opened[(who, phone)] = page
        return opened[(who, phone)]

    try:
        yield get
    finally:
        for context in contexts:
            context.close()


@pytest.fixture(scope="module", autouse=True)
def findings_report() -> Iterator[None]:
    started = time.monotonic()
    yield
    if target := os.environ.get("PORTSIDE_QUALITY_FINDINGS"):
        Path(target).write_text(report(FINDINGS, list(SCREENS), RAN, time.monotonic() - started))


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("screen", SCREENS, ids=lambda screen: screen.name)
def test_it_fits_the_screen_and_passes_axe(
    live_console, seed, pages, axe_source, screen: Screen, width: int, theme: str
):
    RAN.add((screen.name, width, theme))
    page = pages(screen.who, width)
    try:
        url = live_console.url + screen.path.format(**seed.values)
        name = f"{screen.name}-{width}-{theme}"
        look = look_at(page, url, screen.ready, width, theme, axe_source, name)
    except Exception as error:  # a page that does not load is a finding too
        said = f"{type(error).__name__}: {error}".splitlines()[0]
        FINDINGS.append(Finding(screen.name, width, theme, "error", said))
        raise
    problems = problems_in(look.measured, look.violations, width)
    if look.status != screen.status:
        problems.insert(0, ("status", f"answered {look.status}, expected {screen.status}"))
    for kind, what in problems:
        FINDINGS.append(Finding(screen.name, width, theme, kind, what))
    for error in look.errors:
        # An error page's own status is what it should answer, not an error.
        if screen.status == 200 or f"status of {screen.status} " not in error:
            FINDINGS.append(
                Finding(screen.name, width, theme, "console error", same_everywhere(error), False)
            )
    where = f"{screen.name} ({screen.path}) at {width} px, {theme}"
    assert not problems, f"{where}:\n" + "\n".join(f"- {kind}: {what}" for kind, what in problems)


def test_it_lists_every_page_of_the_url_configuration():
    """A new page gets a place in SCREENS (or a reason here why it has none)."""
    from django.urls import get_resolver

    not_pages = {
        "health",  # liveness, JSON
        "console:sign-in-link",  # screened as sign-in-link-used
        "console:token-revoke",
        "console:exposure-badge",  # a fragment of the Security page
        "console:user-change",  # POST only: screened as error-405's kind
        "ports:terminate",
        "ports:stop",
        "projects:export",
        "projects:delete",
        "projects:allocate",
        "health:export",
        "health:alert-test",
        "health:alert-delete",
        "health:run",
        "health:pause",
        "health:resume",
        "health:delete",
        "home",
        "favicon",
        "ports:list-preferences",  # POST only
        "console:logout",  # POST only
        "admin-login",
    }
    screened = {json.dumps(screen.path.split("?")[0]) for screen in SCREENS}
    missing = []
    for name, route in _named_routes(get_resolver()):
        if name in not_pages or route.startswith(("api/", "admin/")):
            continue
        shape = "/" + route.replace("<int:port>", "{exposed_port}")
        shape = shape.replace("<slug:name>", "{project}").replace("<int:check_id>", "{check}")
        shape = shape.replace("<int:channel_id>", "{channel}")
        if json.dumps(shape) not in screened:
            missing.append(f"{name} (/{route})")
    assert not missing, f"pages not screened: {missing}"


def _named_routes(resolver, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    for pattern in resolver.url_patterns:
        if hasattr(pattern, "url_patterns"):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _named_routes(pattern, prefix + str(pattern.pattern), inner)
        elif pattern.name:
            yield f"{namespace}{pattern.name}", prefix + str(pattern.pattern)


SAMPLE = """<!doctype html><html lang="en"><head><title>sample</title><style>
  body { margin: 0; width: 400px; }
  .card { width: 200px; }
  .scroller { width: 200px; overflow-x: auto; }
  .cut { width: 200px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
  .wide { width: 600px; }
</style></head><body>
  <div class="card" id="spilled"><code>{word}</code></div>
  <div class="scroller" id="scrolled"><div class="wide">a wide table</div></div>
  <div class="cut">{word}</div>
  <table><thead class="sr"><tr><th>{word}</th></tr></thead></table>
  <p hidden>{word}</p>
</body></html>"""


def test_it_names_spills_and_scrolls_but_not_clipped_or_hidden_text(browser):
    # A phone, which zooms out to show a page wider than itself.
    context = browser.new_context(viewport={"width": 390, "height": 600}, is_mobile=True)
    try:
        page = context.new_page()
        page.set_content(SAMPLE.replace("{word}", "x" * 120))
        measured = page.evaluate(CHECKS_JS)
    finally:
        context.close()
    problems = problems_in(measured, [], 390)
    assert [kind for kind, _ in problems] == ["sideways scrolling", "spills", "scrolls sideways"]
    assert "in a 390 px window" in problems[0][1]
    assert problems[1][1].startswith("div#spilled ")
    assert problems[2][1].startswith("div#scrolled (600 px of content in 200 px)")


def test_it_reports_axe_violations_by_rule_impact_and_target(browser, axe_source):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content('<!doctype html><html><body><img id="logo" src="data:,"></body></html>')
        page.evaluate(axe_source)
        violations = page.evaluate(AXE_RUN)
    finally:
        context.close()
    problems = dict(
        problems_in(
            {"scrollWidth": 0, "innerWidth": 0, "bodyClipped": False, "spills": [], "scrolls": []},
            violations,
            1400,
        )
    )
    assert problems["axe image-alt (critical)"].endswith(": #logo")
    assert "axe html-has-lang (serious)" in problems
