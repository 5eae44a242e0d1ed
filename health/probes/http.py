"""HTTP: method, headers, body, expected statuses, "body contains", size cap, overall timeout.

TLS is verified unless the check says otherwise; redirects are reported, not followed, unless
asked. Clients are shared per event loop and setting so that 2,000 checks do not each build an
SSL context every run.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from health.probes import ProbeFailed, ProbeResult

DEFAULT_MAX_BYTES = 1024 * 1024
_clients: dict[tuple[int, bool, bool], httpx.AsyncClient] = {}


def _client(verify: bool, follow: bool) -> httpx.AsyncClient:
    key = (id(asyncio.get_running_loop()), verify, follow)
    client = _clients.get(key)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            verify=verify,
            follow_redirects=follow,
            max_redirects=5,
            trust_env=False,  # a proxy from the environment must not sit between us and localhost
            # A fresh connection per probe: it measures connect time, notices a restarted
            # server at once, and keeps httpcore's pool (whose request assignment is quadratic
            # in its connections) down to the probes in flight.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
            headers={"User-Agent": "Portside-health/1"},
        )
        _clients[key] = client
    return client


async def close_clients() -> None:
    """Close the clients of the running loop (the scheduler calls this when it stops)."""
    loop_id = id(asyncio.get_running_loop())
    for key in [key for key in _clients if key[0] == loop_id]:
        await _clients.pop(key).aclose()


async def probe(target: dict, timeout: float) -> ProbeResult:
    url = target["url"]
    expected = [int(code) for code in (target.get("expected_status") or [200])]
    max_bytes = int(target.get("max_bytes") or DEFAULT_MAX_BYTES)
    client = _client(bool(target.get("verify_tls", True)), bool(target.get("follow_redirects")))
    body = target.get("body")
    started = time.perf_counter()
    try:
        request = client.build_request(
            (target.get("method") or "GET").upper(),
            url,
            headers=target.get("headers") or {},
            content=body.encode() if body else None,
            timeout=httpx.Timeout(timeout),
        )
        response = await client.send(request, stream=True)
    except httpx.ConnectError as error:
        raise ProbeFailed(f"connection failed: {error}") from error
    except httpx.TimeoutException as error:
        raise ProbeFailed(f"timed out after {timeout:g}s ({type(error).__name__})") from error
    except httpx.HTTPError as error:
        # Some transport errors carry no message (a server that closed mid-answer).
        reason = str(error) or "the server closed the connection"
        raise ProbeFailed(f"{type(error).__name__}: {reason}") from error
    try:
        # The body is read (up to the cap) so latency covers the whole answer; it is decoded
        # only when a "body contains" match needs the text.
        content, truncated = await _read_capped(
            response, max_bytes, decoded=bool(target.get("body_contains"))
        )
    except httpx.HTTPError as error:
        raise ProbeFailed(f"reading the body failed: {type(error).__name__}") from error
    finally:
        await response.aclose()
    latency = (time.perf_counter() - started) * 1000
    if response.status_code not in expected:
        raise ProbeFailed(
            f"HTTP {response.status_code}, expected {' or '.join(map(str, expected))}"
        )
    if (needle := target.get("body_contains")) and needle.encode() not in content:
        where = f"the first {max_bytes} bytes" if truncated else "the body"
        raise ProbeFailed(f"{where} did not contain {needle!r}")
    detail = f"HTTP {response.status_code}"
    if truncated:
        detail += f" (body cut at {max_bytes} bytes)"
    return ProbeResult(True, latency, detail)


async def _read_capped(
    response: httpx.Response, max_bytes: int, decoded: bool
) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes() if decoded else response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= max_bytes:
            # Stop reading: a huge or endless body must not cost memory or time.
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False
