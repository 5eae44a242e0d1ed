"""The records the inventory engine returns. Plain dataclasses: no Django, no I/O."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

LOOPBACK = "loopback"
NETWORK = "network"
ALL_INTERFACES = "all"


def exposure_of(address: str) -> str:
    """Who can reach a socket bound to `address`: this machine, one network, or everyone."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.is_unspecified:
        return ALL_INTERFACES
    if ip.is_loopback or (
        isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped and ip.ipv4_mapped.is_loopback
    ):
        return LOOPBACK
    return NETWORK


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    name: str
    user: str | None  # None when the uid has no passwd entry
    cmdline: str  # joined argv, capped at CMDLINE_MAX characters
    cwd: str | None  # None when unreadable (another user's process)
    create_time: float  # seconds since the epoch, rounded to 2 decimals
    ppid: int | None = None
    rss: int | None = None  # bytes
    cpu_percent: float | None = None  # share of one core since the previous snapshot


# What each holder of a socket is to the others (see ports.inventory.servers.roles_of):
MASTER = "master"  # a pre-fork server's parent (gunicorn, uvicorn --workers): respawns workers
RELOADER = "reloader"  # a dev server's watcher (Flask --debug, uvicorn --reload): restarts it
WORKER = "worker"  # a master's child
CHILD = "child"  # a reloader's child, or a short-lived fork of a holder
PROCESS = "process"  # a holder with no other holder above or below it
ROLES = (MASTER, RELOADER, WORKER, CHILD, PROCESS)


@dataclass(frozen=True, slots=True)
class Holder:
    """One process holding a listening socket, as the listing and the sampler's events show it."""

    pid: int
    create_time: float | None  # None when the process could not be read
    name: str
    cmdline: str
    ppid: int | None
    role: str  # one of ROLES


@dataclass(frozen=True, slots=True)
class ProcessNode:
    """A process in the tree walk from a holder to its server's root (ports.inventory.servers)."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    tty: int  # the controlling terminal's device number; 0 for none
    name: str
    cmdline: str
    create_time: float
    uid: int | None = None


@dataclass(frozen=True, slots=True)
class Manager:
    """What would restart a server if it were killed, and the way to stop it that sticks."""

    kind: str  # "systemd" | "systemd-user" | "docker" | "podman" | "pm2" | "supervisord"
    #            | "launchd" | "terminal" | "none"
    name: str  # the unit, container, program; "" for a terminal
    stop_command: str  # "systemctl stop postgresql@15-main", "docker stop web-1", "Ctrl-C in ..."
    restarts: bool  # True when killing the server's processes would only get them restarted
    container_id: str = ""  # docker/podman: the full id, to stop it through the Engine API


@dataclass(frozen=True, slots=True)
class Server:
    """The process a user means by "the server" on a port, and every process of its tree."""

    pid: int
    create_time: float
    name: str
    cmdline: str
    kind: str  # "gunicorn", "Django runserver", "Flask", "uvicorn", "Vite", ... or the name
    pids: tuple[int, ...]  # the root and all its descendants, root first
    leads_group: bool  # the root leads its process group (a shell's job): signal the group
    manager: Manager | None = None


@dataclass(frozen=True, slots=True)
class Listener:
    proto: str  # "tcp" | "udp"
    family: str  # "ipv4" | "ipv6"
    address: str
    port: int
    inode: int
    uid: int
    pids: tuple[int, ...] = ()  # every holder, oldest first (a pre-fork master before its workers)
    process: ProcessInfo | None = None  # the oldest holder; None when the owner cannot be read
    service: str | None = None  # "Flask", "PostgreSQL", ... a hint, not a fact
    exposure: str = field(default="")
    holders: tuple[Holder, ...] = ()  # one per pid in `pids`, same order
    dual_stack: bool = False  # an IPv6 wildcard that also takes IPv4 (IPV6_V6ONLY off)

    def __post_init__(self) -> None:
        if not self.exposure:
            object.__setattr__(self, "exposure", exposure_of(self.address))

    @property
    def pid(self) -> int | None:
        return self.pids[0] if self.pids else None

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        """Stable identity across snapshots: never the port alone (v4/v6 and tcp/udp differ)."""
        return (self.proto, self.family, self.address, self.port, self.inode)

    @property
    def id(self) -> str:
        return f"{self.proto}{4 if self.family == 'ipv4' else 6}-{self.port}-{self.inode}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    sampled_at: float  # time.time() when the dump was taken
    complete: bool  # False when some socket's owner could not be resolved
    listeners: tuple[Listener, ...]
    duration_ms: float = 0.0

    def on_port(self, port: int) -> list[Listener]:
        return [listener for listener in self.listeners if listener.port == port]
