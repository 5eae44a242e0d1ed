"""The markdown report of bench/live.py: percentiles, the code measured, and the result table."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.inventory import Timing, machine


@dataclass
class LiveResults:
    ws_open: list[float] = field(default_factory=list)
    ws_close: list[float] = field(default_factory=list)
    dom_open: list[float] = field(default_factory=list)
    dom_close: list[float] = field(default_factory=list)
    detect: list[float] = field(default_factory=list)  # listen() -> the snapshot that saw it
    deliver: list[float] = field(default_factory=list)  # that snapshot -> script's receipt
    page_msg: list[float] = field(default_factory=list)  # listen() -> message in the page
    swap: list[float] = field(default_factory=list)  # message in the page -> row in the DOM
    owner_named: int = 0
    opens: int = 0
    # Opens or closes whose event or DOM change never came (counted as infinitely late).
    missing: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("ws_open", "ws_close", "dom_open", "dom_close"), 0)
    )
    busy: int = 0  # ports taken between our probe and the child's bind (retried)
    dom_missing_with_message: int = 0  # rows never shown although the page got the message
    mixed: int = 0  # opens announced in a message that also removed another row
    mixed_missing: int = 0  # ... of which the row never appeared
    fan: list[float] = field(default_factory=list)
    fan_spread: list[float] = field(default_factory=list)
    fan_rounds: int = 0
    fan_missing: int = 0
    fan_connect_s: float = 0.0
    clock: dict = field(default_factory=dict)
    chromium: str = ""


def stats(samples: list[float], missing: int = 0) -> tuple[str, str, str]:
    """p50, p95, max; what never arrived counts as infinitely late ("never")."""
    values = samples + [math.inf] * missing
    if not values:
        return "-", "-", "-"
    timing = Timing("", values)

    def text(value: float) -> str:
        return "never" if value == math.inf else f"{value:.0f}"

    return text(timing.median), text(timing.p95), text(max(values))


def p95(samples: list[float], missing: int = 0) -> float:
    values = samples + [math.inf] * missing
    return Timing("", values).p95 if values else math.inf


def revision() -> str:
    """The code measured: the commit, and which files differ from it (others edit the tree)."""
    root = Path(__file__).resolve().parents[1]

    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *argv], capture_output=True, text=True, check=False
        ).stdout

    commit = git("rev-parse", "--short", "HEAD").strip()
    if not commit:
        return "not a git checkout"
    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    if not changed:
        return f"commit {commit}, no uncommitted changes"
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return f"commit {commit} plus uncommitted changes in {len(changed)} paths ({shown})"


def render(
    command,
    args,
    scenario,
    live: LiveResults,
    idle: dict,
    load,
    elapsed,
    *,
    interval_ms: int,
    event_timeout_s: float,
) -> str:
    info = machine()
    user = "root" if os.geteuid() == 0 else "a normal user"

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def row(name, samples, missing=0, limit=None) -> str:
        p50_, p95_, max_ = stats(samples, missing)
        n = f"{len(samples)} of {len(samples) + missing}" if missing else str(len(samples))
        target = result = ""
        if limit is not None:
            target = f"p95 <= {limit}"
            result = verdict(p95(samples, missing) <= limit)
        if missing:
            result += f" ({missing} never arrived)"
        return f"| {name} | {n} | {p50_} | {p95_} | {max_} | {target} | {result} |"

    fan_n = args.clients
    lines = [
        f"Command: `.venv/bin/{command}` (run from the repository root, as {user}), "
        f"{time.strftime('%Y-%m-%d')}; whole run {elapsed / 60:.1f} min.",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Linux {info['kernel']} "
        f"(`uname -r`), Python {platform.python_version()}, psutil {info['psutil']}, "
        f"Chromium {live.chromium} (headless, Playwright); load average at start "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (shared machine).",
        "",
        f"Code: {revision()}.",
        "",
        f"Console: `manage.py serve` on 127.0.0.1 in a fresh data dir (SQLite), "
        f"CONSOLE_SAMPLE_INTERVAL_MS={interval_ms} (the default), in-memory channel layer.",
        "",
        "| latency, ms | n | p50 | p95 | max | target | result |",
        "|---|---:|---:|---:|---:|---|---|",
        row(
            "(a) listen() -> `port.opened` on /ws/v1/events",
            live.ws_open,
            live.missing["ws_open"],
            400,
        ),
        row(
            "(a) close() -> `port.closed` on /ws/v1/events", live.ws_close, live.missing["ws_close"]
        ),
        row(
            "(b) listen() -> row in the Ports page DOM (incl. htmx swap)",
            live.dom_open,
            live.missing["dom_open"],
            400,
        ),
        row("(b) close() -> row gone from the DOM", live.dom_close, live.missing["dom_close"]),
        row(
            f"(d) listen() -> `port.opened` at each of {fan_n} clients ({live.fan_rounds} opens)",
            live.fan,
            live.fan_missing,
            1000,
        ),
        "",
        "Where the time goes (ms, p50 / p95 / max):",
        "",
        "- (a) listen() -> the snapshot that saw it (the event's `at`): "
        + " / ".join(stats(live.detect))
        + "; that snapshot -> the script's receipt: "
        + " / ".join(stats(live.deliver))
        + ".",
        "- (b) listen() -> the websocket message reaching the page: "
        + " / ".join(stats(live.page_msg))
        + "; that message -> the row in the DOM (htmx parse and out-of-band swap): "
        + " / ".join(stats(live.swap))
        + ".",
        f"- (d) {fan_n} clients connected in {live.fan_connect_s:.1f} s; first -> last "
        f"receipt of one event across the clients: " + " / ".join(stats(live.fan_spread)) + ".",
        "",
        f"- {live.opens} opens, one fresh child process each; the first `port.opened` already "
        f"named the child's pid in {live.owner_named} of {len(live.ws_open)}.",
        f"- Never arrived (counted as infinitely late above): `port.opened` "
        f"{live.missing['ws_open']}, `port.closed` {live.missing['ws_close']} (within "
        f"{event_timeout_s:.0f} s); rows never shown {live.missing['dom_open']} (the page had "
        f"received the websocket message announcing {live.dom_missing_with_message} of them); "
        f"shown rows never removed {live.missing['dom_close']}; fan-out receipts "
        f"{live.fan_missing}. Ports taken between probe and bind (retried): {live.busy}.",
        f"- {live.mixed} of the {live.opens} opens were announced in a message that also "
        f"removed another row (a close or owner change elsewhere on the machine in the same "
        f'sample: a `<tr hx-swap-oob="delete">` before the `<tbody hx-swap-oob="beforeend:'
        f'#port-rows">`); in {live.mixed_missing} of those the row never appeared.',
        f"- Clocks: page `timeOrigin + now()` - `Date.now()` = "
        f"{live.clock['origin_minus_date_ms']:.1f} ms; `Date.now()` - Python `time.time()` = "
        f"{live.clock['date_minus_python_ms']:.1f} ms (+/- {live.clock['rtt_ms'] / 2:.1f} ms).",
        "",
        "| (c) console CPU while idle (no clients, no churn) | listeners seen | seconds | "
        "% of one core | per 10 s | target | result |",
        "|---|---:|---:|---:|---|---|---|",
        f"| without the scenario | {idle['bare_count']} | {idle['seconds']:.0f} | "
        f"{idle['bare']:.2f} | {', '.join(f'{s:.1f}' for s in idle['bare_slices'])} | "
        f"<= 2% | {verdict(idle['bare'] <= 2)} |",
        f"| with the scenario of bench/inventory.py | {idle['busy_count']} "
        f"({idle['of_scenario']} of the scenario's) | "
        f"{idle['seconds']:.0f} | {idle['busy']:.2f} | "
        f"{', '.join(f'{s:.1f}' for s in idle['busy_slices'])} | <= 2% | "
        f"{verdict(idle['busy'] <= 2)} |",
        "",
        f"Scenario: {len(scenario.triples)} listeners in {scenario.listener_children} processes "
        f"({scenario.preforked} pre-fork servers sharing every socket with a worker), "
        f"{scenario.idle_children} idle processes holding {scenario.established} established "
        f"loopback connections, ready (all its listeners listed by the console, plus 5 s) "
        f"{idle['ready_s']:.0f} s after its start; whole machine: "
        f"{idle['facts']['processes']} processes, "
        f"{idle['facts']['open_fds']} open fds, {idle['facts']['tcp_rows']} TCP sockets. "
        f"CPU = (user + system) time of the `manage.py serve` process, all "
        f"{idle['threads']} of its threads, / wall time.",
    ]
    return "\n".join(lines)
