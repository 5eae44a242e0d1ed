"""Ports in the JSON API: the inventory, one port, termination and free ports."""

from __future__ import annotations

from typing import Literal

from ninja import Field, Path, Query, Router, Schema

from ports import actions, inventory, operations
from ports.listing import ListenerFilter, listener_payload

router = Router(tags=["ports"])

PortNumber = Path(..., ge=1, le=65535, description="TCP or UDP port, 1-65535")


class ProcessOut(Schema):
    name: str
    user: str | None
    cmdline: str
    cwd: str | None
    create_time: float
    started_at: str
    rss: int | None
    cpu_percent: float | None


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


class ListenersOut(Schema):
    sampled_at: float
    complete: bool
    count: int
    items: list[ListenerOut]


class PortOut(Schema):
    port: int
    free: bool
    listeners: list[ListenerOut]
    history: list[dict]


class PortFilters(Schema):
    proto: Literal["tcp", "udp"] | None = None
    exposure: Literal["loopback", "network", "all"] | None = None
    q: str | None = Field(None, max_length=200)
    port: int | None = Field(None, ge=1, le=65535)
    owner: Literal["all", "mine"] = "all"
    limit: int = Field(500, ge=1, le=5000)
    offset: int = Field(0, ge=0)


class FreePortQuery(Schema):
    near: int = Field(8000, ge=1, le=65535)
    count: int = Field(1, ge=1, le=100)
    host: str = Field("127.0.0.1", max_length=64)


class FreePortsOut(Schema):
    ports: list[int]


class TerminateIn(Schema):
    pid: int = Field(..., ge=0)
    create_time: float
    signal: Literal["TERM", "KILL"] = "TERM"
    grace_seconds: float = Field(5, ge=0, le=60)
    escalate: bool = False


class TerminateOut(Schema):
    pid: int
    outcome: Literal["terminated", "killed", "still-running"]
    released: bool
    signals_sent: list[str]
    elapsed_ms: float


@router.get("/ports", response=ListenersOut)
def list_ports(request, filters: Query[PortFilters]):
    snapshot = inventory.snapshot()
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
        "items": [listener_payload(listener) for listener in page],
    }


# Declared before /ports/{port} so that "free" is never read as a port number.
@router.get("/ports/free", response=FreePortsOut)
def free_ports(request, query: Query[FreePortQuery]):
    return {"ports": actions.find_free_port(query.near, count=query.count, host=query.host)}


@router.get("/ports/{port}", response=PortOut)
def port_detail(request, port: int = PortNumber):
    listeners = inventory.snapshot().on_port(port)
    return {
        "port": port,
        "free": not listeners,
        "listeners": [listener_payload(listener) for listener in listeners],
        "history": [],
    }


@router.post("/ports/{port}/terminate", response=TerminateOut)
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
    return {
        "pid": result.pid,
        "outcome": result.outcome,
        "released": result.released,
        "signals_sent": list(result.signals_sent),
        "elapsed_ms": result.elapsed_ms,
    }
