"""Query: a statement (SELECT 1 by default) through a DSN: postgresql://... or sqlite:///path.

A Django database alias is turned into a DSN by the caller (`health.runner`), so this module
stays free of Django.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from urllib.parse import quote, unquote, urlparse

from health.probes import ProbeFailed, ProbeResult


async def probe(target: dict, timeout: float) -> ProbeResult:
    dsn = target.get("dsn") or ""
    statement = target.get("query") or "SELECT 1"
    scheme = urlparse(dsn).scheme
    started = time.perf_counter()
    if scheme in {"postgres", "postgresql"}:
        row = await _postgres(dsn, statement, timeout)
    elif scheme == "sqlite":
        path = unquote(urlparse(dsn).path)
        # sqlite:////abs/path (four slashes) is absolute; sqlite:///rel/path is relative.
        path = path[1:] if path.startswith("//") else path.lstrip("/") or path
        row = await asyncio.to_thread(_sqlite, path, statement, timeout)
    else:
        raise ProbeFailed(f"unsupported database {scheme or dsn!r}: use postgresql:// or sqlite://")
    latency = (time.perf_counter() - started) * 1000
    return ProbeResult(True, latency, f"returned {row!r}"[:300])


async def _postgres(dsn: str, statement: str, timeout: float):
    import psycopg

    try:
        connection = await psycopg.AsyncConnection.connect(
            dsn, connect_timeout=max(1, int(timeout)), autocommit=True
        )
    except psycopg.OperationalError as error:
        raise ProbeFailed(f"connect failed: {str(error).strip()[:200]}") from error
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(statement)
            return await cursor.fetchone() if cursor.description else None
    except psycopg.Error as error:
        raise ProbeFailed(f"query failed: {str(error).strip()[:200]}") from error
    finally:
        await connection.close()


def _sqlite(path: str, statement: str, timeout: float):
    try:
        # Read-only: a health check must never create or change the database it looks at.
        connection = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error as error:
        raise ProbeFailed(f"cannot open {path}: {error}") from error
    try:
        return connection.execute(statement).fetchone()
    except sqlite3.Error as error:
        raise ProbeFailed(f"query failed: {error}") from error
    finally:
        connection.close()
