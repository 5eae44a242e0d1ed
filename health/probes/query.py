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
"""

from __future__ import annotations

import asyncio
import math
import re
import sqlite3
import time
from urllib.parse import parse_qs, quote, unquote, urlparse

from health.probes import ProbeFailed, ProbeResult

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


async def probe(target: dict, timeout: float) -> ProbeResult:
    dsn = target.get("dsn") or ""
    statement = target.get("query") or "SELECT 1"
    scheme = urlparse(dsn).scheme
    started = time.perf_counter()
    if scheme in {"postgres", "postgresql"}:
        rows, first = await _postgres(dsn, statement, timeout)
    elif scheme in {"mysql", "mariadb"}:
        rows, first = await asyncio.to_thread(_mysql, dsn, statement, timeout)
    elif scheme == "sqlite":
        rows, first = await asyncio.to_thread(_sqlite, sqlite_path(dsn), statement, timeout)
    else:
        raise ProbeFailed(
            f"unsupported database {scheme!r}: use postgresql://, mysql:// or sqlite://"
        )
    latency = (time.perf_counter() - started) * 1000
    return ProbeResult(True, latency, _verdict(rows, first, target.get("expect")))


def _verdict(rows: int, first, expect) -> str:
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

    def mask(match: re.Match) -> str:
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        return match.group(0) if quoted.lower() in lowered else '"…"'

    return _QUOTED.sub(mask, " ".join(message.split()))[:200]


def sqlite_path(dsn: str) -> str:
    """The file of a SQLite DSN: sqlite:////abs/path (four slashes) is absolute,
    sqlite:///rel/path is relative."""
    path = unquote(urlparse(dsn).path)
    return path[1:] if path.startswith("//") else path.lstrip("/") or path


def _count(rows: list) -> tuple[int, object]:
    first = rows[0][0] if rows and len(rows[0]) else None
    return len(rows), first


# At most this many rows are fetched to say "N rows": a check that selects a whole table must
# not pull it into the console's memory.
MAX_ROWS = 100


async def _postgres(dsn: str, statement: str, timeout: float):
    import psycopg

    milliseconds = max(1, math.ceil(timeout * 1000))
    try:
        connection = await psycopg.AsyncConnection.connect(
            dsn,
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


def _mysql(dsn: str, statement: str, timeout: float):
    import pymysql

    parsed = urlparse(dsn)
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    try:
        connection = pymysql.connect(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 3306,
            user=unquote(parsed.username or "") or None,
            password=unquote(parsed.password or ""),
            database=unquote(parsed.path.lstrip("/")) or None,
            connect_timeout=max(1, math.ceil(timeout)),
            read_timeout=max(1, math.ceil(timeout)),
            unix_socket=options.get("unix_socket"),
            client_flag=0,  # no CLIENT.MULTI_STATEMENTS: the server refuses a second statement
            # Every transaction of this session is read-only: DDL commits implicitly and would
            # end a lone START TRANSACTION READ ONLY, but not this.
            init_command="SET SESSION TRANSACTION READ ONLY",
        )
    except pymysql.Error as error:
        raise ProbeFailed(f"connect failed: {_mysql_message(error)}") from error
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


def _mysql_time_limit(cursor, timeout: float) -> None:
    import pymysql

    try:
        # MariaDB: seconds, for every statement.
        cursor.execute("SET SESSION max_statement_time = %s", (timeout,))
    except pymysql.Error:
        # MySQL: milliseconds, for SELECT.
        cursor.execute("SET SESSION max_execution_time = %s", (max(1, math.ceil(timeout * 1000)),))


def _mysql_message(error) -> str:
    args = getattr(error, "args", ())
    return str(args[1] if len(args) > 1 else error).strip()[:200]


def _sqlite_authorizer(action: int, arg1, arg2, _db, _trigger) -> int:
    if action in _SQLITE_WRITES:
        return sqlite3.SQLITE_DENY
    # PRAGMA name = value writes (arg2 is the value); a bare PRAGMA name reads.
    if action == sqlite3.SQLITE_PRAGMA and arg2 is not None:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _sqlite(path: str, statement: str, timeout: float):
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
