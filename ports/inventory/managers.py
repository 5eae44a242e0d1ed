"""Who manages a server: what restarts it if it is killed, and the way to stop it that sticks.

Killing a server that systemd, a container engine, pm2 or supervisord runs only gets it restarted
(or, for a container, breaks it): the user has to stop it through its manager. The evidence is
cheap and local: /proc/PID/cgroup names the systemd unit or container a process lives in, the
chain of parents names pm2's God Daemon or supervisord, and a controlling tty names a terminal.

The order of the checks, and why it departs from "systemd first" in two places:
1. A container (a 64-hex id in the cgroup path): `docker stop` from the host is right even when a
   supervisord or a systemd runs inside the container.
2. `docker-proxy` as the root: the port is a container's published port.
3. pm2 or supervisord among the parents: they are often run as a systemd service themselves, and
   then the unit is `pm2-root.service` or `supervisor.service`; stopping that unit would stop every
   program, while the nearer manager is the one that restarts this program.
4. A systemd service unit (the last unit in the cgroup path, a system or a user unit), unless the
   chain shows a terminal: a shell of gnome-terminal-server.service (before VTE moved shells to
   their own scopes) or of ssh.service (on machines without pam_systemd) lives in that unit's
   cgroup, and "systemctl stop ssh" would be the worst advice we could give.
5. launchd on macOS (a parent pid of 1).
6. A terminal: a controlling tty, or the walk ended at a shell, tmux, screen or sshd.
7. None: a daemon nobody restarts.

Pure: no Django. It reads /proc and may ask the Docker Engine; the listing calls it for every
server, so answers are cached per (pid, create time) and parent chain.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from ports.inventory.docker_engine import DEFAULT_ENGINE, ContainerInfo
from ports.inventory.records import Manager, ProcessNode

SYSTEMD = "systemd"
SYSTEMD_USER = "systemd-user"
DOCKER = "docker"
PODMAN = "podman"
CONTAINER = "container"  # a container of some other runtime (Kubernetes): no stop command of ours
PM2 = "pm2"
SUPERVISORD = "supervisord"
LAUNCHD = "launchd"
TERMINAL = "terminal"
NONE = "none"
KINDS = (
    SYSTEMD,
    SYSTEMD_USER,
    DOCKER,
    PODMAN,
    CONTAINER,
    PM2,
    SUPERVISORD,
    LAUNCHD,
    TERMINAL,
    NONE,
)

TERMINAL_STOP = "Ctrl-C in the terminal that runs it"
NO_MANAGER = Manager(kind=NONE, name="", stop_command="", restarts=False)
TERMINAL_MANAGER = Manager(kind=TERMINAL, name="", stop_command=TERMINAL_STOP, restarts=False)

SHELLS = frozenset(
    {
        "sh",
        "bash",
        "dash",
        "zsh",
        "fish",
        "ksh",
        "mksh",
        "tcsh",
        "csh",
        "ash",
        "nu",
        "pwsh",
        "xonsh",
    }
)
# Processes whose children were started by a person at a terminal, tty or not (`ssh host cmd`).
TERMINAL_HOSTS = frozenset(
    {"sshd", "sshd-session", "tmux", "tmux: server", "tmux: client", "screen", "SCREEN"}
)

# A container's id in a cgroup path: /docker/<id> (cgroupfs driver), docker-<id>.scope (systemd
# driver), libpod-<id>.scope or /libpod-<id> (Podman). libpod-conmon-<id> is Podman's monitor, which
# lives outside the container, so the id must follow "libpod-" directly.
_DOCKER_ID = re.compile(r"(?:/docker/|/docker-)([0-9a-f]{64})(?:\.scope)?(?:/|$)")
_PODMAN_ID = re.compile(r"/libpod-([0-9a-f]{64})(?:\.scope)?(?:/|$)")
_ANY_ID = re.compile(r"([0-9a-f]{64})")
# The user's own systemd instance: its units are user units; the instance itself manages nothing.
_USER_MANAGER = re.compile(r"^user@\d+\.service$")
# A docker-proxy's flags, as dockerd passes them: "-host-port 8080" (or "-host-port=8080").
_PROXY_FLAG = re.compile(r"--?(proto|host-port)(?:=|\s+)(\S+)")

# A container whose name the Engine did not tell (no Engine, or it timed out) is asked again after
# this long; every other answer stands for the life of the process.
NAMELESS_RETRY_AFTER = 30.0
CACHE_MAX = 4096


class ContainerLookup(Protocol):
    """What manager_of asks a container engine (docker_engine.EngineClient answers it)."""

    def container(self, container_id: str) -> ContainerInfo | None: ...

    def container_for_host_port(self, port: int, proto: str = "tcp") -> ContainerInfo | None: ...


def read_cgroup(pid: int) -> str | None:
    """The text of /proc/PID/cgroup; None when the process is gone or the file is unreadable."""
    return _read_proc_file(pid, "cgroup")


def read_environ(pid: int) -> dict[str, str] | None:
    """The environment a process started with; None unless we may read it (same user or root)."""
    raw = _read_proc_file(pid, "environ")
    if raw is None:
        return None
    environ: dict[str, str] = {}
    for entry in raw.split("\0"):
        key, sep, value = entry.partition("=")
        if sep:
            environ.setdefault(key, value)
    return environ


def _read_proc_file(pid: int, name: str) -> str | None:
    # os.open/os.read, as processes.read_stat does: this runs for every server of a listing.
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_RDONLY)
    except OSError:
        return None
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")


# --- cgroup paths ------------------------------------------------------------------------------


def cgroup_paths(text: str) -> list[str]:
    """Every hierarchy's path in a /proc/PID/cgroup text, the systemd ones first.

    cgroup v2 writes one line, "0::/system.slice/x.service"; v1 and hybrid machines write one line
    per hierarchy, where "N:name=systemd:/..." is systemd's own.
    """
    systemd: list[str] = []
    others: list[str] = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        (systemd if controllers in ("", "name=systemd") else others).append(path.strip())
    return systemd + others


class ContainerRef(NamedTuple):
    kind: str  # DOCKER, PODMAN or CONTAINER
    id: str  # the full 64-hex id


def container_in_cgroup(text: str) -> ContainerRef | None:
    """The container a process runs in, from its cgroup paths; None when it runs on the host."""
    for path in cgroup_paths(text):
        if "kubepods" in path:
            # Kubernetes recreates what is stopped under it; whatever the runtime, it is the owner.
            ids = _ANY_ID.findall(path)
            return ContainerRef(CONTAINER, ids[-1] if ids else "")
        if match := _PODMAN_ID.search(path):
            return ContainerRef(PODMAN, match.group(1))
        if match := _DOCKER_ID.search(path):
            return ContainerRef(DOCKER, match.group(1))
    return None


class ServiceUnit(NamedTuple):
    name: str  # without ".service": "postgresql@15-main"
    user: bool  # a unit of a user's own systemd instance (systemctl --user)


def service_unit_in_cgroup(text: str) -> ServiceUnit | None:
    """The systemd service a process belongs to: the last unit of its cgroup path.

    A scope (a login session, a terminal tab, `systemd-run --scope`) is not a manager: it restarts
    nothing. Neither is the user instance user@N.service: its services are the managers.
    """
    for path in cgroup_paths(text):
        units = [
            _cg_unescape(part) for part in path.split("/") if part.endswith((".service", ".scope"))
        ]
        if not units:
            continue
        last = units[-1]
        if last.endswith(".scope") or _USER_MANAGER.match(last):
            return None
        user = any(_USER_MANAGER.match(unit) for unit in units[:-1])
        return ServiceUnit(last.removesuffix(".service"), user)
    return None


def _cg_unescape(part: str) -> str:
    # systemd prefixes "_" to cgroup names that could clash with the kernel's (cg_escape).
    return part[1:] if part.startswith("_") else part


# --- the chain of processes --------------------------------------------------------------------


def _base_name(node: ProcessNode) -> str:
    return node.name.lstrip("-").rsplit("/", 1)[-1]


def _argv0(node: ProcessNode) -> str:
    first = node.cmdline.split(None, 1)[0] if node.cmdline.strip() else ""
    return first.lstrip("-").rsplit("/", 1)[-1]


def _is_pm2_daemon(node: ProcessNode) -> bool:
    return node.cmdline.startswith("PM2 v") or "God Daemon" in node.cmdline


def _is_supervisord(node: ProcessNode) -> bool:
    if "supervisord" in (_base_name(node), _argv0(node)):
        return True
    # `python -m supervisor.supervisord` or `python /usr/bin/supervisord`
    args = node.cmdline.split()
    return any(
        arg.rsplit("/", 1)[-1] in ("supervisord", "supervisor.supervisord") for arg in args[1:3]
    )


def _shows_a_terminal(root: ProcessNode, ancestors: Sequence[ProcessNode]) -> bool:
    """A controlling tty, or an sshd/tmux/screen above: a person started it and can Ctrl-C it."""
    if any(node.tty != 0 for node in (root, *ancestors)):
        return True
    return any(_base_name(node) in TERMINAL_HOSTS for node in ancestors)


def _walk_ends_at_a_terminal(ancestors: Sequence[ProcessNode]) -> bool:
    if not ancestors:
        return False
    last = _base_name(ancestors[-1])
    return last in SHELLS or last in TERMINAL_HOSTS


# --- the managers ------------------------------------------------------------------------------


def _container_manager(ref: ContainerRef, engine: ContainerLookup) -> Manager:
    if ref.kind == CONTAINER:
        short = ref.id[:12]
        return Manager(
            kind=CONTAINER,
            name=short,
            stop_command="scale its Kubernetes workload down (kubectl scale --replicas=0 ...); "
            "a stopped container of a pod is recreated",
            restarts=True,
            container_id=ref.id,
        )
    info = engine.container(ref.id)
    name = info.name if info is not None and info.name else ref.id[:12]
    return Manager(
        kind=ref.kind,
        name=name,
        stop_command=f"{ref.kind} stop {shlex.quote(name)}",
        restarts=True,
        container_id=ref.id,
    )


def docker_proxy_port(root: ProcessNode) -> tuple[int, str] | None:
    """(host port, proto) that a docker-proxy forwards, from its command line; else None."""
    if "docker-proxy" not in (_base_name(root), _argv0(root)):
        return None
    flags = dict(_PROXY_FLAG.findall(root.cmdline))
    try:
        port = int(flags.get("host-port", ""))
    except ValueError:
        return None
    return port, flags.get("proto", "tcp")


def _docker_proxy_manager(port: int, proto: str, engine: ContainerLookup) -> Manager:
    info = engine.container_for_host_port(port, proto)
    if info is None:
        # No Engine told us which container: the docker CLI can still find it by the port.
        return Manager(
            kind=DOCKER,
            name="",
            stop_command=f"docker stop $(docker ps -q --filter publish={port}/{proto})",
            restarts=True,
        )
    name = info.name or info.short_id
    return Manager(
        kind=DOCKER,
        name=name,
        stop_command=f"docker stop {shlex.quote(name)}",
        restarts=True,
        container_id=info.id,
    )


def _pm2_manager(root: ProcessNode, environ: dict[str, str] | None) -> Manager:
    # pm2 puts the app's name and id into its environment; "pm2 stop all" would stop every app.
    env = environ or {}
    app = env.get("name") or env.get("pm_id") or ""
    stop = f"pm2 stop {shlex.quote(app)}" if app else f"pm2 stop <the app of pid {root.pid}>"
    return Manager(kind=PM2, name=app, stop_command=stop, restarts=True)


def _supervisord_manager(root: ProcessNode, environ: dict[str, str] | None) -> Manager:
    env = environ or {}
    name = env.get("SUPERVISOR_PROCESS_NAME") or _base_name(root)
    group = env.get("SUPERVISOR_GROUP_NAME", "")
    # A process of a group (numprocs > 1, or [group:x]) is "group:name" to supervisorctl.
    target = f"{group}:{name}" if group and group != name else name
    return Manager(
        kind=SUPERVISORD,
        name=target,
        stop_command=f"supervisorctl stop {shlex.quote(target)}",
        restarts=True,
    )


def _systemd_manager(unit: ServiceUnit) -> Manager:
    # Restart= is in the unit file, which we do not read: a unit "may restart" its service, and
    # `systemctl stop` is the way to stop it either way.
    if unit.user:
        return Manager(
            kind=SYSTEMD_USER,
            name=unit.name,
            stop_command=f"systemctl --user stop {shlex.quote(unit.name)}",
            restarts=True,
        )
    return Manager(
        kind=SYSTEMD,
        name=unit.name,
        stop_command=f"systemctl stop {shlex.quote(unit.name)}",
        restarts=True,
    )


def _launchd_manager(root: ProcessNode) -> Manager:
    domain = (
        "system" if root.uid == 0 else f"gui/{root.uid}" if root.uid is not None else "gui/$UID"
    )
    return Manager(
        kind=LAUNCHD,
        name=root.name,
        stop_command=f"launchctl bootout {domain}/<the label of pid {root.pid}>",
        restarts=True,
    )


def decide_manager(
    root: ProcessNode,
    ancestors: Sequence[ProcessNode],
    *,
    read_cgroup: Callable[[int], str | None] = read_cgroup,
    read_environ: Callable[[int], dict[str, str] | None] = read_environ,
    engine: ContainerLookup = DEFAULT_ENGINE,
    platform: str = sys.platform,
) -> Manager:
    """manager_of without the cache: the checks of the module docstring, in its order."""
    cgroup = read_cgroup(root.pid)
    if cgroup is not None and (ref := container_in_cgroup(cgroup)) is not None:
        return _container_manager(ref, engine)
    if (published := docker_proxy_port(root)) is not None:
        return _docker_proxy_manager(*published, engine)
    if any(_is_pm2_daemon(node) for node in ancestors):
        return _pm2_manager(root, read_environ(root.pid))
    if any(_is_supervisord(node) for node in ancestors):
        return _supervisord_manager(root, read_environ(root.pid))
    terminal = _shows_a_terminal(root, ancestors)
    if cgroup is not None and not terminal and (unit := service_unit_in_cgroup(cgroup)) is not None:
        return _systemd_manager(unit)
    if platform == "darwin" and root.ppid == 1 and not terminal:
        return _launchd_manager(root)
    if terminal or _walk_ends_at_a_terminal(ancestors):
        return TERMINAL_MANAGER
    return NO_MANAGER


# --- the cache ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cached:
    manager: Manager
    until: float  # monotonic; inf while the answer stands


class ManagerCache:
    """Answers per (pid, create time, parent chain); bounded, and safe across threads.

    The parent chain is part of the key: a server whose terminal closed is reparented, and from then
    on it is a daemon nobody restarts.
    """

    def __init__(self, max_entries: int = CACHE_MAX, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[tuple[int, float, tuple[int, ...]], _Cached] = {}
        self._lock = threading.Lock()

    def get(self, root: ProcessNode, ancestors: Sequence[ProcessNode]) -> Manager | None:
        key = _key(root, ancestors)
        with self._lock:
            cached = self._entries.get(key)
        if cached is None or self.clock() >= cached.until:
            return None
        return cached.manager

    def put(self, root: ProcessNode, ancestors: Sequence[ProcessNode], manager: Manager) -> None:
        nameless = manager.kind in (DOCKER, PODMAN) and (
            not manager.name or manager.name == manager.container_id[:12]
        )
        until = self.clock() + NAMELESS_RETRY_AFTER if nameless else float("inf")
        with self._lock:
            if len(self._entries) >= self.max_entries:
                # Drop the older half: dead processes' entries go first, live ones are re-read once.
                for old in list(self._entries)[: self.max_entries // 2]:
                    del self._entries[old]
            self._entries[_key(root, ancestors)] = _Cached(manager, until)

    def __len__(self) -> int:
        return len(self._entries)


def _key(root: ProcessNode, ancestors: Sequence[ProcessNode]) -> tuple[int, float, tuple[int, ...]]:
    return (root.pid, root.create_time, tuple(node.pid for node in ancestors))


DEFAULT_CACHE = ManagerCache()


def manager_of(
    root: ProcessNode,
    ancestors: Sequence[ProcessNode],
    *,
    read_cgroup: Callable[[int], str | None] = read_cgroup,
    read_environ: Callable[[int], dict[str, str] | None] = read_environ,
    engine: ContainerLookup = DEFAULT_ENGINE,
    platform: str = sys.platform,
    cache: ManagerCache | None = DEFAULT_CACHE,
) -> Manager:
    """What manages the server whose root process is `root`.

    `ancestors` are root's parents, nearest first, up to but excluding pid 1 (or where the walk
    ended). `cache=None` decides afresh; the readers and the engine are the seams tests use.
    """
    if cache is not None and (cached := cache.get(root, ancestors)) is not None:
        return cached
    manager = decide_manager(
        root,
        ancestors,
        read_cgroup=read_cgroup,
        read_environ=read_environ,
        engine=engine,
        platform=platform,
    )
    if cache is not None:
        cache.put(root, ancestors, manager)
    return manager
