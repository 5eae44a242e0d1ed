"""Benchmark of the live path: listen() -> sampler -> websocket -> a script and a browser page.

    .venv/bin/python -m bench.live            # the full run (about 5 minutes)
    .venv/bin/python -m bench.live --quick    # a short smoke run (about a minute)

Starts a real console (`manage.py serve`, as tests/browser/conftest.py does, in a fresh data
dir, sampling every 250 ms), signs in with the printed one-time link in headless Chromium (that
sets the admin's password, which then buys a bearer token), and measures:

(a) listen() -> `port.opened` on /ws/v1/events (bearer, subscribed to that port), and close() ->
    `port.closed`, over 100 opens; each open is a fresh child process on a free loopback port
    that takes `time.time()` right after listen() (and after close()) and prints it;
(b) for the same opens, listen() -> the row in the DOM of the Ports page in headless Chromium: a
    MutationObserver in the page stamps `performance.timeOrigin + performance.now()` when a
    `#port-rows tr` for the port appears (and when it leaves). This includes the htmx swap;
(d) fan-out: 100 concurrent /ws/v1/events clients, each subscribed to the port, several opens;
    listen() -> each client's receipt;
(c) the console process's CPU (user + system time / wall time) while idle, with no clients and
    no churn, first on the bare machine, then with the ~1,000-listener scenario of
    bench/inventory.py running.

Random waits of up to one sampling interval before each open and close spread them over the
sampler's phase, as real servers start at random moments. Same machine, same wall clock:
the child's `time.time()` and Chromium's `timeOrigin + now()` are compared directly.

Every process it starts (the console, listener children, the scenario, Chromium through
Playwright) is ended by its pid or its handle, on success, error or Ctrl-C; listener children
also ask the kernel to kill them if this process dies first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect

# The scenario builder, its child preamble (private: imported, not copied), percentiles and
# machine facts come from the foundation benchmark.
from bench.inventory import _PREAMBLE, Scenario, load_facts
from bench.live_report import LiveResults, render
from ports.free_ports import find_free_port
from tests.browser.conftest import (
    CHROMIUM_FLAGS,
    PASSWORD,
    LiveConsole,
    chromium_path,
    start_console,
    stop_console,
)

INTERVAL_MS = 250  # the console's default sampling interval; set explicitly for the run
EVENT_TIMEOUT_S = 5.0

# argv: parent pid, port. Prints "listening <time.time()>" right after listen() returns, waits
# for a line on stdin, closes the socket and prints "closed <time.time()>"; "busy" if taken.
LISTEN_CHILD = (
    _PREAMBLE
    + """
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    sock.bind(("127.0.0.1", int(sys.argv[2])))
except OSError:
    print("busy", flush=True)
    sys.exit(0)
sock.listen(16)
listened = time.time()
print("listening", repr(listened), flush=True)
sys.stdin.readline()
sock.close()
closed = time.time()
print("closed", repr(closed), flush=True)
"""
)

# Installed in the Ports page once it is live. Stamps, by port: the first time a row for it is
# in #port-rows, the first time it is gone again, and when the websocket message announcing it
# reached the page (htmx:wsBeforeMessage fires before the swap).
PAGE_PROBE = """
() => {
  const now = () => performance.timeOrigin + performance.now();
  const B = (window.__bench = { seen: {}, gone: {}, msg: {}, mixed: {} });
  const present = () => {
    const ports = new Set();
    document.querySelectorAll("#port-rows tr td.num a")
      .forEach((a) => ports.add(a.textContent.trim()));
    return ports;
  };
  let known = present();
  new MutationObserver(() => {
    const t = now();
    const current = present();
    current.forEach((p) => { if (!known.has(p) && !(p in B.seen)) B.seen[p] = t; });
    known.forEach((p) => {
      if (!current.has(p) && p in B.seen && !(p in B.gone)) B.gone[p] = t;
    });
    known = current;
  }).observe(document.getElementById("live-ports"), { childList: true, subtree: true });
  document.addEventListener("htmx:wsBeforeMessage", (event) => {
    const t = now();
    const text = String(event.detail.message);
    for (const m of text.matchAll(/port (\\d+) (opened|closed)/g)) {
      const key = m[1] + ":" + m[2];
      if (key in B.msg) continue;
      B.msg[key] = t;
      // Did the same message also remove a row (a close or an owner change elsewhere)?
      if (m[2] === "opened") B.mixed[m[1]] = text.includes('hx-swap-oob="delete"');
    }
  });
  return { skew_ms: now() - Date.now(), date_now: Date.now() };
}
"""


# -- listener children ---------------------------------------------------------------------------


class Children:
    """Every listener child this run started, so each is ended by its pid whatever happens."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def spawn(self, port: int) -> tuple[asyncio.subprocess.Process, float] | None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            "-c",
            LISTEN_CHILD,
            str(os.getpid()),
            str(port),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self.procs.append(proc)
        line = (await proc.stdout.readline()).decode().split()
        if not line or line[0] != "listening":
            await self.end(proc)
            return None  # someone took the port between our probe and the child's bind
        return proc, float(line[1])

    async def close(self, proc: asyncio.subprocess.Process) -> float:
        """Asks the child to close its socket; returns its time.time() right after close()."""
        proc.stdin.write(b"close\n")
        await proc.stdin.drain()
        line = (await proc.stdout.readline()).decode().split()
        await self.end(proc)
        if not line or line[0] != "closed":
            raise RuntimeError(f"listener child {proc.pid} did not report its close")
        return float(line[1])

    async def end(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), timeout=2)
            except TimeoutError:
                if proc.returncode is None:
                    os.kill(proc.pid, signal.SIGKILL)  # our own child, by pid
                await proc.wait()
        if proc.stdin:
            proc.stdin.close()
        if proc in self.procs:
            self.procs.remove(proc)

    async def end_all(self) -> None:
        for proc in list(self.procs):
            if proc.returncode is None:
                os.kill(proc.pid, signal.SIGKILL)
            await self.end(proc)


class PortPicker:
    """Free loopback ports, walking upward so that no two opens of a run reuse one."""

    def __init__(self, start: int) -> None:
        self.cursor = start

    def next(self) -> int:
        port = find_free_port(self.cursor)[0]
        self.cursor = port + 1
        return port


# -- a /ws/v1/events client ----------------------------------------------------------------------


class EventClient:
    """One bearer-token client of /ws/v1/events; stamps time.time() as each message arrives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.waiting: dict[tuple[str, int | None], asyncio.Future] = {}
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, ws_url: str, token: str) -> EventClient:
        # A script's handshake: bearer header, no Origin.
        ws = await connect(
            f"{ws_url}/ws/v1/events",
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=30,
            max_size=2**22,
        )
        return cls(ws)

    async def _read(self) -> None:
        async for raw in self.ws:
            arrived = time.time()
            message = json.loads(raw)
            listener = message.get("listener") or {}
            future = self.waiting.pop((message.get("type"), listener.get("port")), None)
            if future is not None and not future.done():
                future.set_result((arrived, message))

    def expect(self, kind: str, port: int | None) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting[(kind, port)] = future
        return future

    async def subscribe(self, ports: list[int]) -> None:
        reply = self.expect("subscribed", None)
        await self.ws.send(json.dumps({"subscribe": {"ports": ports}}))
        await asyncio.wait_for(reply, EVENT_TIMEOUT_S)

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


def event_time(message: dict) -> float:
    return datetime.fromisoformat(message["at"]).timestamp()


# -- (a) + (b): opens and closes watched by a script and by the Ports page -----------------------


async def sign_in(browser, console: LiveConsole):
    """The printed one-time link, then a first password: what a new user does."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    await page.goto(console.sign_in_link)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/account/password/")
    await page.fill("input[name=new_password1]", PASSWORD)
    await page.fill("input[name=new_password2]", PASSWORD)
    await page.get_by_role("button", name="Save password").click()
    await page.wait_for_url("**/ports/")
    await page.locator("#live-status[data-state=live]").wait_for(timeout=15_000)
    return context, page


async def get_token(url: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        reply = await http.post(
            "/api/v1/auth/token", json={"username": "admin", "password": PASSWORD}
        )
        reply.raise_for_status()
        return reply.json()["access"]


async def opens_and_closes(
    n: int, client: EventClient, page, children: Children, ports: PortPicker, out: LiveResults
) -> None:
    rng = random.Random(11)
    listened: dict[int, float] = {}
    closed: dict[int, float] = {}
    while out.opens < n:
        port = ports.next()
        await client.subscribe([port])
        opened_event = client.expect("port.opened", port)
        closed_event = client.expect("port.closed", port)
        await asyncio.sleep(rng.uniform(0, INTERVAL_MS / 1000))
        spawned = await children.spawn(port)
        if spawned is None:
            out.busy += 1
            continue
        proc, listened[port] = spawned
        out.opens += 1
        try:
            arrived, message = await asyncio.wait_for(opened_event, EVENT_TIMEOUT_S)
            out.ws_open.append((arrived - listened[port]) * 1000)
            out.detect.append((event_time(message) - listened[port]) * 1000)
            out.deliver.append((arrived - event_time(message)) * 1000)
            out.owner_named += message["listener"].get("pid") == proc.pid
        except TimeoutError:
            out.missing["ws_open"] += 1
        try:
            # Far beyond the target; a row later than this is still stamped by the observer.
            await page.wait_for_function(
                "p => p in window.__bench.seen", arg=str(port), polling=20, timeout=2_000
            )
            shown = True
        except Exception:  # Playwright's TimeoutError
            shown = False
        await asyncio.sleep(rng.uniform(0, INTERVAL_MS / 1000))
        closed[port] = await children.close(proc)
        try:
            arrived, _message = await asyncio.wait_for(closed_event, EVENT_TIMEOUT_S)
            out.ws_close.append((arrived - closed[port]) * 1000)
        except TimeoutError:
            out.missing["ws_close"] += 1
        if shown:
            with contextlib.suppress(Exception):  # counted below
                await page.wait_for_function(
                    "p => p in window.__bench.gone", arg=str(port), polling=20, timeout=2_000
                )
    stamps = await page.evaluate("() => window.__bench")
    for port, t in listened.items():
        seen, message = stamps["seen"].get(str(port)), stamps["msg"].get(f"{port}:opened")
        if seen is not None:
            out.dom_open.append(seen - t * 1000)
        else:
            out.missing["dom_open"] += 1
            out.dom_missing_with_message += message is not None
        if message is not None:
            out.page_msg.append(message - t * 1000)
            if seen is not None:
                out.swap.append(seen - message)
        if stamps["mixed"].get(str(port)):
            out.mixed += 1
            out.mixed_missing += seen is None
    for port, t in closed.items():
        if str(port) not in stamps["seen"]:
            continue  # never shown, so it cannot leave
        if str(port) in stamps["gone"]:
            out.dom_close.append(stamps["gone"][str(port)] - t * 1000)
        else:
            out.missing["dom_close"] += 1


async def page_clock(page) -> dict:
    """How the page's clock compares with time.time() here (same machine, same wall clock)."""
    before = time.time() * 1000
    probe = await page.evaluate(PAGE_PROBE)
    after = time.time() * 1000
    return {
        "origin_minus_date_ms": probe["skew_ms"],
        "date_minus_python_ms": probe["date_now"] - (before + after) / 2,
        "rtt_ms": after - before,
    }


# -- (d) fan-out ---------------------------------------------------------------------------------


async def fan_out(
    ws_url: str,
    token: str,
    clients_wanted: int,
    rounds: int,
    children: Children,
    ports: PortPicker,
    out: LiveResults,
) -> None:
    rng = random.Random(23)
    started = time.monotonic()
    clients = await asyncio.gather(
        *(EventClient.connect(ws_url, token) for _ in range(clients_wanted))
    )
    out.fan_connect_s = time.monotonic() - started
    try:
        while out.fan_rounds < rounds:
            port = ports.next()
            await asyncio.gather(*(c.subscribe([port]) for c in clients))
            waits = [c.expect("port.opened", port) for c in clients]
            closes = [c.expect("port.closed", port) for c in clients]
            await asyncio.sleep(rng.uniform(0, INTERVAL_MS / 1000))
            spawned = await children.spawn(port)
            if spawned is None:
                out.busy += 1
                continue
            proc, listened = spawned
            out.fan_rounds += 1
            done, pending = await asyncio.wait(waits, timeout=10)
            out.fan_missing += len(pending)
            arrivals = [future.result()[0] for future in done]
            out.fan += [(t - listened) * 1000 for t in arrivals]
            if arrivals:
                out.fan_spread.append((max(arrivals) - min(arrivals)) * 1000)
            await children.close(proc)
            await asyncio.wait(closes, timeout=5)  # let the close pass before the next round
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def measure_live(console: LiveConsole, args, children: Children) -> tuple[LiveResults, str]:
    from playwright.async_api import async_playwright

    out = LiveResults()
    ports = PortPicker(24000)
    ws_url = console.url.replace("http://", "ws://")
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_FLAGS
            )
            try:
                out.chromium = browser.version
                context, page = await sign_in(browser, console)
                token = await get_token(console.url)
                out.clock = await page_clock(page)
                client = await EventClient.connect(ws_url, token)
                try:
                    print(f"(a)+(b): {args.opens} opens ...", file=sys.stderr)
                    await opens_and_closes(args.opens, client, page, children, ports, out)
                finally:
                    await client.close()
                    await context.close()
            finally:
                await browser.close()
        print(f"(d): {args.clients} clients x {args.rounds} opens ...", file=sys.stderr)
        await fan_out(ws_url, token, args.clients, args.rounds, children, ports, out)
    finally:
        await children.end_all()
    return out, token


# -- (c) idle CPU of the console process ---------------------------------------------------------


def console_cpu(pid: int, seconds: float, slice_s: float = 10.0) -> tuple[float, list[float]]:
    """% of one core: (user + system) CPU time of the process / wall time, and per slice."""
    process = psutil.Process(pid)
    slices = []
    first = process.cpu_times()
    begun = time.monotonic()
    last, last_at = first, begun
    while time.monotonic() - begun < seconds:
        time.sleep(min(slice_s, seconds - (time.monotonic() - begun)))
        now, now_at = process.cpu_times(), time.monotonic()
        slices.append(100 * (now.user - last.user + now.system - last.system) / (now_at - last_at))
        last, last_at = now, now_at
    total = 100 * (last.user - first.user + last.system - first.system) / (last_at - begun)
    return total, slices


def listeners_seen(url: str, token: str, triples: set = frozenset()) -> tuple[int, int]:
    """(listeners the console lists, how many of them are in `triples`), from GET /ports."""
    reply = httpx.get(
        f"{url}/api/v1/ports",
        params={"limit": 5000},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    reply.raise_for_status()
    body = reply.json()
    ours = sum((i["proto"], i["address"], i["port"]) in triples for i in body["items"])
    return body["count"], ours


def measure_idle(console: LiveConsole, token: str, scenario: Scenario, seconds: float) -> dict:
    pid = console.process.pid
    time.sleep(3)  # the clients of (d) are gone; let the console settle
    bare_count, _ = listeners_seen(console.url, token)
    print(f"(c): idle {seconds:.0f} s without the scenario ...", file=sys.stderr)
    bare, bare_slices = console_cpu(pid, seconds)

    started = time.monotonic()
    scenario.start()  # on the main thread: the children's parent-death signal follows it
    deadline = time.monotonic() + 120
    # Counted by the scenario's own (proto, address, port): other listeners come and go.
    while time.monotonic() < deadline:
        if listeners_seen(console.url, token, scenario.triples)[1] >= len(scenario.triples):
            break
        time.sleep(1)
    time.sleep(5)  # the sampler has diffed, stored and published the scenario's opens
    ready_s = time.monotonic() - started
    facts = load_facts()
    seen, of_scenario = listeners_seen(console.url, token, scenario.triples)
    print(f"(c): scenario ready in {ready_s:.0f} s; idle {seconds:.0f} s ...", file=sys.stderr)
    busy, busy_slices = console_cpu(pid, seconds)
    return {
        "seconds": seconds,
        "bare": bare,
        "bare_slices": bare_slices,
        "bare_count": bare_count,
        "busy": busy,
        "busy_slices": busy_slices,
        "busy_count": seen,
        "of_scenario": of_scenario,
        "facts": facts,
        "ready_s": ready_s,
        "threads": psutil.Process(pid).num_threads(),
    }


# -- the run -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--opens", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10, help="opens seen by all clients in (d)")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("bench.live uses the netlink inventory and /proc: Linux only", file=sys.stderr)
        return 2
    if chromium_path() is None:
        print("bench.live needs Chromium (make browser installs Debian's)", file=sys.stderr)
        return 2
    scenario = Scenario()
    if args.quick:
        args.opens, args.idle_seconds, args.clients, args.rounds = 10, 10.0, 20, 2
        scenario = Scenario(listener_children=10, preforked=2, idle_children=20, connections=500)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ["CONSOLE_SAMPLE_INTERVAL_MS"] = str(INTERVAL_MS)  # the console inherits it
    command = "python -m bench.live" + (" --quick" if args.quick else "")
    load_at_start = os.getloadavg()
    started = time.monotonic()
    children = Children()
    console = None
    with tempfile.TemporaryDirectory(prefix="portside-bench-live-") as data_dir:
        try:
            console = start_console(Path(data_dir), find_free_port(23000)[0])
            live, token = asyncio.run(measure_live(console, args, children))
            idle = measure_idle(console, token, scenario, args.idle_seconds)
        finally:
            scenario.stop()
            for proc in children.procs:  # only if the event loop died before its own cleanup
                if proc.returncode is None:
                    os.kill(proc.pid, signal.SIGKILL)
            if console is not None:
                stop_console(console.process)
    elapsed = time.monotonic() - started
    print(
        render(
            command,
            args,
            scenario,
            live,
            idle,
            load_at_start,
            elapsed,
            interval_ms=INTERVAL_MS,
            event_timeout_s=EVENT_TIMEOUT_S,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
