"""A port's history as holder spans: who held it, from when to when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ports.inventory.diagnosis import Opener
from ports.inventory.records import Listener
from ports.models import PortEvent

EVENTS_READ_PER_PORT = 2000


@dataclass
class HolderSpan:
    proto: str
    family: str
    address: str
    port: int
    pid: int | None
    pids: list[int]
    process_name: str
    user: str
    cmdline: str
    opened_at: datetime
    closed_at: datetime | None = None
    seen_at_start: bool = False  # open when the console started: it may have opened earlier

    @property
    def duration(self) -> timedelta | None:
        return self.closed_at - self.opened_at if self.closed_at else None

    def as_dict(self) -> dict:
        return {
            "proto": self.proto,
            "family": self.family,
            "address": self.address,
            "port": self.port,
            "pid": self.pid,
            "pids": self.pids,
            "process_name": self.process_name,
            "user": self.user,
            "cmdline": self.cmdline,
            "opened_at": self.opened_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "duration_seconds": self.duration.total_seconds() if self.duration else None,
            "open_before_console_start": self.seen_at_start,
        }


def _span(event: PortEvent) -> HolderSpan:
    return HolderSpan(
        proto=event.proto,
        family=event.family,
        address=event.address,
        port=event.port,
        pid=event.pid,
        pids=list(event.pids),
        process_name=event.process_name,
        user=event.user,
        cmdline=event.cmdline,
        opened_at=event.at,
        seen_at_start=event.seen_at_start,
    )


def port_timeline(port: int, limit: int = 50) -> list[HolderSpan]:
    """Holder spans of `port`, newest first. A hand-over ends one span and starts the next."""
    newest = PortEvent.objects.filter(port=port).order_by("-at", "-id")[:EVENTS_READ_PER_PORT]
    spans: list[HolderSpan] = []
    open_spans: dict[tuple, HolderSpan] = {}
    for event in reversed(list(newest)):
        current = open_spans.pop(event.key, None)
        if current is not None and event.kind != PortEvent.OPENED:
            current.closed_at = event.at
        if event.kind != PortEvent.CLOSED:
            open_spans[event.key] = span = _span(event)
            spans.append(span)
    spans.sort(key=lambda span: span.opened_at, reverse=True)
    return spans[:limit]


def opener_of(listener: Listener) -> Opener | None:
    """The process that held this very socket when the sampler first saw it."""
    first = (
        PortEvent.objects.filter(
            proto=listener.proto,
            family=listener.family,
            address=listener.address,
            port=listener.port,
            inode=listener.inode,
            kind=PortEvent.OPENED,
        )
        .order_by("at", "id")
        .values_list("pid", "process_name")
        .first()
    )
    if first is None or first[0] is None:
        return None
    return Opener(pid=first[0], name=first[1])
