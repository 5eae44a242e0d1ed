"""TCP: connect, optionally send a line and expect a substring in the reply."""

from __future__ import annotations

import asyncio
import contextlib
import time

from health.probes.netpolicy import LOCAL_ONLY, NetworkPolicy, open_connection
from health.probes.results import ProbeFailed, ProbeResult, Target

REPLY_LIMIT = 64 * 1024


async def probe(
    target: Target, timeout: float, *, policy: NetworkPolicy = LOCAL_ONLY
) -> ProbeResult:
    started = time.perf_counter()
    host, port = target.get("host") or "127.0.0.1", int(target["port"])
    try:
        # To the address the policy judged, never to the name again (DNS rebinding).
        reader, writer = await open_connection(host, port, policy)
    except OSError as error:
        raise ProbeFailed(f"connect to {host}:{port} failed: {error.strerror or error}") from error
    try:
        detail = f"connected to {host}:{port}"
        if send := target.get("send"):
            writer.write(send.encode())
            await writer.drain()
        if expect := target.get("expect"):
            reply = await _read_until(reader, expect.encode())
            if expect.encode() not in reply:
                raise ProbeFailed(f"reply did not contain {expect!r}")
            detail = f"replied with {expect!r}"
        return ProbeResult(True, (time.perf_counter() - started) * 1000, detail)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _read_until(reader: asyncio.StreamReader, needle: bytes) -> bytes:
    data = b""
    while needle not in data and len(data) < REPLY_LIMIT:
        chunk = await reader.read(4096)
        if not chunk:
            break
        data += chunk
    return data
