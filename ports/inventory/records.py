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
