"""Ports in the JSON API: the inventory, one port, termination and free ports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Path, Query, Router, Schema

from console.foundation.api_auth import Needs
from console.foundation.limits import PORT_MAX, PORT_MIN
from console.foundation.roles import OPERATOR
from ports import free_ports, inventory, operations
from ports.listing import ListenerFilter, listener_payload
from ports.models import PortEvent
from ports.port_view import port_view
from ports.registry import operations as registry
from ports.stopping import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS

# Deeper than any real list; a larger offset overflows SQLite's integer and would be a 500.
MAX_OFFSET = 1_000_000

router = Router(tags=["ports"])

PortNumber = Path(
    ..., ge=PORT_MIN, le=PORT_MAX, description=f"TCP or UDP port, {PORT_MIN}-{PORT_MAX}"
)


class ProcessOut(Schema):
    name: str
    user: str | None
    cmdline: str
    cwd: str | None
    create_time: float
    started_at: str
    rss: int | None
    cpu_percent: float | None


class HolderOut(Schema):
    pid: int
    create_time: float | None
    name: str
    cmdline: str
    ppid: int | None
    role: Literal["master", "reloader", "worker", "child", "process"]


class ServerOut(Schema):
    pid: int
    create_time: float
    name: str
    cmdline: str
    kind: str = Field(description='"gunicorn", "Django runserver", "Flask", ... or its name')
    pids: list[int] = Field(description="the root and every process of its tree, root first")
    leads_group: bool = Field(description="a stop signals the root's process group")


class ManagerOut(Schema):
    kind: str = Field(
        description='"systemd", "systemd-user", "docker", "podman", "container", "pm2", '
        '"supervisord", "launchd", "terminal" or "none"'
    )
    name: str
    stop_command: str
    restarts: bool = Field(description="killing its processes would only get them restarted")


class ListenerOut(Schema):
    id: str
    proto: str
    family: str
    address: str
    port: int
    exposure: Literal["loopback", "network", "all"]
    pid: int | None
    pids: list[int]
    uid: int
    process: ProcessOut | None
    service: str | None
    project: str | None
    is_console: bool
    holders: list[HolderOut]
    dual_stack: bool = Field(description="an IPv6 wildcard that also holds the IPv4 port")
    server: ServerOut | None = None
    manager: ManagerOut | None = None


class ListenersOut(Schema):
    sampled_at: float
    complete: bool
    count: int
    items: list[ListenerOut]


class HolderSpanOut(Schema):
    proto: str
    family: str
    address: str
    port: int
    pid: int | None
    pids: list[int]
    process_name: str
    user: str
    cmdline: str
    opened_at: str
    closed_at: str | None
    duration_seconds: float | None
    open_before_console_start: bool


class ExplanationOut(Schema):
    kind: Literal["free", "held", "inherited", "time-wait", "busy"]
    summary: str
    fix: str
    time_wait_connections: int
    alternative_port: int | None = Field(
        None, description="a free port no project reserves, to use instead (null when free)"
    )


class PortOut(Schema):
    port: int
    free: bool
    listeners: list[ListenerOut]
    explanation: ExplanationOut
    history: list[HolderSpanOut]


class EventQuery(Schema):
    port: int | None = Field(None, ge=PORT_MIN, le=PORT_MAX)
    since: datetime | None = None
    kind: Literal["opened", "closed", "owner-changed"] | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class EventProcessOut(Schema):
    name: str
    user: str
    cmdline: str
    cwd: str
    create_time: float | None


class EventOut(Schema):
    id: int
    at: datetime
    kind: str
    proto: str
    family: str
    address: str
    port: int
    exposure: str
    uid: int
    pid: int | None
    pids: list[int]
    process: EventProcessOut | None
    service: str
    open_before_console_start: bool


class EventsOut(Schema):
    count: int
    items: list[EventOut]


class PortFilters(Schema):
    proto: Literal["tcp", "udp"] | None = None
    exposure: Literal["loopback", "network", "all"] | None = None
    q: str | None = Field(None, max_length=200)
    port: int | None = Field(None, ge=PORT_MIN, le=PORT_MAX)
    owner: Literal["all", "mine"] = "all"
    limit: int = Field(500, ge=1, le=5000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class FreePortQuery(Schema):
    near: int = Field(8000, ge=PORT_MIN, le=PORT_MAX)
    count: int = Field(1, ge=1, le=100)
    host: str = Field("127.0.0.1", max_length=64)


class SkippedPortOut(Schema):
    port: int
    reason: Literal["held", "reserved", "time-wait", "busy", "privileged", "excluded"]
    detail: str


class FreePortsOut(Schema):
    ports: list[int]
    skipped: list[SkippedPortOut] = Field(
        description=f"why each port below the last one found was passed over, in order: the "
        f"first {free_ports.MAX_SKIPPED_REPORTED} only (one entry stands for the whole "
        "privileged range)"
    )


class TerminateIn(Schema):
    pid: int = Field(..., ge=0)
    create_time: float
    signal: Literal["TERM", "KILL"] = "TERM"
    grace_seconds: float = Field(DEFAULT_GRACE_SECONDS, ge=0, le=MAX_GRACE_SECONDS)
    escalate: bool = False


class TerminateOut(Schema):
    pid: int
    outcome: Literal["terminated", "killed", "still-running"]
    released: bool
    signals_sent: list[str]
    elapsed_ms: float
    warnings: list[str]


class StopIn(Schema):
    server_pid: int = Field(..., ge=0, description="the listing's `server.pid`")
    server_create_time: float = Field(..., description="the listing's `server.create_time`")
    grace_seconds: float = Field(DEFAULT_GRACE_SECONDS, ge=0, le=MAX_GRACE_SECONDS)
    escalate: bool = Field(False, description="KILL what is left after the grace period")
    dry_run: bool = Field(False, description="return the plan and signal nothing")


class PlanStepOut(Schema):
    pid: int
    role: str
    name: str
    signal: Literal["TERM", "none"]
    via: Literal["group", "pid", "container", "manager"]


class RespawnedOut(Schema):
    pid: int
    name: str


class StopOut(Schema):
    server_pid: int
    outcome: Literal[
        "dry-run", "stopped", "killed", "still-running", "managed", "container-stopped"
    ]
    released: bool
    respawned: list[RespawnedOut]
    plan: list[PlanStepOut]
    warnings: list[str]
    signals_sent: list[str]
    manager: ManagerOut | None
    elapsed_ms: float


@router.get("/ports", response=ListenersOut)
def list_ports(request, filters: Query[PortFilters]):
    snapshot = inventory.snapshot()
    project_of = registry.project_matcher()
    chosen = ListenerFilter(
        q=filters.q or "",
        proto=filters.proto or "",
        exposure=filters.exposure or "",
        owner=filters.owner,
        port=filters.port,
    ).apply(snapshot.listeners)
    page = chosen[filters.offset : filters.offset + filters.limit]
    return {
        "sampled_at": snapshot.sampled_at,
        "complete": snapshot.complete,
        "count": len(chosen),
        "items": _with_servers(page, project_of),
    }


# Declared before /ports/{port} so that "free" is never read as a port number.
@router.get("/ports/free", response=FreePortsOut)
def list_free_ports(request, query: Query[FreePortQuery]):
    # Other projects' reserved ports are never offered, here or anywhere in the console.
    scan = free_ports.scan_free_ports(
        query.near, count=query.count, host=query.host, reserved=registry.reserved_ports()
    )
    return {
        "ports": scan.ports,
        "skipped": [
            {"port": each.port, "reason": each.reason.value, "detail": each.detail}
            for each in scan.skipped
        ],
    }


@router.get("/ports/{port}", response=PortOut)
def port_detail(request, port: int = PortNumber):
    view = port_view(port)
    return {
        "port": port,
        "free": view.explanation.free,
        "listeners": [
            listener_payload(listener, view.project_of(listener), view.servers.get(listener.inode))
            for listener in view.listeners
        ],
        "explanation": view.explanation.as_dict(),
        "history": [span.as_dict() for span in view.timeline],
    }


def _with_servers(listeners, project_of) -> list[dict]:
    servers = inventory.servers_of(listeners)
    return [
        listener_payload(listener, project_of(listener), servers.get(listener.inode))
        for listener in listeners
    ]


@router.get("/events", response=EventsOut)
def list_events(request, query: Query[EventQuery]):
    """Stored opened / closed / owner-changed events, newest first."""
    events = PortEvent.objects.all()
    if query.port is not None:
        events = events.filter(port=query.port)
    if query.since is not None:
        events = events.filter(at__gte=query.since)
    if query.kind is not None:
        events = events.filter(kind=query.kind)
    page = events[query.offset : query.offset + query.limit]
    return {"count": events.count(), "items": [_event_payload(event) for event in page]}


def _event_payload(event: PortEvent) -> dict:
    has_process = bool(event.process_name)
    return {
        "id": event.id,
        "at": event.at,
        "kind": event.kind,
        "proto": event.proto,
        "family": event.family,
        "address": event.address,
        "port": event.port,
        "exposure": event.exposure,
        "uid": event.uid,
        "pid": event.pid,
        "pids": event.pids,
        "process": {
            "name": event.process_name,
            "user": event.user,
            "cmdline": event.cmdline,
            "cwd": event.cwd,
            "create_time": event.create_time,
        }
        if has_process
        else None,
        "service": event.service,
        "open_before_console_start": event.seen_at_start,
    }


@router.post(
    "/ports/{port}/terminate", response=TerminateOut, auth=Needs(OPERATOR, "port.terminate")
)
def terminate(request, body: TerminateIn, port: int = PortNumber):
    result = operations.terminate_for(
        request.auth,
        port=port,
        pid=body.pid,
        create_time=body.create_time,
        signal=body.signal,
        grace_seconds=body.grace_seconds,
        escalate=body.escalate,
        scope=getattr(request, "token_scope", None),
        request=request,
    )
    return result.as_dict()


@router.post("/ports/{port}/stop", response=StopOut, auth=Needs(OPERATOR, "port.stop"))
def stop(request, body: StopIn, port: int = PortNumber):
    """Stop the whole server on a port (its root and tree), or with `dry_run` show the plan."""
    result = operations.stop_for(
        request.auth,
        port=port,
        server_pid=body.server_pid,
        server_create_time=body.server_create_time,
        grace_seconds=body.grace_seconds,
        escalate=body.escalate,
        dry_run=body.dry_run,
        scope=getattr(request, "token_scope", None),
        request=request,
    )
    return result.as_dict()
