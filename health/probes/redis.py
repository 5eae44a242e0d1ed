"""Redis: PING -> PONG over RESP (with AUTH first when a password is given); no redis-cli."""

from __future__ import annotations

import contextlib
import time

from health.probes.netpolicy import LOCAL_ONLY, NetworkPolicy, open_connection
from health.probes.results import ProbeFailed, ProbeResult, Target


def _command(*parts: str) -> bytes:
    encoded = [part.encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(
        b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded
    )


async def probe(
    target: Target, timeout: float, *, policy: NetworkPolicy = LOCAL_ONLY
) -> ProbeResult:
    started = time.perf_counter()
    host, port = target.get("host") or "127.0.0.1", int(target.get("port") or 6379)
    try:
        # To the address the policy judged, never to the name again (DNS rebinding).
        reader, writer = await open_connection(host, port, policy)
    except OSError as error:
        raise ProbeFailed(f"connect to {host}:{port} failed: {error.strerror or error}") from error
    try:
        if password := target.get("password"):
            username = target.get("username")
            auth = _command("AUTH", username, password) if username else _command("AUTH", password)
            writer.write(auth)
            await writer.drain()
            reply = await reader.readline()
            if not reply.startswith(b"+OK"):
                raise ProbeFailed(f"AUTH refused: {_text(reply)}")
        writer.write(_command("PING"))
        await writer.drain()
        reply = await reader.readline()
        if reply.strip() != b"+PONG":
            raise ProbeFailed(f"expected PONG, got {_text(reply) or 'nothing'}")
        return ProbeResult(True, (time.perf_counter() - started) * 1000, "PONG")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _text(reply: bytes) -> str:
    return reply.decode("utf-8", "replace").strip()[:120]
