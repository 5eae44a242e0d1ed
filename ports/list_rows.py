"""What a row of the Ports page offers beyond its listener, and how rows group by server.

A row can be opened in a browser when its listener is a TCP socket that probably speaks HTTP:
its service hint (ports.inventory.hints, from the command line, else the port) names a web
server, a dev server or a product with a web UI; with no hint, the kind of its server does
(gunicorn, Flask, Vite, ...). A hint that names something else (PostgreSQL, a Jupyter
kernel's ZeroMQ ports) means no link, even when the server's kind is a web one.

Grouping by server puts each listener under the widest server whose process tree holds its
pid: a Jupyter server's kernels each listen on their own ports and are each their own server
to ports.inventory.servers (the walk up stops at a parent with several children), yet they
belong under the notebook server that started them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ports import inventory
from ports.inventory.records import ALL_INTERFACES, LOOPBACK, Listener, Manager, Server, Snapshot
from ports.listing import ListenerFilter

HTTP_SERVICES = frozenset(
    {
        "HTTP",
        "HTTP (alternate)",
        "HTTPS",
        "Django dev server",
        "Django/uvicorn/http.server",
        "Daphne (ASGI)",
        "FastAPI (uvicorn)",
        "uvicorn (ASGI)",
        "Hypercorn (ASGI)",
        "gunicorn",
        "waitress",
        "Flask",
        "Python http.server",
        "Streamlit",
        "Dash",
        "Jupyter",
        "TensorBoard",
        "MkDocs dev server",
        "Vite dev server",
        "Next.js",
        "Nuxt",
        "webpack dev server",
        "Angular dev server",
        "Astro dev server",
        "Hugo dev server",
        "Node.js dev server",
        "Node.js",
        "Deno",
        "Bun",
        "Rails (Puma)",
        "PHP built-in server",
        "nginx",
        "Apache httpd",
        "Caddy",
        "Kibana",
        "CouchDB",
        "Prometheus",
        "Elasticsearch",
        "OpenSearch",
        "RabbitMQ management",
        "NATS monitoring",
        "InfluxDB",
        "Solr",
        "Neo4j",
        "Ollama",
        "MinIO",
    }
)
# ports.inventory.servers' kinds of web servers, for a listener with no hint of its own.
HTTP_SERVER_KINDS = frozenset(
    {
        "gunicorn",
        "Django runserver",
        "Flask",
        "uvicorn",
        "fastapi dev",
        "fastapi run",
        "Hypercorn",
        "Daphne",
        "Vite",
        "Next.js dev server",
        "Jupyter",
    }
)
HTTPS_PORTS = (443, 8443)
UNKNOWN_OWNER = "owner unknown"


def speaks_http(listener: Listener, server: Server | None) -> bool:
    if listener.proto != "tcp":
        return False
    if listener.service is not None:
        return listener.service in HTTP_SERVICES
    return server is not None and server.kind in HTTP_SERVER_KINDS


def open_url(listener: Listener, server: Server | None) -> str | None:
    """`http://localhost:PORT/` for a listener that probably speaks HTTP, else None."""
    if not speaks_http(listener, server):
        return None
    if listener.exposure in (LOOPBACK, ALL_INTERFACES):
        host = "localhost"  # what a person types; it reaches 127.0.0.1 and ::1 alike
    elif listener.family == "ipv6":
        host = f"[{listener.address}]"
    else:
        host = listener.address
    https = listener.service == "HTTPS" or listener.port in HTTPS_PORTS
    return f"{'https' if https else 'http'}://{host}:{listener.port}/"


@dataclass(frozen=True)
class GroupHeader:
    """The row above a server's listeners when the page groups them."""

    key: str  # the header row's HTML id; its listeners' rows carry it as data-group
    name: str  # the server's kind ("Jupyter", "gunicorn", or its process name)
    pid: int | None
    cmdline: str
    manager: Manager | None
    token: str  # its place among the groups: by name, then pid

    @classmethod
    def of(cls, server: Server | None, listener: Listener) -> GroupHeader:
        if server is None:
            return cls(
                key=f"server-uid{listener.uid}",
                name=UNKNOWN_OWNER,
                pid=None,
                cmdline=f"uid {listener.uid}",
                manager=None,
                token=f"~ {listener.uid:010d}",  # "~" sorts after every name
            )
        return cls(
            key=f"server-{server.pid}-{int(server.create_time * 100)}",
            name=server.kind,
            pid=server.pid,
            cmdline=server.cmdline,
            manager=server.manager,
            token=f"{server.kind.lower()} {server.pid:010d}",
        )


@dataclass(frozen=True)
class PortRow:
    listener: Listener
    server: Server | None  # its own server (what Stop the server stops), from servers_of
    group: str = ""  # its GroupHeader's key when the page groups rows, else ""
    open_url: str | None = None

    @property
    def curl(self) -> str:
        return f"curl {self.open_url}" if self.open_url else ""


@dataclass
class RowGroup:
    header: GroupHeader | None  # None: the page does not group
    rows: list[PortRow] = field(default_factory=list)


def widest_servers(servers: Iterable[Server | None]) -> dict[int, Server]:
    """pid -> the server with the widest tree that holds it (a notebook over its kernels)."""
    unique = {server.pid: server for server in servers if server is not None}
    by_pid: dict[int, Server] = {}
    for server in sorted(unique.values(), key=lambda server: len(server.pids), reverse=True):
        for pid in server.pids:
            by_pid.setdefault(pid, server)
    return by_pid


def header_of(
    listener: Listener, servers: dict[int, Server | None], widest: dict[int, Server]
) -> GroupHeader:
    server = widest.get(listener.pid) if listener.pid is not None else None
    return GroupHeader.of(server or servers.get(listener.inode), listener)


def row_of(listener: Listener, server: Server | None, group: str = "") -> PortRow:
    return PortRow(listener, server, group, open_url(listener, server))


def rows_of(
    listeners: list[Listener], servers: dict[int, Server | None], grouped: bool
) -> list[RowGroup]:
    """The page's rows in the order given; grouped, under their servers' headers (by name),
    each group keeping that order. `servers` covers every listener of the snapshot, so a
    kernel finds its notebook server even when the notebook's own socket is filtered out."""
    if not grouped:
        return [RowGroup(None, [row_of(lr, servers.get(lr.inode)) for lr in listeners])]
    widest = widest_servers(servers.values())
    groups: dict[str, RowGroup] = {}
    for listener in listeners:
        header = header_of(listener, servers, widest)
        group = groups.setdefault(header.key, RowGroup(header))
        group.rows.append(row_of(listener, servers.get(listener.inode), header.key))
    return sorted(groups.values(), key=lambda group: group.header.token if group.header else "")


@dataclass(frozen=True)
class PageRows:
    """What the Ports page shows of a snapshot for one view: the page and its socket agree."""

    listeners: list[Listener]
    servers: dict[int, Server | None]  # by inode, for every listener of the snapshot
    groups: list[RowGroup]

    @property
    def shown(self) -> dict[str, str]:
        """Row id -> its group's key ("" ungrouped): the rows the page has."""
        return {f"listener-{row.listener.id}": row.group for g in self.groups for row in g.rows}


def page_rows(view: ListenerFilter, snapshot: Snapshot, servers_of=None) -> PageRows:
    """The rows of `view`. The servers of the whole snapshot only when the view needs them to
    choose (hide systemd's units) or to group; else those of the rows shown: reading the
    process table for them costs 20-40 ms warm, near a second cold on a loaded machine."""
    servers_of = servers_of or inventory.servers_of
    if view.hide_system or view.group_by_server:
        servers = servers_of(snapshot.listeners)
        listeners = view.apply(snapshot.listeners, servers)
    else:
        listeners = view.apply(snapshot.listeners)
        servers = servers_of(listeners) if listeners else {}
    return PageRows(listeners, servers, rows_of(listeners, servers, view.group_by_server))


def shown_rows(view: ListenerFilter, snapshot: Snapshot, servers_of=None) -> dict[str, str]:
    """PageRows.shown without the servers, unless the view needs them to choose or group."""
    if view.hide_system or view.group_by_server:
        return page_rows(view, snapshot, servers_of).shown
    return {f"listener-{listener.id}": "" for listener in view.apply(snapshot.listeners)}
