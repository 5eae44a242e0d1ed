"""Why is this port busy? "Address already in use", explained in plain words, with the fix.

Pure: give it a snapshot (and, for tests, how to count TIME_WAIT connections); no Django. The
caller passes the ports the project registry reserves, so the free port it names instead is one
no project claims.

`free` is what a plain server started now would get: bind() without SO_REUSEADDR on the wildcard
and loopback (ports.inventory.binding). Which servers set SO_REUSEADDR, read from their source and
checked by starting each on a port a SO_REUSEADDR server left in TIME_WAIT (Linux 6.18):
gunicorn (gunicorn/sock.py, always), uvicorn (asyncio's and uvloop's create_server default to it
on Unix; its own bind_socket for --reload and --workers), Node's libuv (every TCP bind on Unix),
Werkzeug/Flask (BaseWSGIServer.allow_reuse_address), Django's runserver (basehttp.WSGIServer
defaults allow_reuse_address=True, and socketserver.TCPServer.server_bind then sets it; only the
test LiveServerThread passes False) and python -m http.server (HTTPServer.allow_reuse_address).
A plain socket.bind() does not. All of them failed when the TIME_WAIT came from a server without it.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import psutil

from ports.inventory import binding
from ports.inventory.records import Listener, Server, Snapshot

# Services whose process is normally adopted by init: an orphan of these is no accident.
SYSTEM_SERVICES = (
    "PostgreSQL",
    "MySQL",
    "MariaDB",
    "Redis",
    "RabbitMQ",
    "MQTT",
    "NATS",
    "SSH",
    "DNS",
    "Erlang",
    "memcached",
    "MongoDB",
    "Elasticsearch",
)

FREE, HELD, INHERITED, TIME_WAIT, BUSY = "free", "held", "inherited", "time-wait", "busy"

# TCP_TIMEWAIT_LEN: fixed in the kernel, no sysctl changes it (tcp_fin_timeout is FIN_WAIT2's).
TIME_WAIT_SECONDS = 60
REUSE_ADDRESS_SERVERS = (
    "gunicorn, uvicorn, Node (so Vite), Werkzeug/Flask, Django's runserver and "
    "python -m http.server"
)


class Opener(NamedTuple):
    """The process that held a socket when it was first seen (the sampler's history knows it)."""

    pid: int
    name: str


class TimeWait(NamedTuple):
    """The closed connections in TIME_WAIT on one local port."""

    connections: int
    seconds_left: float | None  # until the last one goes; None when the backend cannot say

    def left(self) -> str:
        """How long until the last one goes: "42 s", or "up to 60 s" when not known."""
        if self.seconds_left is None:
            return f"up to {TIME_WAIT_SECONDS} s"
        return f"{max(1, round(self.seconds_left))} s"

    def describe(self) -> str:
        plural = "s" if self.connections != 1 else ""
        return f"{self.connections} closed connection{plural} in TIME_WAIT for {self.left()} more"


NO_TIME_WAIT = TimeWait(0, None)

ProjectOf = Callable[[Listener], str | None]
ServerOf = Callable[[Listener], Server | None]
OpenerOf = Callable[[Listener], Opener | None]


@dataclass
class Explanation:
    kind: str  # free | held | inherited | time-wait | busy
    summary: str  # one sentence on why
    fix: str  # what to do about it
    holders: list[Listener] = field(default_factory=list)
    time_wait: int = 0
    free: bool = False  # a plain server started now would bind it (TCP)
    alternative: int | None = None  # a port to use instead: free, and no project reserves it

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "fix": self.fix,
            "time_wait_connections": self.time_wait,
            "alternative_port": self.alternative,
        }


def endpoint(address: str, port: int) -> str:
    """address:port as a URL writes it: IPv6 in brackets ([::1]:8005)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def time_wait_by_port() -> dict[int, TimeWait]:
    """Local port -> its TIME_WAIT connections, from one dump of the whole table."""
    found: dict[int, TimeWait] = {}
    try:
        from ports.inventory import sockdiag

        for row in sockdiag.time_wait_sockets():
            seen = found.get(row.port, NO_TIME_WAIT)
            left = max(seen.seconds_left or 0.0, row.expires_ms / 1000)
            found[row.port] = TimeWait(seen.connections + 1, left)
        return found
    except (OSError, AttributeError):
        # No sock_diag here (another OS, a locked-down sandbox): psutil sees the same table,
        # without the time left.
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.status == psutil.CONN_TIME_WAIT:
                seen = found.get(conn.laddr.port, NO_TIME_WAIT)
                found[conn.laddr.port] = TimeWait(seen.connections + 1, None)
        return found


def time_wait_on(port: int) -> TimeWait:
    return time_wait_by_port().get(port, NO_TIME_WAIT)


def explain_port(
    port: int,
    snapshot: Snapshot,
    *,
    project_of: ProjectOf = lambda listener: None,
    time_wait: Callable[[int], TimeWait] = time_wait_on,
    parent_alive: Callable[[int], bool] = psutil.pid_exists,
    opener_of: OpenerOf = lambda listener: None,
    reserved: Mapping[int, str] | None = None,
    server_of: ServerOf = lambda listener: None,
) -> Explanation:
    """`opener_of` names the process that held this very socket when it was first seen (from
    the sampler's history); it is how an inherited socket is told from one opened in place.
    `reserved` (port -> project) are the registry's ports, never offered as the alternative;
    None when the caller has no registry at hand. `server_of` names a listener's server and its
    manager, so the fix says how to stop it for good (`systemctl stop ...`, Ctrl-C, Stop)."""
    instead = _Alternative(port, reserved)
    tcp = [listener for listener in snapshot.on_port(port) if listener.proto == "tcp"]
    if tcp:
        explanation = _explain_holders(
            port, tcp, project_of, parent_alive, opener_of, instead, server_of
        )
        explanation.alternative = instead.port
        return explanation
    code = binding.server_bind_errno(port)
    if code == errno.EADDRINUSE:
        waiting = time_wait(port)
        if waiting.connections:
            return _explain_time_wait(port, waiting, instead)
        return Explanation(
            BUSY,
            f"Nothing listens on port {port} and no connection is in TIME_WAIT, yet bind() "
            "fails with 'address already in use': a socket is bound to it without listening "
            "(a server still starting, or one that never called listen()), or outgoing "
            "connections use it as their local port.",
            f"{instead.sentence()} A server of yours that is starting on it shows up here once "
            "it listens.",
            alternative=instead.port,
        )
    udp = [listener for listener in snapshot.on_port(port) if listener.proto == "udp"]
    if udp:
        return _explain_udp(port, udp, server_of)
    if code == errno.EACCES:
        return Explanation(
            FREE,
            f"Nothing listens on port {port}, but ports below "
            f"{binding.FIRST_UNPRIVILEGED_PORT} need root or CAP_NET_BIND_SERVICE to bind.",
            f"Start the server with that right, or {instead.sentence(lower=True)}",
            free=True,
            alternative=instead.port,
        )
    if code:
        return Explanation(
            BUSY,
            f"bind() on port {port} fails: {os.strerror(code)}.",
            instead.sentence(),
            alternative=instead.port,
        )
    return Explanation(
        FREE,
        f"Port {port} is free: a server started now binds it (bind() without SO_REUSEADDR "
        "succeeds on the wildcard and on loopback), and no connection lingers.",
        "Start your server on it.",
        free=True,
    )


class _Alternative:
    """The port to suggest instead, looked up once and only when a text needs it."""

    def __init__(self, port: int, reserved: Mapping[int, str] | None) -> None:
        self._after = port
        self._reserved = reserved
        self._port: int | None = None
        self._looked = False

    @property
    def port(self) -> int | None:
        if not self._looked:
            self._looked = True
            self._port = binding.first_bindable(self._after + 1, skip=self._reserved or {})
        return self._port

    def sentence(self, *, lower: bool = False) -> str:
        port = self.port
        if port is None:
            text = "Pick another port: none above this one is free."
        elif self._reserved is None:
            text = f"Use port {port} instead: it is free."
        else:
            text = f"Use port {port} instead: it is free and no project reserves it."
        return text[0].lower() + text[1:] if lower else text


def _explain_time_wait(port: int, waiting: TimeWait, instead: _Alternative) -> Explanation:
    plural = "s" if waiting.connections != 1 else ""
    left = waiting.left()
    summary = (
        f"Nothing listens on port {port}; only {waiting.connections} closed connection{plural} "
        f"in TIME_WAIT remain{'' if plural else 's'}, the last for {left} more (TIME_WAIT lasts "
        f"{TIME_WAIT_SECONDS} s on Linux). Until then a bind() without SO_REUSEADDR fails with "
        "'address already in use'."
    )
    if binding.server_bind_errno(port, reuse_address=True) == 0:
        fix = (
            "Nothing to kill. A server that sets SO_REUSEADDR binds it right now (as "
            f"{REUSE_ADDRESS_SERVERS} do); any other server: wait {left}, or "
            f"{instead.sentence(lower=True)}"
        )
    else:
        summary += (
            " The server that left them did not set SO_REUSEADDR, so even servers that set it "
            "cannot bind the port before they are gone."
        )
        fix = (
            f"Nothing to kill: the kernel drops them by itself. Wait {left} (not even "
            f"{REUSE_ADDRESS_SERVERS}, which set SO_REUSEADDR, can bind it sooner), or "
            f"{instead.sentence(lower=True)}"
        )
    return Explanation(
        TIME_WAIT, summary, fix, time_wait=waiting.connections, alternative=instead.port
    )


def _explain_udp(port: int, udp: list[Listener], server_of: ServerOf) -> Explanation:
    who = _who(udp[0])
    where = _where(port, udp)
    return Explanation(
        HELD,
        f"Only UDP uses port {port}: {who} on {where}. A TCP server can bind the port; a UDP "
        f"server cannot.{_stack_note(port, udp)}",
        f"Nothing to do for a TCP server. For a UDP server, {_how_to_stop(udp[0], server_of)}, "
        "or give it another port.",
        udp,
        free=True,
    )


def _explain_holders(
    port: int,
    holders: list[Listener],
    project_of: ProjectOf,
    parent_alive: Callable[[int], bool],
    opener_of: OpenerOf,
    instead: _Alternative,
    server_of: ServerOf,
) -> Explanation:
    listener = holders[0]
    process = listener.process
    where = f"on {_where(port, holders)}"
    stack = _stack_note(port, holders)
    if process is None:
        return Explanation(
            HELD,
            f"Port {port} is held {where} by a process of uid {listener.uid} that this console "
            f"cannot see (another user's, or outside this process namespace).{stack}",
            "Run the console as that user (or root) to see and stop it, or "
            f"{instead.sentence(lower=True)}",
            holders,
        )
    who = _who(listener)
    project = project_of(listener)
    owner = f" of project {project}" if project else ""
    opener = opener_of(listener)
    terminate = f"Terminate pid {process.pid}: the port frees when the last holder exits."
    if opener is not None and opener.pid not in listener.pids and not parent_alive(opener.pid):
        return Explanation(
            INHERITED,
            f"Port {port} is held by {who}{owner} {where}, which inherited the listening socket: "
            f"{opener.name} (pid {opener.pid}) opened it and has exited, but its child kept the "
            f"socket open (a reloader child, a forked worker, a shell job).{stack}",
            terminate,
            holders,
        )
    if opener is None and _looks_inherited(listener, parent_alive):
        return Explanation(
            INHERITED,
            f"Port {port} is held by {who}{owner} {where}, whose parent has exited: it most "
            "likely inherited the listening socket from the server that started it (a reloader "
            f"child, a forked worker, a shell job).{stack}",
            terminate,
            holders,
        )
    shared = (
        f", shared with pids {', '.join(map(str, listener.pids[1:]))}"
        if len(listener.pids) > 1
        else ""
    )
    return Explanation(
        HELD,
        f"Port {port} is held by {who}{owner}{shared} {where}: {process.cmdline}"
        + (f".{stack}" if stack else ""),
        f"{_sentence(_how_to_stop(listener, server_of))}, or {instead.sentence(lower=True)}",
        holders,
    )


def _how_to_stop(listener: Listener, server_of: ServerOf) -> str:
    """How to stop what holds the socket for good: its manager's way, else the whole server."""
    server = server_of(listener)
    if server is None:
        return f"stop {_who(listener)} (Stop the server below, or Ctrl-C in its terminal)"
    manager = server.manager
    named = f"{server.kind} (pid {server.pid})"
    if manager is not None and manager.restarts:
        how = f"`{manager.stop_command}`" if manager.stop_command else f"its {manager.kind}"
        return f"stop {named} through {manager.kind}, which would restart it: {how}"
    count = len(server.pids)
    processes = f"{count} process{'es' if count > 1 else ''}"
    if manager is not None and manager.kind == "terminal":
        return f"stop {named}: Stop the server below ({processes}), or Ctrl-C in its terminal"
    return f"stop {named}: Stop the server below ({processes})"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _who(listener: Listener) -> str:
    if listener.process is None:
        return f"a process of uid {listener.uid} that this console cannot see"
    return f"{listener.process.name} (pid {listener.process.pid})"


def _where(port: int, listeners: list[Listener]) -> str:
    addresses = dict.fromkeys(listener.address for listener in listeners)
    return " and ".join(endpoint(address, port) for address in addresses)


def _stack_note(port: int, listeners: list[Listener]) -> str:
    """What an IPv6 wildcard also blocks: IPv4 too (dual-stack), or nothing of IPv4 (v6-only)."""
    wildcards = [each for each in listeners if each.family == "ipv6" and each.address == "::"]
    if not wildcards:
        return ""
    if any(each.dual_stack for each in wildcards):
        return (
            f" [::]:{port} is dual-stack: it takes IPv4 connections too, so binds on "
            f"0.0.0.0:{port} and 127.0.0.1:{port} fail as well."
        )
    if any(each.family == "ipv4" for each in listeners):
        return ""
    # dual_stack False may only mean the backend cannot tell (psutil): a real bind decides.
    ipv4 = [binding.BindProbe(socket.AF_INET, "0.0.0.0"), binding.LOOPBACK]
    proto = socket.SOCK_STREAM if listeners[0].proto == "tcp" else socket.SOCK_DGRAM
    if binding.first_errno(ipv4, port, kind=proto) == 0:
        return (
            f" [::]:{port} is IPv6 only: a server on 127.0.0.1:{port} or 0.0.0.0:{port} can "
            f"still bind the port, one on [::]:{port} cannot."
        )
    return ""


def _looks_inherited(listener: Listener, parent_alive: Callable[[int], bool]) -> bool:
    """A holder whose parent is gone (adopted by init) and that is not a system service.

    A heuristic: system services are adopted by init on purpose. A dev server of this user
    whose parent exited usually is the orphaned child of a reloader or a shell job.
    """
    process = listener.process
    if process is None or process.ppid is None:
        return False
    orphaned = process.ppid in (0, 1) or not parent_alive(process.ppid)
    system = any(name in (listener.service or "") for name in SYSTEM_SERVICES)
    return orphaned and not system and listener.uid == os.getuid()
