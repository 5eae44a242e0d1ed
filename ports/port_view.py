"""One port as the page and the API show it: its listeners, their servers, why it is busy, and its
history. Read-only; `ports.views.port_detail`, `ports.api.port_detail` and the port page's socket
(`ports.port_consumer`) start here."""

from __future__ import annotations

import time
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


def page_context(port: int, *, can_operate: bool) -> dict:
    """What templates/ports/detail.html shows of a port: the page, its Terminate and Stop
    answers and the live sections its socket pushes all render from this one dict."""
    view = port_view(port)
    return {
        "port": port,
        "listeners": view.listeners,
        "explanation": view.explanation,
        "free": view.explanation.free,
        "projects": {listener.id: view.project_of(listener) for listener in view.listeners},
        "timeline": view.timeline,
        "can_operate": can_operate,
        "servers": view.servers,
        # The page asks its socket for what changed after this (epoch seconds).
        "rendered_at": time.time(),
    }
