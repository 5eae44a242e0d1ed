"""Servers, not sockets: each holder's role, and the process a user means by "the server".

A dev server is a process tree. gunicorn's master binds the socket and forks workers that share
it; a reloader (Flask --debug, uvicorn --reload) binds it and hands it to a child it restarts on
every change; Django's autoreloader holds no socket at all and runs the child that binds; `npm exec`
runs `sh -c vite` runs node. Signalling one of those processes alone gets it respawned, or leaves
the port held with nothing serving. So each listener carries its holders with a role, and the
listing names the server's root: the highest ancestor that still belongs to the server. The walk
up stops at the job's process-group leader (a shell makes one group per job), at a shell, a
terminal, a multiplexer, an IDE, a supervisor or init, at a parent with other children (a
Procfile runner with several servers), and at the console itself and its ancestors.

Linux reads /proc; elsewhere psutil. No Django.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from ports.inventory import processes
from ports.inventory.hints import command_hint
from ports.inventory.records import (
    CHILD,
    MASTER,
    PROCESS,
    RELOADER,
    WORKER,
    Holder,
    Listener,
    Manager,
    ProcessInfo,
    ProcessNode,
    Server,
)

# Evidence that a parent restarts its child on code changes rather than running workers.
_RELOAD_FLAGS = re.compile(
    r"\s--reload\b|\s--debug\b|\s--debugger\b|\brunserver\b|\bfastapi\s+dev\b|\s--watch\b"
)
# Evidence of a pre-fork server, whose parent respawns the workers it runs.
_PREFORK = re.compile(
    r"\bgunicorn\b|\s--workers[\s=]|\s-w\s*\d|\bhypercorn\b.*\s--workers|\bphp-fpm\b|\bnginx\b"
    r"|\bhttpd\b|\bapache2\b|\bpuma\b|\bunicorn\b|\buwsgi\b"
)
# Set in the child by the reloaders of Werkzeug (Flask, app.run(debug=True)) and Django.
_CHILD_MARKERS = (b"WERKZEUG_RUN_MAIN=", b"RUN_MAIN=")

# (pattern over the command line, kind), first match wins: the tool before the runtime.
_KINDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern), kind)
    for pattern, kind in [
        (r"manage\.py\s+runserver|django-admin(\.py)?\s+runserver", "Django runserver"),
        (r"\bgunicorn\b", "gunicorn"),
        (r"\bfastapi\s+dev\b", "fastapi dev"),
        (r"\bfastapi\s+run\b", "fastapi run"),
        (r"\buvicorn\b", "uvicorn"),
        (r"\bhypercorn\b", "Hypercorn"),
        (r"\bdaphne\b", "Daphne"),
        (r"\bflask\b.*\srun\b|-m\s+flask\b", "Flask"),
        (r"\bvite\b", "Vite"),
        (r"\bnext\s+dev\b", "Next.js dev server"),
        (r"\bjupyter", "Jupyter"),
    ]
]

# Processes the walk up never crosses: they run a person's session, not one server.
_SHELLS = {"bash", "zsh", "sh", "dash", "fish", "ksh", "mksh", "tcsh", "csh", "nu", "pwsh", "xonsh"}
_SESSION_RUNNERS = {
    "init", "systemd", "launchd", "login", "sshd", "sshd-session", "su", "sudo", "doas", "tmux",
    "tmux: server", "screen", "SCREEN", "zellij", "mosh-server", "script", "gnome-terminal-",
    "gnome-terminal-server", "konsole", "xterm", "alacritty", "kitty", "wezterm-gui", "foot",
    "iTerm2", "Terminal", "code", "cursor", "Code Helper", "pycharm", "idea", "emacs", "vim",
    "nvim", "supervisord", "honcho", "foreman", "overmind", "process-compose", "tilt",
    "containerd-shim", "containerd-shim-runc-v2", "conmon", "tini", "dumb-init", "docker-init",
    "runsv", "s6-supervise", "PM2", "pm2",
}  # fmt: skip

WERKZEUG_APP_RUN = "Werkzeug (app.run)"
TABLE_MAX_AGE = 1.0  # the process table behind a listing: one read serves every listener in it


def roles_of(
    infos: Sequence[ProcessInfo | None],
    *,
    environ_has: Callable[[int, Iterable[bytes]], bool] | None = None,
) -> tuple[str, ...]:
    """The role of each holder of one socket (same order), from how the holders are related.

    A holder whose parent also holds the socket is that parent's worker (a master) or child (a
    reloader); a holder with holding children is a master when it runs pre-fork workers, a
    reloader when it restarts one child. `environ_has(pid, markers)` looks for the marker a
    reloader sets in its child's environment (unreadable for another user's process).
    """
    environ_has = environ_has or _environ_has
    by_pid = {info.pid: info for info in infos if info is not None}
    children: dict[int, list[ProcessInfo]] = {}
    for info in by_pid.values():
        if info.ppid in by_pid and info.ppid != info.pid:
            children.setdefault(info.ppid, []).append(info)
    parent_role: dict[int, str] = {}
    for pid, kids in children.items():
        parent_role[pid] = _parent_role(by_pid[pid], kids, environ_has)
    roles = []
    for each in infos:
        if each is None:
            roles.append(PROCESS)
        elif each.pid in parent_role:
            roles.append(parent_role[each.pid])
        elif each.ppid in parent_role:
            roles.append(WORKER if parent_role[each.ppid] == MASTER else CHILD)
        elif _runs_python(each) and environ_has(each.pid, _CHILD_MARKERS):
            # Django's autoreloader holds no socket: its child is the only holder. (Only Python
            # processes are asked: reading every sole holder's environment was most of a cold
            # snapshot of 1,000 listeners.)
            roles.append(CHILD)
        else:
            roles.append(PROCESS)
    return tuple(roles)


def _runs_python(info: ProcessInfo) -> bool:
    argv0 = info.cmdline.split(" ", 1)[0].rsplit("/", 1)[-1]
    return info.name.startswith("python") or argv0.startswith("python")


def _parent_role(
    parent: ProcessInfo,
    kids: list[ProcessInfo],
    environ_has: Callable[[int, Iterable[bytes]], bool],
) -> str:
    command = f" {parent.cmdline}"
    if _RELOAD_FLAGS.search(command):
        return RELOADER
    if _PREFORK.search(command) or len(kids) > 1:
        return MASTER
    (kid,) = kids
    if environ_has(kid.pid, _CHILD_MARKERS) and not environ_has(parent.pid, _CHILD_MARKERS):
        return RELOADER
    # A reloader re-runs its own command line; so does a fork, which is a short-lived request
    # handler (socketserver.ForkingMixIn) and has the same role as a worker for stopping.
    return RELOADER if kid.cmdline == parent.cmdline and kid.name == parent.name else MASTER


HoldersCache = dict[tuple[tuple[object, ...], ...], tuple[Holder, ...]]


def holders_of(
    pids: Sequence[int], infos: Sequence[ProcessInfo | None], cache: HoldersCache | None = None
) -> tuple[Holder, ...]:
    """The holder records of one socket. A process holding 20 sockets has the same holders for
    each: with a `cache` (the engine's own) they are worked out once per set of processes (pid,
    start time, parent, command)."""
    if cache is None:
        return _holders(pids, infos)
    key = tuple(
        (pid, info.create_time, info.ppid, info.name, info.cmdline) if info else (pid,)
        for pid, info in zip(pids, infos, strict=True)
    )
    holders = cache.get(key)
    if holders is None:
        holders = _holders(pids, infos)
        if len(cache) >= HOLDERS_CACHE_SIZE:
            cache.clear()  # processes come and go; a full cache is mostly the dead
        cache[key] = holders
    return holders


def _holders(pids: Sequence[int], infos: Sequence[ProcessInfo | None]) -> tuple[Holder, ...]:
    roles = roles_of(infos)
    return tuple(
        Holder(
            pid=pid,
            create_time=info.create_time if info else None,
            name=info.name if info else "",
            cmdline=info.cmdline if info else "",
            ppid=info.ppid if info else None,
            role=role,
        )
        for pid, info, role in zip(pids, infos, roles, strict=True)
    )


HOLDERS_CACHE_SIZE = 4096


def environ_kind(pids: Iterable[int]) -> str | None:
    """A kind only the environment shows: Werkzeug's reloader child (`app.run(debug=True)`)
    runs the same `python app.py` as its parent, and the parent sets WERKZEUG_RUN_MAIN in it."""
    if any(_environ_has(pid, (b"WERKZEUG_RUN_MAIN=",)) for pid in pids):
        return WERKZEUG_APP_RUN
    return None


def kind_of(commands: Iterable[tuple[str, str]]) -> str | None:
    """The server kind from (name, cmdline) pairs, root first: "gunicorn", "Django runserver"..."""
    pairs = list(commands)
    for _name, cmdline in pairs:
        for pattern, kind in _KINDS:
            if pattern.search(cmdline):
                return kind
    for name, cmdline in pairs:
        hint = command_hint(name, cmdline)
        if hint:
            return hint
    return None


# -- the process table and the walk to the root ---------------------------------------------------


class ProcessTable:
    """Every process's parent, group and session, read once for one listing (Linux: /proc)."""

    def __init__(self, read_all: Callable[[], dict[int, ProcessNode]] | None = None) -> None:
        self._read_all = read_all or _read_all_nodes
        self._lock = threading.Lock()
        self._nodes: dict[int, ProcessNode] = {}
        self._children: dict[int, list[int]] = {}
        self._read_at = float("-inf")
        self._own_lineage: frozenset[int] = frozenset()

    def fresh(self, max_age: float = TABLE_MAX_AGE) -> ProcessTable:
        with self._lock:
            now = time.monotonic()
            if now - self._read_at > max_age:
                self._nodes = self._read_all()
                children: dict[int, list[int]] = {}
                for node in self._nodes.values():
                    children.setdefault(node.ppid, []).append(node.pid)
                self._children = children
                self._read_at = now
                self._own_lineage = frozenset(self._lineage(os.getpid()))
        return self

    def node(self, pid: int) -> ProcessNode | None:
        return self._nodes.get(pid)

    def children(self, pid: int) -> list[int]:
        return self._children.get(pid, [])

    def descendants(self, pid: int) -> list[int]:
        found: set[int] = set()
        queue = [pid]
        while queue and len(found) < 10_000:
            for child in self._children.get(queue.pop(), ()):
                if child not in found and child != pid:
                    found.add(child)
                    queue.append(child)
        return sorted(found)

    def ancestors(self, pid: int) -> list[ProcessNode]:
        """Parents of `pid`, nearest first, up to (not including) pid 1."""
        chain: list[ProcessNode] = []
        node = self._nodes.get(pid)
        while node is not None and node.ppid > 1 and len(chain) < 64:
            node = self._nodes.get(node.ppid)
            if node is None or node in chain:
                break
            chain.append(node)
        return chain

    def own_lineage(self) -> frozenset[int]:
        """This process and its ancestors: the console, its server, its shell. Never a server."""
        return self._own_lineage

    def _lineage(self, pid: int) -> list[int]:
        return [pid, *(node.pid for node in self.ancestors(pid))]


def server_of(
    listener: Listener,
    table: ProcessTable,
    manager_of: Callable[[ProcessNode, Sequence[ProcessNode]], Manager | None] | None = None,
) -> Server | None:
    """The server a listener belongs to; None when its holders cannot be read."""
    top = _top_holder(listener, table)
    if top is None:
        return None
    root = top
    own = table.own_lineage()
    while True:
        if root.pid == root.pgid:
            break  # it leads its group: the job a shell started
        parent = table.node(root.ppid)
        if (
            parent is None
            or parent.pid <= 1
            or parent.pid in own
            or parent.pgid != root.pgid
            or _is_session_runner(parent)
            or len(table.children(parent.pid)) != 1
        ):
            break
        root = parent
    pids = (root.pid, *table.descendants(root.pid))
    holder_commands = [(holder.name, holder.cmdline) for holder in listener.holders]
    manager = manager_of(root, table.ancestors(root.pid)) if manager_of else None
    return Server(
        pid=root.pid,
        create_time=root.create_time,
        name=root.name,
        cmdline=root.cmdline,
        kind=kind_of([(root.name, root.cmdline), *holder_commands])
        or environ_kind(listener.pids)
        or root.name,
        pids=pids,
        leads_group=root.pid == root.pgid,
        manager=manager,
    )


def _top_holder(listener: Listener, table: ProcessTable) -> ProcessNode | None:
    """The oldest holder none of whose ancestors holds the socket too."""
    held = set(listener.pids)
    tops = []
    for pid in listener.pids:
        node = table.node(pid)
        if node is None:
            continue
        if not any(ancestor.pid in held for ancestor in table.ancestors(pid)):
            tops.append(node)
    return min(tops, key=lambda node: (node.create_time, node.pid)) if tops else None


def _is_session_runner(node: ProcessNode) -> bool:
    name = node.name
    if name in _SHELLS or name.lstrip("-") in _SHELLS:
        # `sh -c "vite"` (npm's wrapper, a Procfile line) runs one command: part of the server.
        return " -c " not in f" {node.cmdline} "
    return name in _SESSION_RUNNERS or name.startswith(("containerd-shim", "PM2 v"))


def _environ_has(pid: int, markers: Iterable[bytes]) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:
        return False  # another user's process, or gone: no evidence either way
    entries = environ.split(b"\0")
    return any(entry.startswith(marker) for entry in entries for marker in markers)


def _read_all_nodes() -> dict[int, ProcessNode]:
    if not sys.platform.startswith("linux"):
        return _psutil_nodes()
    nodes: dict[int, ProcessNode] = {}
    for pid in processes.list_pids():
        stat = processes.read_stat(pid)
        if stat is None:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().rstrip(b"\0").split(b"\0")
        except OSError:
            argv = []
        args = [arg.decode(errors="replace") for arg in argv if arg]
        nodes[pid] = ProcessNode(
            pid=pid,
            ppid=stat.ppid,
            pgid=stat.pgid,
            sid=stat.sid,
            tty=stat.tty,
            name=processes.process_name(stat.comm, args),
            cmdline=" ".join(args)[: processes.CMDLINE_MAX],
            create_time=processes.create_time_of(stat.start_ticks),
        )
    return nodes


def _psutil_nodes() -> dict[int, ProcessNode]:
    import psutil  # only off Linux

    nodes: dict[int, ProcessNode] = {}
    wanted = ["pid", "ppid", "name", "cmdline", "create_time", "terminal", "uids"]
    for proc in psutil.process_iter(wanted):
        info = proc.info
        try:
            pgid, sid = os.getpgid(info["pid"]), os.getsid(info["pid"])
        except OSError:
            pgid = sid = 0
        nodes[info["pid"]] = ProcessNode(
            pid=info["pid"],
            ppid=info["ppid"] or 0,
            pgid=pgid,
            sid=sid,
            tty=1 if info.get("terminal") else 0,
            name=info["name"] or "",
            cmdline=" ".join(info["cmdline"] or [])[: processes.CMDLINE_MAX],
            create_time=round(info["create_time"] or 0.0, 2),
            uid=info["uids"].real if info.get("uids") else None,
        )
    return nodes
