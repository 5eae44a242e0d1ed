"""The exposure audit: which of this machine's listeners are dangerous to leave reachable.

Every TCP listener bound to all interfaces (0.0.0.0 or ::) is probed through loopback only
(127.0.0.1 or ::1) with short timeouts and bounded concurrency; nothing is ever sent to another
address. A listener bound to one other address is judged from its process and bind alone.
What a probe looks for: a Werkzeug debugger, Django's technical 404 page (DEBUG on), an
`http.server` directory listing, and a cache or database that answers without credentials.
While the console's background services run, `exposure_watch` keeps the findings per listener
and probes each new one as the sampler sees it; otherwise an audit is cached briefly (probing all
takes up to a second or two).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import threading
import time
from dataclasses import asdict, dataclass
from typing import Protocol

from ports import inventory
from ports.inventory.records import ALL_INTERFACES, NETWORK, Listener

PROBE_TIMEOUT_S = 1.0
CONCURRENCY = 16
CACHE_SECONDS = 30
MAX_READ = 65536
DANGER, WARN = "danger", "warn"
BIND_LOOPBACK = "bind it to 127.0.0.1 (or ::1) unless other machines need it"
# The path is ours and unlikely to exist anywhere, so a 404 is the server's own not-found page.
NOT_FOUND_PATH = "/portside-exposure-probe-404"


@dataclass(frozen=True)
class Finding:
    port: int
    proto: str
    address: str
    exposure: str
    pid: int | None
    process: str
    kind: str
    severity: str
    risk: str
    fix: str
    probed: bool

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Audit:
    checked_at: float
    duration_ms: float
    probed: int
    findings: tuple[Finding, ...]

    @property
    def dangers(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == DANGER]

    def on_port(self, port: int) -> list[Finding]:
        return [finding for finding in self.findings if finding.port == port]


HAZARDS = {
    "werkzeug-debugger": (
        "The Werkzeug debugger is reachable: anyone who can connect can run Python code on this "
        "machine (the PIN is not a real barrier).",
        "Turn the debugger off (debug=False, no --debug) and " + BIND_LOOPBACK + ".",
    ),
    "django-debug": (
        "Django runs with DEBUG on: error pages show settings, paths and source to anyone.",
        "Turn debug off (DEBUG = False) and " + BIND_LOOPBACK + ".",
    ),
    "directory-listing": (
        "A directory listing (python -m http.server) serves every file below its folder.",
        "Stop it, or run it as `python -m http.server --bind 127.0.0.1`.",
    ),
    "open-redis": (
        "Redis answers without a password: anyone can read, change or wipe it, and Redis can "
        "be made to write files.",
        "Set requirepass (or ACL users) and bind 127.0.0.1 (protected-mode yes).",
    ),
    "open-memcached": (
        "Memcached answers without authentication: its contents can be read and changed.",
        "Start it with -l 127.0.0.1.",
    ),
    "open-postgres": (
        "PostgreSQL lets the postgres user in without a password (trust authentication).",
        "Use scram-sha-256 in pg_hba.conf and listen_addresses = 'localhost'.",
    ),
    "open-elasticsearch": (
        "Elasticsearch answers without authentication: every index can be read and deleted.",
        "Turn on xpack security and set network.host: 127.0.0.1.",
    ),
}


def _finding(listener: Listener, kind: str, severity: str, risk: str, fix: str, probed: bool):
    process = listener.process
    return Finding(
        port=listener.port,
        proto=listener.proto,
        address=listener.address,
        exposure=listener.exposure,
        pid=listener.pid,
        process=(process.cmdline or process.name) if process else f"uid {listener.uid}",
        kind=kind,
        severity=severity,
        risk=risk,
        fix=fix,
        probed=probed,
    )


async def _exchange(host: str, port: int, payload: bytes, *, wait_for_close: bool = True) -> bytes:
    """Send `payload` to host:port (loopback only) and read the answer, within the timeout."""
    if host not in ("127.0.0.1", "::1"):
        raise ValueError("the exposure audit only ever connects to loopback")
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port), timeout=PROBE_TIMEOUT_S
    )
    try:
        writer.write(payload)
        await writer.drain()
        chunks, size = [], 0
        deadline = asyncio.get_running_loop().time() + PROBE_TIMEOUT_S
        while size < MAX_READ:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                chunk = await asyncio.wait_for(reader.read(8192), timeout=remaining)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if not wait_for_close:
                break
        return b"".join(chunks)
    finally:
        writer.close()
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(writer.wait_closed(), timeout=0.2)


async def _http_get(host: str, port: int, path: str) -> str:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    request = (
        f"GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: portside-exposure-audit\r\n"
        "Accept: text/html,*/*\r\nConnection: close\r\n\r\n"
    ).encode()
    return (await _exchange(host, port, request)).decode("latin-1")


def classify_http(console: str, root: str, missing: str) -> str | None:
    """The hazard shown by three HTTP answers (GET /console, GET /, GET a missing path)."""
    for page in (console, root, missing):
        if "__debugger__" in page and "Werkzeug" in page:
            return "werkzeug-debugger"
    for page in (missing, root):
        if "DEBUG = True" in page or "technical_500" in page or "Using the URLconf" in page:
            return "django-debug"
    if "Directory listing for" in root:
        return "directory-listing"
    if "You Know, for Search" in root:
        return "open-elasticsearch"
    return None


def _postgres_startup() -> bytes:
    params = b"user\x00postgres\x00database\x00postgres\x00\x00"
    return struct.pack("!ii", 8 + len(params), 196608) + params


async def _probe(listener: Listener) -> str | None:
    """The hazard found on one all-interfaces TCP listener, through loopback."""
    host = "::1" if listener.family == "ipv6" else "127.0.0.1"
    port = listener.port
    hint = (listener.service or "").lower()
    # Speak the protocol the service hint names first: an HTTP request sent to Redis is
    # logged there as an attack, and a PING sent to a web server is just a 400.
    if "redis" in hint or port == 6379:
        answer = await _exchange(host, port, b"PING\r\n", wait_for_close=False)
        return "open-redis" if answer.startswith(b"+PONG") else None
    if "memcache" in hint or port == 11211:
        answer = await _exchange(host, port, b"version\r\n", wait_for_close=False)
        return "open-memcached" if answer.startswith(b"VERSION") else None
    if "postgres" in hint or port == 5432:
        answer = await _exchange(host, port, _postgres_startup(), wait_for_close=False)
        # 'R' with code 0 is AuthenticationOk: in without a password.
        return "open-postgres" if answer[:1] == b"R" and answer[5:9] == b"\0\0\0\0" else None
    root = await _http_get(host, port, "/")
    if not root.startswith("HTTP/"):
        return None
    console = await _http_get(host, port, "/console")
    missing = await _http_get(host, port, NOT_FOUND_PATH)
    return classify_http(console, root, missing)


Key = tuple[str, str, str, int, int]  # Listener.key: the socket's identity


def _unprobed(listener: Listener) -> Finding | None:
    """The finding judged from bind and process alone, or None when the listener needs a probe
    (TCP on all interfaces) or is no concern (loopback, the console itself)."""
    if os.getpid() in listener.pids:
        return None  # the console itself: its own posture page covers it
    if listener.exposure == NETWORK:
        return _finding(
            listener,
            "network-bind",
            WARN,
            f"Bound to {listener.address}: reachable from that network (judged from its "
            "bind and process; never probed).",
            BIND_LOOPBACK + ".",
            probed=False,
        )
    if listener.exposure == ALL_INTERFACES and listener.proto != "tcp":
        return _finding(
            listener,
            "reachable",
            WARN,
            "UDP on all interfaces: reachable from every network this machine is on.",
            BIND_LOOPBACK + ".",
            probed=False,
        )
    return None


def needs_probe(listener: Listener) -> bool:
    return (
        listener.exposure == ALL_INTERFACES
        and listener.proto == "tcp"
        and os.getpid() not in listener.pids
    )


async def judge(listeners: list[Listener]) -> tuple[dict[Key, Finding], int]:
    """Findings per listener (by socket identity) and how many sockets were probed.

    Listeners that share a family and port (SO_REUSEPORT, a socket several processes hold) are
    probed once: loopback cannot tell them apart anyway.
    """
    findings: dict[Key, Finding] = {}
    limit = asyncio.Semaphore(CONCURRENCY)
    to_probe: dict[tuple[str, int], list[Listener]] = {}
    for listener in listeners:
        if needs_probe(listener):
            to_probe.setdefault((listener.family, listener.port), []).append(listener)
        elif (finding := _unprobed(listener)) is not None:
            findings[listener.key] = finding

    async def probe(group: list[Listener]) -> None:
        async with limit:
            try:
                kind = await _probe(group[0])
            except (OSError, TimeoutError, ValueError):
                kind = None
        for listener in group:
            if kind is not None:
                risk, fix = HAZARDS[kind]
                findings[listener.key] = _finding(listener, kind, DANGER, risk, fix, probed=True)
            else:
                findings[listener.key] = _finding(
                    listener,
                    "reachable",
                    WARN,
                    "Bound to all interfaces: reachable from every network this machine is on.",
                    BIND_LOOPBACK + ".",
                    probed=True,
                )

    await asyncio.gather(*(probe(group) for group in to_probe.values()))
    return findings, len(to_probe)


def ordered(findings) -> tuple[Finding, ...]:
    """Dangers first, then by port: the order every page and the API show."""
    return tuple(sorted(findings, key=lambda finding: (finding.severity != DANGER, finding.port)))


def run_audit(listeners: list[Listener] | None = None) -> Audit:
    return audit_keyed(listeners)[0]


def audit_keyed(listeners: list[Listener] | None = None) -> tuple[Audit, dict[Key, Finding]]:
    """Probe every listener now: the audit and its findings by socket identity."""
    started = time.perf_counter()
    if listeners is None:
        listeners = list(inventory.snapshot().listeners)
    findings, probed = asyncio.run(judge(listeners))
    audit = Audit(
        checked_at=time.time(),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        probed=probed,
        findings=ordered(findings.values()),
    )
    return audit, findings


class Watching(Protocol):
    """What the live watch (exposure_watch) offers the readers here."""

    def audit(self) -> Audit: ...

    def listeners(self) -> list[Listener]: ...

    def replace(self, audit: Audit, findings: dict[Key, Finding]) -> Audit: ...


_cache_lock = threading.Lock()
_cached: Audit | None = None
_watching: Watching | None = None  # the live watch, while it runs in this process


def watching() -> Watching | None:
    """The live watch running in this process, if any."""
    return _watching


def watch_with(watching: Watching | None) -> None:
    """Called by the live watch as it starts (with itself) and stops (with None)."""
    global _watching
    _watching = watching


def latest(*, refresh: bool = False) -> Audit:
    """The audit: the live watch's when it runs in this process (kept per listener as the
    sampler sees them come and go), else one at most CACHE_SECONDS old. `refresh` probes every
    listener again. One probe run at a time, whoever asks."""
    global _cached
    watching = _watching
    if watching is not None:
        if not refresh:
            return watching.audit()
        with _cache_lock:
            return watching.replace(*audit_keyed(watching.listeners()))
    with _cache_lock:
        if refresh or _cached is None or time.time() - _cached.checked_at > CACHE_SECONDS:
            _cached = run_audit()
        return _cached


def cached() -> Audit | None:
    """The live watch's audit, or the last one if still fresh, without probing (page badges)."""
    watching = _watching
    if watching is not None:
        return watching.audit()
    audit = _cached
    if audit is None or time.time() - audit.checked_at > CACHE_SECONDS:
        return None
    return audit
