"""One port as the page and the API show it: its listeners, their servers, why it is busy, and its
history. Read-only; both `ports.views.port_detail` and `ports.api.port_detail` start here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ports import inventory
from ports.history import HolderSpan, opener_of, port_timeline
from ports.inventory.diagnosis import Explanation, explain_port
from ports.inventory.records import Listener, Server
from ports.registry import operations as registry


@dataclass(frozen=True)
class PortView:
    port: int
    listeners: list[Listener]
    servers: dict[int, Server | None]  # by the listener's inode
    explanation: Explanation  # `.free`: would a plain bind() (no SO_REUSEADDR) succeed now?
    project_of: Callable[[Listener], str | None]
    timeline: list[HolderSpan]


def port_view(port: int) -> PortView:
    snapshot = inventory.snapshot()
    listeners = snapshot.on_port(port)
    project_of = registry.project_matcher()
    servers = inventory.servers_of(listeners)
    explanation = explain_port(
        port,
        snapshot,
        project_of=project_of,
        opener_of=opener_of,
        reserved=registry.reserved_ports(),
        server_of=lambda listener: servers.get(listener.inode),
    )
    return PortView(port, listeners, servers, explanation, project_of, port_timeline(port))
