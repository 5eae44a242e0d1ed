"""Filtering, sorting and the public shape of listeners: shared by the page, the API and sockets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from ports.inventory.records import Holder, Listener, Manager, ProcessInfo, Server
from ports.system_accounts import is_system_uid


class Unset:
    """The default of an argument whose None means something ("no server found")."""


UNSET = Unset()

PROTOCOLS = ("tcp", "udp")
EXPOSURES = ("loopback", "network", "all")
OWNERS = ("all", "mine")


def _measure(value: float | int | None, scale: float = 1) -> int:
    """A CPU share or a size as a whole number that sorts (unknown below zero)."""
    return -1 if value is None else int(value * scale)


SORT_KEYS = {
    "port": lambda listener: (listener.port, listener.proto, listener.family),
    "proto": lambda listener: (listener.proto, listener.port),
    "address": lambda listener: (listener.address, listener.port),
    "exposure": lambda listener: (EXPOSURES.index(listener.exposure), listener.port),
    "pid": lambda listener: (listener.pid or 0, listener.port),
    "process": lambda listener: (
        (listener.process.name if listener.process else "~"),
        listener.port,
    ),
    "user": lambda listener: (
        (listener.process.user or "") if listener.process else "~",
        listener.port,
    ),
    # Hundredths of a percent and KiB: whole numbers the page's sort tokens order as text.
    "cpu": lambda listener: (
        _measure(listener.process.cpu_percent if listener.process else None, 100),
        listener.port,
    ),
    "memory": lambda listener: (
        _measure(listener.process.rss if listener.process else None, 1 / 1024),
        listener.port,
    ),
}
# Sorts whose first click shows the biggest first: a person looks for what uses the most.
BIGGEST_FIRST = ("cpu", "memory")


@dataclass(frozen=True)
class ListenerFilter:
    """What the user asked to see. Unknown values are dropped, never an error: it is a view."""

    q: str = ""
    proto: str = ""
    exposure: str = ""
    owner: str = "all"
    port: int | None = None
    sort: str = "port"
    descending: bool = False
    # Per-user preferences (ports.preferences), not URL state; sockets get them from the page.
    hide_system: bool = False
    group_by_server: bool = False

    @classmethod
    def from_params(cls, params) -> ListenerFilter:
        def choice(name: str, allowed: tuple[str, ...], default: str = "") -> str:
            value = (params.get(name) or "").strip().lower()
            return value if value in allowed else default

        port = (params.get("port") or "").strip()
        sort = (params.get("sort") or "port").strip().lower()
        descending = sort.startswith("-")
        sort = sort.lstrip("-")
        return cls(
            q=(params.get("q") or "").strip()[:200],
            proto=choice("proto", PROTOCOLS),
            exposure=choice("exposure", EXPOSURES),
            owner=choice("owner", OWNERS, "all"),
            port=int(port) if port.isdigit() and 0 < int(port) < 65536 else None,
            sort=sort if sort in SORT_KEYS else "port",
            descending=descending,
            hide_system=(params.get("hide_system") or "") == "1",
            group_by_server=(params.get("group") or "") == "server",
        )

    def matches(self, listener: Listener, server: Server | None = None) -> bool:
        """`server` (from inventory.servers_of) is needed only to hide systemd's units."""
        if self.proto and listener.proto != self.proto:
            return False
        if self.exposure and listener.exposure != self.exposure:
            return False
        if self.port is not None and listener.port != self.port:
            return False
        if self.owner == "mine" and listener.uid != os.getuid():
            return False
        if self.hide_system and is_system_service(listener, server):
            return False
        return not self.q or self.q.lower() in search_text(listener)

    def apply(self, listeners, servers: dict[int, Server | None] | None = None) -> list[Listener]:
        servers = servers or {}
        chosen = [
            listener
            for listener in listeners
            if self.matches(listener, servers.get(listener.inode))
        ]
        chosen.sort(key=SORT_KEYS[self.sort], reverse=self.descending)
        return chosen

    def as_query(self) -> dict[str, str]:
        """The non-default parts, for links that keep the current view."""
        query = {"q": self.q, "proto": self.proto, "exposure": self.exposure}
        if self.owner != "all":
            query["owner"] = self.owner
        if self.sort != "port" or self.descending:
            query["sort"] = ("-" if self.descending else "") + self.sort
        return {key: value for key, value in query.items() if value}


def is_system_service(listener: Listener, server: Server | None = None) -> bool:
    """A socket a developer seldom means on this page ("Hide system services").

    It is one when its server runs in a systemd system unit (a service of the machine, even
    one of root's when the console runs as root), or when the socket belongs to a system
    account (ports.system_accounts: root, daemons, nobody) other than the console's own.
    """
    manager = server.manager if server is not None else None
    if manager is not None and manager.kind == "systemd":
        return True
    return listener.uid != os.getuid() and is_system_uid(listener.uid)


def search_text(listener: Listener) -> str:
    parts = [str(listener.port), listener.address, listener.proto, listener.service or ""]
    if listener.process:
        process = listener.process
        parts += [str(process.pid), process.name, process.user or "", process.cmdline]
    return " ".join(parts).lower()


def is_console(listener: Listener) -> bool:
    """True for the console's own sockets: never offered for termination."""
    return os.getpid() in listener.pids


def process_payload(listener: Listener) -> dict | None:
    process = listener.process
    if process is None:
        return None
    return {
        "name": process.name,
        "user": process.user,
        "cmdline": process.cmdline,
        "cwd": process.cwd,
        "create_time": process.create_time,
        "started_at": datetime.fromtimestamp(process.create_time, tz=UTC).isoformat(),
        "rss": process.rss,
        "cpu_percent": process.cpu_percent,
    }


def holder_payload(holder: Holder) -> dict:
    return {
        "pid": holder.pid,
        "create_time": holder.create_time,
        "name": holder.name,
        "cmdline": holder.cmdline,
        "ppid": holder.ppid,
        "role": holder.role,
    }


def manager_payload(manager: Manager | None) -> dict | None:
    if manager is None:
        return None
    return {
        "kind": manager.kind,
        "name": manager.name,
        "stop_command": manager.stop_command,
        "restarts": manager.restarts,
    }


def server_payload(server: Server | None) -> dict | None:
    if server is None:
        return None
    return {
        "pid": server.pid,
        "create_time": server.create_time,
        "name": server.name,
        "cmdline": server.cmdline,
        "kind": server.kind,
        "pids": list(server.pids),
        "leads_group": server.leads_group,
    }


def listener_payload(
    listener: Listener, project: str | None = None, server: Server | Unset | None = UNSET
) -> dict:
    """A listener as the API and the JSON event stream show it (DESIGN.md's contract).

    `server` (with its `manager`) comes from a read of the whole process table, so the listing
    asks for it and the sampler's events, which carry the holders, leave it out.
    """
    payload = {
        "id": listener.id,
        "proto": listener.proto,
        "family": listener.family,
        "address": listener.address,
        "port": listener.port,
        "exposure": listener.exposure,
        "pid": listener.pid,
        "pids": list(listener.pids),
        "uid": listener.uid,
        "process": process_payload(listener),
        "service": listener.service,
        "project": project,
        "is_console": is_console(listener),
        "holders": [holder_payload(holder) for holder in listener.holders],
        "dual_stack": listener.dual_stack,
    }
    if not isinstance(server, Unset):
        payload["server"] = server_payload(server)
        payload["manager"] = manager_payload(server.manager if server else None)
    return payload


def listener_from_payload(payload: dict) -> Listener:
    """The record back from its public shape: events cross the channel layer as plain data."""
    process = payload.get("process")
    pids = tuple(payload.get("pids") or ())
    return Listener(
        holders=tuple(
            Holder(
                pid=holder["pid"],
                create_time=holder["create_time"],
                name=holder["name"],
                cmdline=holder["cmdline"],
                ppid=holder["ppid"],
                role=holder["role"],
            )
            for holder in payload.get("holders") or ()
        ),
        dual_stack=bool(payload.get("dual_stack")),
        proto=payload["proto"],
        family=payload["family"],
        address=payload["address"],
        port=payload["port"],
        inode=int(payload["id"].rsplit("-", 1)[1]),
        uid=payload["uid"],
        pids=pids,
        process=ProcessInfo(
            pid=pids[0],
            name=process["name"],
            user=process["user"],
            cmdline=process["cmdline"],
            cwd=process["cwd"],
            create_time=process["create_time"],
            rss=process.get("rss"),
            cpu_percent=process.get("cpu_percent"),
        )
        if process and pids
        else None,
        service=payload.get("service"),
        exposure=payload["exposure"],
    )
