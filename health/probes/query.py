"""Query: one statement through a DSN, read-only as the database itself enforces it.

    postgresql://user@127.0.0.1:5432/db   a READ ONLY transaction with a statement_timeout
    mysql://user@127.0.0.1:3306/db        (or mariadb://) a read-only session and transaction
                                          and a statement time limit
    sqlite:////abs/path.db                opened mode=ro, PRAGMA query_only, and an authorizer
                                          that denies ATTACH, DETACH and writing PRAGMAs

Trusting the statement to be a SELECT is not enough: `ATTACH DATABASE 'file:/x?mode=rwc'` or
`VACUUM INTO '/x'` would write files as the console's user. So the database refuses writes, and
the result never carries row contents: "1 row", "no rows", or whether the first value matched
`expect`. Which DSNs may be used (never the console's own database) is decided by the caller.

Where it connects is judged like any probe's (`health.probes.netpolicy`): every host of a
PostgreSQL or MySQL DSN is resolved here, each address judged, and the driver is handed the
judged address (libpq's `hostaddr`, PyMySQL's `host`), so it never resolves the name again and a
DNS answer cannot change between the check and the connect. A Unix socket is this machine.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlparse

from health.probes.netpolicy import LOCAL_ONLY, NetworkPolicy, parse_ip, resolve_allowed
from health.probes.results import ProbeFailed, ProbeResult, Target

if TYPE_CHECKING:  # the drivers are imported when a check of their kind runs
    from pymysql.connections import Connection as MysqlConnection
    from pymysql.cursors import Cursor as MysqlCursor

# (rows fetched, the first row's first value or None): what a verdict is made of.
Counted = tuple[int, object]

POSTGRES_SCHEMES = frozenset({"postgres", "postgresql"})
MYSQL_SCHEMES = frozenset({"mysql", "mariadb"})

_SQLITE_WRITES = {
    sqlite3.SQLITE_ATTACH,
    sqlite3.SQLITE_DETACH,
    sqlite3.SQLITE_INSERT,
    sqlite3.SQLITE_UPDATE,
    sqlite3.SQLITE_DELETE,
    sqlite3.SQLITE_CREATE_TABLE,
    sqlite3.SQLITE_DROP_TABLE,
    sqlite3.SQLITE_ALTER_TABLE,
}


async def probe(
    target: Target, timeout: float, *, policy: NetworkPolicy = LOCAL_ONLY
) -> ProbeResult:
    dsn = target.get("dsn") or ""
    statement = target.get("query") or "SELECT 1"
    scheme = urlparse(dsn).scheme
    started = time.perf_counter()
    if scheme in POSTGRES_SCHEMES:
        pinned = await postgres_pinned_hosts(dsn, policy)
        rows, first = await _postgres(dsn, statement, timeout, pinned)
    elif scheme in MYSQL_SCHEMES:
        addresses = await mysql_addresses(dsn, policy)
        rows, first = await asyncio.to_thread(_mysql, dsn, statement, timeout, addresses)
    elif scheme == "sqlite":
        rows, first = await asyncio.to_thread(_sqlite, sqlite_path(dsn), statement, timeout)
    else:
        raise ProbeFailed(
            f"unsupported database {scheme!r}: use postgresql://, mysql:// or sqlite://"
        )
    latency = (time.perf_counter() - started) * 1000
    return ProbeResult(True, latency, _verdict(rows, first, target.get("expect")))


def _verdict(rows: int, first: object, expect: object) -> str:
    """The outcome in words that hold no row contents (results are readable by viewers)."""
    counted = "no rows" if rows == 0 else ("1 row" if rows == 1 else f"{rows} rows")
    if expect in (None, ""):
        return counted
    if rows and first is not None and str(first) == str(expect):
        return f"{counted}; the first value matched the expected value"
    raise ProbeFailed(f"{counted}; the first value did not match the expected value")


_QUOTED = re.compile(r'"([^"]*)"|\'([^\']*)\'')


def _scrub(message: str, statement: str) -> str:
    """A database error without the values it quotes from the data.

    `invalid input syntax for type integer: "hunter2"` would put a row's contents into a result
    that viewers read. A quoted word that the statement itself contains (a table name) stays.
    """
    lowered = statement.lower()

    def mask(match: re.Match[str]) -> str:
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        return match.group(0) if quoted.lower() in lowered else '"…"'

    return _QUOTED.sub(mask, " ".join(message.split()))[:200]


def sqlite_path(dsn: str) -> str:
    """The file of a SQLite DSN: sqlite:////abs/path (four slashes) is absolute,
    sqlite:///rel/path is relative."""
    path = unquote(urlparse(dsn).path)
    return path[1:] if path.startswith("//") else path.lstrip("/") or path


class InvalidDsn(ProbeFailed, ValueError):
    """A DSN the driver cannot read: a failed run, or a refused save (a ValueError there).

    The message quotes none of the DSN, which may hold a password."""


class PostgresHost(NamedTuple):
    """One host of a PostgreSQL DSN: libpq takes lists (host=a,b hostaddr=,10.0.0.5 port=1,2)."""

    host: str  # a name, an address, a socket directory, or "" (the default socket)
    hostaddr: str  # the address libpq connects to without resolving `host`, or ""
    port: str

    @property
    def is_socket(self) -> bool:
        # libpq: a host that is an absolute path (or @ for Linux's abstract namespace) is a
        # Unix socket directory, and no host at all means the default socket.
        return not self.hostaddr and (not self.host or self.host.startswith(("/", "@")))

    @property
    def judged(self) -> str:
        """What the connection goes to: the hostaddr when there is one, else the host."""
        return self.hostaddr or self.host


def postgres_params(dsn: str) -> dict[str, str]:
    """The DSN as libpq reads it (URL or key=value); InvalidDsn when it cannot."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    except psycopg.Error as error:
        # libpq quotes the part it could not read, which may be the password.
        reason = _QUOTED.sub('"…"', " ".join(str(error).split()))
        raise InvalidDsn(f"not a DSN libpq can read ({reason})") from None
    if "service" in params:
        raise InvalidDsn(
            "service= takes the host from a pg_service.conf file, where the console cannot "
            "check it; write the host in the DSN"
        )
    return params


def postgres_hosts(params: dict[str, str]) -> list[PostgresHost]:
    """Every host libpq would try, in its order, with the PG* variables it would fall back on."""

    def listed(key: str, variable: str) -> list[str]:
        value = params.get(key, os.environ.get(variable, ""))
        return [part.strip() for part in value.split(",")] if value else []

    hosts, hostaddrs = listed("host", "PGHOST"), listed("hostaddr", "PGHOSTADDR")
    ports = listed("port", "PGPORT")
    count = max(len(hosts), len(hostaddrs), 1)
    if hosts and hostaddrs and len(hosts) != len(hostaddrs):
        raise InvalidDsn(f"{len(hosts)} hosts but {len(hostaddrs)} hostaddr values")
    if len(ports) > 1 and len(ports) != count:
        raise InvalidDsn(f"{len(ports)} ports for {count} hosts")
    for hostaddr in hostaddrs:
        if hostaddr and parse_ip(hostaddr) is None:
            raise InvalidDsn(f"hostaddr {hostaddr!r} is not an IP address")
    return [
        PostgresHost(host, hostaddr, port)
        for host, hostaddr, port in zip(
            hosts or [""] * count,
            hostaddrs or [""] * count,
            ports * count if len(ports) == 1 else ports or [""] * count,
            strict=True,
        )
    ]


class MysqlServer(NamedTuple):
    host: str
    port: int
    unix_socket: str | None  # PyMySQL then connects to the socket and ignores host


def mysql_server(dsn: str) -> MysqlServer:
    parsed = urlparse(dsn)
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    try:
        port = parsed.port or 3306
    except ValueError:
        raise InvalidDsn("the port is not a number from 1 to 65535") from None
    return MysqlServer(parsed.hostname or "127.0.0.1", port, options.get("unix_socket"))


def network_hosts(dsn: str) -> list[str]:
    """The hosts a DSN reaches over the network, for the policy to judge: none for SQLite and
    Unix sockets. InvalidDsn when the DSN cannot be read."""
    scheme = urlparse(dsn).scheme
    if scheme in POSTGRES_SCHEMES:
        return [
            entry.judged for entry in postgres_hosts(postgres_params(dsn)) if not entry.is_socket
        ]
    if scheme in MYSQL_SCHEMES:
        server = mysql_server(dsn)
        return [] if server.unix_socket else [server.host]
    return []


async def _allowed(host: str, port: int, policy: NetworkPolicy) -> list[str]:
    try:
        return await resolve_allowed(host, port, policy)
    except OSError as error:  # the name does not resolve (a refusal is a ProbeFailed)
        raise ProbeFailed(f"connect failed: {host}: {error.strerror or error}") from error


async def postgres_pinned_hosts(dsn: str, policy: NetworkPolicy) -> dict[str, str]:
    """host, hostaddr and port for libpq, every host's addresses judged: a name becomes one
    entry per address, each with its hostaddr, so libpq never resolves it (TLS still verifies
    against the name). Nothing to add ({}) when the DSN only names Unix sockets."""
    hosts: list[str] = []
    hostaddrs: list[str] = []
    ports: list[str] = []
    for entry in postgres_hosts(postgres_params(dsn)):
        if entry.is_socket:
            addresses = [""]
        else:
            port = int(entry.port) if entry.port.isdigit() else 5432
            addresses = await _allowed(entry.judged, port, policy)
        for address in addresses:
            hosts.append(entry.host)
            hostaddrs.append(address)
            ports.append(entry.port)
    if not any(hostaddrs):
        return {}
    pinned = {"host": ",".join(hosts), "hostaddr": ",".join(hostaddrs)}
    if any(ports):
        pinned["port"] = ",".join(ports)
    return pinned


async def mysql_addresses(dsn: str, policy: NetworkPolicy) -> list[str]:
    """The judged addresses to connect to, in order; [] for a Unix socket."""
    server = mysql_server(dsn)
    if server.unix_socket:
        return []
    return await _allowed(server.host, server.port, policy)


def _count(rows: Sequence[Sequence[object]]) -> Counted:
    first = rows[0][0] if rows and len(rows[0]) else None
    return len(rows), first


# At most this many rows are fetched to say "N rows": a check that selects a whole table must
# not pull it into the console's memory.
MAX_ROWS = 100


async def _postgres(dsn: str, statement: str, timeout: float, pinned: dict[str, str]) -> Counted:
    import psycopg
    from psycopg.conninfo import make_conninfo

    milliseconds = max(1, math.ceil(timeout * 1000))
    try:
        connection = await psycopg.AsyncConnection.connect(
            # To the judged addresses: keyword values override the DSN's.
            make_conninfo(dsn, **pinned),
            connect_timeout=max(1, math.ceil(timeout)),
            # Set at connect time: the statement cannot switch them off, and a read-only
            # transaction refuses every write whatever the statement says.
            options=f"-c default_transaction_read_only=on -c statement_timeout={milliseconds}",
        )
    except psycopg.Error as error:
        raise ProbeFailed(f"connect failed: {str(error).strip()[:200]}") from error
    try:
        await connection.set_read_only(True)
        async with connection.cursor() as cursor:
            # An extended-protocol execute (prepare) refuses a second statement.
            await cursor.execute(statement, prepare=True)
            rows = await cursor.fetchmany(MAX_ROWS) if cursor.description else []
        await connection.rollback()
        return _count(rows)
    except psycopg.Error as error:
        raise ProbeFailed(f"query failed: {_scrub(str(error), statement)}") from error
    finally:
        await connection.close()


# PyMySQL's "Can't connect to MySQL server": the next judged address may answer.
_MYSQL_CANNOT_CONNECT = 2003


def _mysql(dsn: str, statement: str, timeout: float, addresses: list[str]) -> Counted:
    """`addresses`: the judged addresses to try in order, or [] for the DSN's Unix socket."""
    import pymysql

    connection = _mysql_connect(dsn, timeout, addresses)
    try:
        with connection.cursor() as cursor:
            _mysql_time_limit(cursor, timeout)
            cursor.execute("START TRANSACTION READ ONLY")
            cursor.execute(statement)
            rows = list(cursor.fetchmany(MAX_ROWS)) if cursor.description else []
        connection.rollback()
        return _count(rows)
    except pymysql.Error as error:
        raise ProbeFailed(f"query failed: {_scrub(_mysql_message(error), statement)}") from error
    finally:
        connection.close()


def _mysql_connect(dsn: str, timeout: float, addresses: list[str]) -> MysqlConnection[MysqlCursor]:
    import pymysql

    parsed, server = urlparse(dsn), mysql_server(dsn)
    # With a Unix socket PyMySQL never uses the host; without one, only judged addresses.
    candidates = [server.host] if server.unix_socket else addresses
    if not candidates:
        raise ProbeFailed(f"connect failed: no address of {server.host} was judged")
    failure: pymysql.Error | None = None
    for address in candidates:
        try:
            return pymysql.connect(
                host=address,
                port=server.port,
                user=unquote(parsed.username or "") or None,
                password=unquote(parsed.password or ""),
                database=unquote(parsed.path.lstrip("/")) or None,
                connect_timeout=max(1, math.ceil(timeout)),
                read_timeout=max(1, math.ceil(timeout)),
                unix_socket=server.unix_socket,
                client_flag=0,  # no CLIENT.MULTI_STATEMENTS: the server refuses a second one
                # Every transaction of this session is read-only: DDL commits implicitly and
                # would end a lone START TRANSACTION READ ONLY, but not this.
                init_command="SET SESSION TRANSACTION READ ONLY",
            )
        except pymysql.Error as error:
            failure = error
            if error.args[:1] != (_MYSQL_CANNOT_CONNECT,):
                break  # refused by the server itself (a password): another address won't help
    assert failure is not None  # the loop ran at least once
    raise ProbeFailed(f"connect failed: {_mysql_message(failure)}") from failure


def _mysql_time_limit(cursor: MysqlCursor, timeout: float) -> None:
    import pymysql

    try:
        # MariaDB: seconds, for every statement.
        cursor.execute("SET SESSION max_statement_time = %s", (timeout,))
    except pymysql.Error:
        # MySQL: milliseconds, for SELECT.
        cursor.execute("SET SESSION max_execution_time = %s", (max(1, math.ceil(timeout * 1000)),))


def _mysql_message(error: BaseException) -> str:
    args = error.args
    return str(args[1] if len(args) > 1 else error).strip()[:200]


def _sqlite_authorizer(
    action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None
) -> int:
    if action in _SQLITE_WRITES:
        return sqlite3.SQLITE_DENY
    # PRAGMA name = value writes (arg2 is the value); a bare PRAGMA name reads.
    if action == sqlite3.SQLITE_PRAGMA and arg2 is not None:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _sqlite(path: str, statement: str, timeout: float) -> Counted:
    try:
        # Read-only: a health check must never create or change the database it looks at.
        connection = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error as error:
        raise ProbeFailed(f"cannot open {path}: {error}") from error
    try:
        connection.execute("PRAGMA query_only = ON")
        connection.set_authorizer(_sqlite_authorizer)
        # The probe's timeout cancels the await, not this thread: stop the statement itself.
        deadline = time.perf_counter() + timeout
        connection.set_progress_handler(lambda: time.perf_counter() > deadline, 10_000)
        # One statement: sqlite3's execute refuses a second ("You can only execute one ...").
        rows = connection.execute(statement).fetchmany(MAX_ROWS)
        return _count(rows)
    except sqlite3.Error as error:
        raise ProbeFailed(f"query failed: {_scrub(str(error), statement)}") from error
    finally:
        connection.close()
