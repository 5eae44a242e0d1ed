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
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ports.free_ports import find_free_port
from tests.browser.conftest import ARTIFACTS, PASSWORD, ROOT, manage
from tests.conftest import Child, skip_or_fail, spawn_listener, wait_until

pytestmark = pytest.mark.browser

WIDTHS = (1400, 1280, 390)
THEMES = ("light", "dark")
HEIGHT = 900
AXE = ROOT / "tests/fixtures/axe/node_modules/axe-core/axe.min.js"
CHECKS_JS = (Path(__file__).parent / "page_checks.js").read_text()
# Finite animations and transitions running now (a new row's fade), at most 5 s.
SETTLE_JS = """async () => {
  const running = document.getAnimations().filter(
    (animation) => animation.effect && animation.effect.getComputedTiming().endTime !== Infinity,
  );
  const done = Promise.all(running.map((animation) => animation.finished.catch(() => null)));
  await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 5000))]);
}"""
AXE_RUN = "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
BLOCKING = ("serious", "critical")
VIEWER = "quality-viewer"
# A full-page screenshot of a long list is cut here: enough to judge, small enough to keep.
SHOT_HEIGHT = 3000


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
    Screen(
        "port-terminate", "/ports/{exposed_port}/terminate/?pid={pid}&create_time={create_time}"
    ),
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


@dataclass(frozen=True)
class Finding:
    screen: str
    width: int
    theme: str
    kind: str
    what: str
    asserted: bool = True


FINDINGS: list[Finding] = []
RAN: set[tuple[str, int, str]] = set()


MAKE_VIEWER = (
    "from django.contrib.auth import get_user_model\n"
    "from django.contrib.auth.models import Group\n"
    "user = get_user_model().objects.create_user({name!r}, password={password!r})\n"
    "user.groups.add(Group.objects.get_or_create(name='viewer')[0])\n"
)


class _Api:
    """The JSON API as the admin, for seeding; remembers what it made."""

    def __init__(self, console) -> None:
        import httpx

        self.client = httpx.Client(base_url=f"{console.url}/api/v1/", timeout=30)
        answer = self.client.post("auth/token", json={"username": "admin", "password": PASSWORD})
        self.client.headers["Authorization"] = f"Bearer {answer.json()['access']}"
        self.made: list[str] = []

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.client.request(method, path, json=body)
        assert response.status_code < 300, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else {}

    def make(self, path: str, body: dict) -> dict:
        made = self.call("POST", path, body)
        self.made.append(f"{path}/{made.get('id', body['name'])}")
        return made

    def has_history(self, check_id: int) -> bool:
        results = self.call("GET", f"checks/{check_id}/results")["items"]
        return len(results) >= 3 and self.call("GET", f"checks/{check_id}")["state"] != "pending"


def _seed(console, api: _Api, children: list[Child]) -> dict[str, str]:
    """What a busy machine shows: listeners, a project, checks up and down, an alert channel,
    a viewer. Through the API and manage.py, so the pages under test only display it."""
    # The exposed one has the long command line a person would see for a real server.
    children.append(spawn_listener("0.0.0.0"))
    children.append(spawn_listener("127.0.0.1"))
    exposed, local = children
    closed = find_free_port(exposed.port + 1)[0]
    project = {
        "name": "quality-web",
        "preferred_port": local.port,
        "fallback_ports": [closed],
        "service_type": "http",
        "working_directory": "/srv/quality-web",
        "notes": "The site the page quality tests look at.",
    }
    api.make("projects", project)
    hook = {"url": f"http://127.0.0.1:{closed}/hooks/portside"}
    channel = api.make("alerts/channels", {"name": "team hook", "kind": "webhook", "config": hook})
    every_second = {"interval_s": 1, "timeout_s": 0.5}
    up = api.make(
        "checks",
        {
            "name": "Console liveness",
            "service": "portside",
            "type": "http",
            "target": {"url": f"{console.url}/health", "expected_status": [200]},
            "warn_ms": 200,
            **every_second,
        },
    )
    down = api.make(
        "checks",
        {
            "name": "Worker queue",
            "service": "quality-web",
            "type": "tcp",
            "target": {"host": "127.0.0.1", "port": closed},
            "failures_before_down": 1,
            **every_second,
        },
    )
    for check in (up, down):
        # Pages with a history and a state, not "pending".
        assert wait_until(lambda check=check: api.has_history(check["id"]), 30, 0.5), (
            f"check {check['name']} has no history after 30 s"
        )
    manage(console, "shell", "-c", MAKE_VIEWER.format(name=VIEWER, password=PASSWORD))
    # What the Terminate and Stop links of the port's page carry.
    (listener,) = api.call("GET", f"ports/{exposed.port}")["listeners"]
    server = listener["server"] or {"pid": exposed.pid, "create_time": exposed.create_time()}
    return {
        "pid": str(exposed.pid),
        "when": f"{listener['process']['create_time']:.2f}",
        "server_pid": str(server["pid"]),
        "server_create_time": f"{server['create_time']:.2f}",
        "exposed_port": str(exposed.port),
        "free_port": str(closed),
        "project": "quality-web",
        "check": str(up["id"]),
        "down_check": str(down["id"]),
        "channel": str(channel["id"]),
        "used_link": console.sign_in_link.rstrip("/").rsplit("/", 1)[1],
    }


@pytest.fixture(scope="module")
def seed(live_console) -> Iterator[Seed]:
    children: list[Child] = []
    api = _Api(live_console)
    try:
        yield Seed(_seed(live_console, api, children), children)
    finally:
        api.client.close()
        for child in children:
            child.stop()
        # The session's console serves other browser tests next: no checks left running.
        if api.made:
            cleaner = _Api(live_console)
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
        Path(target).write_text(_report(FINDINGS, RAN, time.monotonic() - started))


def _screenshot_folder() -> Path:
    folder = Path(os.environ.get("PORTSIDE_SCREENSHOTS") or ARTIFACTS / "quality")
    folder = folder if folder.is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("screen", SCREENS, ids=lambda screen: screen.name)
def test_it_fits_the_screen_and_passes_axe(
    live_console, seed, pages, axe_source, screen: Screen, width: int, theme: str
):
    RAN.add((screen.name, width, theme))
    page = pages(screen.who, width)
    url = live_console.url + screen.path.format(**seed.values)
    try:
        name = f"{screen.name}-{width}-{theme}"
        look = _look(page, url, screen.ready, width, theme, axe_source, name)
    except Exception as error:  # a page that does not load is a finding too
        FINDINGS.append(Finding(screen.name, width, theme, "error", str(error).splitlines()[0]))
        raise
    problems = _problems(look.measured, look.violations, width)
    if look.status != screen.status:
        problems.insert(0, ("status", f"answered {look.status}, expected {screen.status}"))
    for kind, what in problems:
        FINDINGS.append(Finding(screen.name, width, theme, kind, what))
    for error in look.errors:
        # An error page's own status is what it should answer, not an error.
        if screen.status == 200 or f"status of {screen.status} " not in error:
            FINDINGS.append(
                Finding(screen.name, width, theme, "console error", _same_everywhere(error), False)
            )
    where = f"{screen.name} ({screen.path}) at {width} px, {theme}"
    assert not problems, f"{where}:\n" + "\n".join(f"- {kind}: {what}" for kind, what in problems)


@dataclass
class Look:
    status: int
    measured: dict
    violations: list[dict]
    errors: list[str]


def _look(page, url: str, ready: str, width: int, theme: str, axe_source: str, name: str) -> Look:
    """Open `url` as a person would at that width and theme, let it settle, measure it, run
    axe, save a screenshot."""
    page.set_viewport_size({"width": width, "height": HEIGHT})
    page.emulate_media(color_scheme=theme)
    errors: list[str] = []

    def listener(message) -> None:
        if message.type == "error":
            # "Failed to load resource" names the resource only in its location.
            source = message.location.get("url", "")
            errors.append(
                f"{message.text} ({source})" if "resource" in message.text else message.text
            )

    page.on("console", listener)
    try:
        response = page.goto(url)
        if ready:
            page.wait_for_selector(ready)
        # Fragments that load after the page (hx-trigger="load") are part of what a person sees,
        # and so is the end of a fade: axe judges contrast on the colours of that moment.
        page.wait_for_function("() => !document.querySelector('.htmx-request')")
        page.evaluate(SETTLE_JS)
        measured = page.evaluate(CHECKS_JS)
        page.evaluate(axe_source)
        violations = page.evaluate(AXE_RUN)
        _save_screenshot(page, name)
    finally:
        page.remove_listener("console", listener)
    return Look(response.status if response else 0, measured, violations, errors)


def _save_screenshot(page, name: str) -> None:
    height = min(page.evaluate("document.documentElement.scrollHeight"), SHOT_HEIGHT)
    width = page.viewport_size["width"]
    page.screenshot(
        path=str(_screenshot_folder() / f"{name}.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": width, "height": height},
    )


def _problems(measured: dict, violations: list[dict], width: int) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    # Against the window asked for: a phone zooms out to show a page that is too wide, and
    # its innerWidth grows with it.
    if measured["scrollWidth"] > width:
        zoomed = measured["innerWidth"]
        problems.append(
            (
                "sideways scrolling",
                f"the document is {measured['scrollWidth']} px wide in a {width} px window"
                + (f" (zoomed out to {zoomed} px to show it)" if zoomed > width else ""),
            )
        )
    if measured["bodyClipped"]:
        problems.append(("sideways scrolling", "body clips content wider than itself"))
    for kind, boxes in (("spills", measured["spills"]), ("scrolls sideways", measured["scrolls"])):
        for box in boxes:
            cause = f"; widest inside: {box['cause']}" if box["cause"] else ""
            problems.append(
                (
                    kind,
                    f"{box['selector']} ({box['scrollWidth']} px of content in "
                    f'{box["clientWidth"]} px) "{box["text"]}"{cause}',
                )
            )
    for violation in violations:
        if violation["impact"] not in BLOCKING:
            continue
        targets = [", ".join(node["target"]) for node in violation["nodes"]]
        more = f"; and {len(targets) - 5} more" if len(targets) > 5 else ""
        problems.append(
            (
                f"axe {violation['id']} ({violation['impact']})",
                f"{violation['help']}: {'; '.join(targets[:5])}{more}",
            )
        )
    return problems


def _same_everywhere(message: str) -> str:
    """A CSP report names a fresh nonce on every page: one line for all of them."""
    message = re.sub(r"'nonce-[^']+'", "'nonce-…'", message)
    return re.sub(r"'sha256-[^']+'", "'sha256-…'", message)


def _report(findings: list[Finding], ran: set[tuple[str, int, str]], seconds: float) -> str:
    """The run's failures by page and problem, each with the widths and themes it shows in;
    then the browser console's errors, which are noted but not asserted."""
    failing = {(f.screen, f.width, f.theme) for f in findings if f.asserted}
    by_kind: dict[str, set] = defaultdict(set)
    for finding in findings:
        if finding.asserted:
            kind = finding.kind.split(" (")[0] if finding.kind.startswith("axe") else finding.kind
            by_kind[kind].add((finding.screen, finding.width, finding.theme))
    lines = [
        "# Page quality findings",
        "",
        f"tests/browser/test_page_quality.py, {time.strftime('%Y-%m-%d %H:%M')}, {seconds:.0f} s:"
        f" {len(failing)} of {len(ran)} combinations (page, width, theme) fail.",
        "",
        "| kind | failing combinations |",
        "|---|---|",
        *(f"| {kind} | {len(combos)} |" for kind, combos in sorted(by_kind.items())),
    ]
    lines += _grouped([f for f in findings if f.asserted])
    clean = sorted({screen for screen, _, _ in ran} - {screen for screen, _, _ in failing})
    lines += ["", f"No failure in any combination: {', '.join(clean) or 'none'}."]
    if noted := [f for f in findings if not f.asserted]:
        lines += ["", "# Browser console errors (not asserted)", *_grouped(noted, level="##")]
    return "\n".join(lines) + "\n"


def _grouped(findings: list[Finding], level: str = "##") -> list[str]:
    grouped: dict[str, dict[tuple[str, str], list[str]]] = defaultdict(lambda: defaultdict(list))
    for finding in findings:
        where = f"{finding.width} {finding.theme}"
        grouped[finding.screen][(finding.kind, finding.what)].append(where)
    lines = []
    for screen in SCREENS:
        if screen.name in grouped:
            lines += ["", f"{level} {screen.name} `{screen.path}` ({screen.who})", ""]
            for (kind, what), where in grouped[screen.name].items():
                lines.append(f"- **{kind}** [{', '.join(where)}]: {what}")
    return lines


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
    problems = _problems(measured, [], 390)
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
        _problems(
            {"scrollWidth": 0, "innerWidth": 0, "bodyClipped": False, "spills": [], "scrolls": []},
            violations,
            1400,
        )
    )
    assert problems["axe image-alt (critical)"].endswith(": #logo")
    assert "axe html-has-lang (serious)" in problems
