"""How the page quality tests judge a page: sideways scrolling and spilled text measured in the
page (page_checks.js), axe-core's serious and critical violations, and the findings report."""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tests.browser.conftest import ARTIFACTS, ROOT

HEIGHT = 900
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
# A full-page screenshot of a long list is cut here: enough to judge, small enough to keep.
# The README's pictures take the first screenful (PORTSIDE_SCREENSHOT_HEIGHT=900).
SHOT_HEIGHT = int(os.environ.get("PORTSIDE_SCREENSHOT_HEIGHT") or 3000)


@dataclass(frozen=True)
class Finding:
    screen: str
    width: int
    theme: str
    kind: str
    what: str
    asserted: bool = True


def screenshot_folder() -> Path:
    folder = Path(os.environ.get("PORTSIDE_SCREENSHOTS") or ARTIFACTS / "quality")
    folder = folder if folder.is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Look:
    status: int
    measured: dict
    violations: list[dict]
    errors: list[str]


def look_at(page, url: str, ready: str, width: int, theme: str, axe_source: str, name: str) -> Look:
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
        save_screenshot(page, name)
    finally:
        page.remove_listener("console", listener)
    return Look(response.status if response else 0, measured, violations, errors)


def save_screenshot(page, name: str) -> None:
    height = min(page.evaluate("document.documentElement.scrollHeight"), SHOT_HEIGHT)
    width = page.viewport_size["width"]
    page.screenshot(
        path=str(screenshot_folder() / f"{name}.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": width, "height": height},
    )


def problems_in(measured: dict, violations: list[dict], width: int) -> list[tuple[str, str]]:
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


def same_everywhere(message: str) -> str:
    """A CSP report names a fresh nonce on every page: one line for all of them."""
    message = re.sub(r"'nonce-[^']+'", "'nonce-…'", message)
    return re.sub(r"'sha256-[^']+'", "'sha256-…'", message)


def report(
    findings: list[Finding], screens: list, ran: set[tuple[str, int, str]], seconds: float
) -> str:
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
    lines += _grouped([f for f in findings if f.asserted], screens)
    clean = sorted({screen for screen, _, _ in ran} - {screen for screen, _, _ in failing})
    lines += ["", f"No failure in any combination: {', '.join(clean) or 'none'}."]
    if noted := [f for f in findings if not f.asserted]:
        lines += ["", "# Browser console errors (not asserted)", *_grouped(noted, screens)]
    return "\n".join(lines) + "\n"


def _grouped(findings: list[Finding], screens: list) -> list[str]:
    """Screens in the order listed: `name`, `path` and `who` of each."""
    grouped: dict[str, dict[tuple[str, str], list[str]]] = defaultdict(lambda: defaultdict(list))
    for finding in findings:
        where = f"{finding.width} {finding.theme}"
        grouped[finding.screen][(finding.kind, finding.what)].append(where)
    lines = []
    for screen in screens:
        if screen.name in grouped:
            lines += ["", f"## {screen.name} `{screen.path}` ({screen.who})", ""]
            for (kind, what), where in grouped[screen.name].items():
                lines.append(f"- **{kind}** [{', '.join(where)}]: {what}")
    return lines
