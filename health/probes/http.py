"""HTTP: method, headers, body, expected statuses, "body contains", size cap, overall timeout.

TLS is verified unless the check says otherwise; redirects are reported, not followed, unless
asked. Clients are shared per event loop, setting and network policy so that 2,000 checks do
not each build an SSL context every run, and closed in their loop before it ends.

Every connection, the first and each redirect hop, goes through the network policy
(`health.probes.netpolicy`): httpcore asks our network backend for a TCP connection to a host
name, the backend resolves it, judges every address and connects to the judged address itself,
so a DNS answer cannot change between the check and the connect. TLS still gets the name
(httpcore passes the URL's host to `start_tls`), so SNI and certificate checks are unchanged.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import weakref
from collections.abc import AsyncGenerator, Iterable

import httpcore
import httpx

from health.probes.netpolicy import LOCAL_ONLY, NetworkPolicy, resolve_allowed
from health.probes.results import ProbeFailed, ProbeResult, Target

DEFAULT_MAX_BYTES = 1024 * 1024
# Clients of policies an admin has since replaced are retired beyond this many per loop: not
# closed at once (a probe may still be using one, and with no keep-alive they hold no idle
# connection), but with the others when their loop ends, if still in use then.
MAX_CLIENTS_PER_LOOP = 16


class PolicyNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, with every TCP connect judged by a `NetworkPolicy`."""

    def __init__(
        self, policy: NetworkPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve_allowed(host, port, self.policy)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from error
        except OSError as error:  # the name does not resolve: what a plain connect would say
            raise httpcore.ConnectError(str(error)) from error
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as error:
                failure = error
        assert failure is not None  # resolve_allowed returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # A check's URL never names a socket file; nothing here should ask for one.
        raise httpcore.ConnectError("unix sockets are not reachable from a check")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PolicyTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool whose connects go through the policy."""

    def __init__(
        self,
        policy: NetworkPolicy,
        *,
        verify: bool | ssl.SSLContext,
        limits: httpx.Limits,
    ) -> None:
        context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=context, limits=limits, trust_env=False)
        # httpx gives no way to pass httpcore's `network_backend`, so the pool it built is
        # replaced by one that has it (same settings). Every request goes through `_pool`.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PolicyNetworkBackend(policy),
        )


class _LoopClients:
    """The clients of one event loop, closed in that loop before it ends."""

    def __init__(self) -> None:
        self.by_settings: dict[tuple[bool, bool, NetworkPolicy], httpx.AsyncClient] = {}
        self.retired: weakref.WeakSet[httpx.AsyncClient] = weakref.WeakSet()
        self._closer: AsyncGenerator[None] | None = None

    def get(self, verify: bool, follow: bool, policy: NetworkPolicy) -> httpx.AsyncClient:
        key = (verify, follow, policy)
        client = self.by_settings.get(key)
        if client is None or client.is_closed:
            held = list(self.by_settings)
            for oldest in held[: max(0, len(held) - MAX_CLIENTS_PER_LOOP + 1)]:
                self.retired.add(self.by_settings.pop(oldest))  # dicts keep insertion order
            client = self.by_settings[key] = _new_client(verify, follow, policy)
        return client

    async def close_when_the_loop_ends(self) -> None:
        """Park an async generator whose `finally` closes the clients.

        A loop ends by closing its async generators (`loop.shutdown_asyncgens`, which
        asyncio.run, asyncio.Runner and so uvicorn and asgiref's async_to_sync call): the
        clients are closed there, in their own loop, while it still runs. Closed later from
        another loop, or collected unclosed, they would fail with "Event loop is closed".
        """
        if self._closer is None:
            self._closer = self._closing()
            await anext(self._closer)

    async def close(self) -> None:
        closer, self._closer = self._closer, None
        if closer is None:
            await self._close_clients()
        else:
            await closer.aclose()  # runs its finally: nothing stays parked for the collector

    async def _closing(self) -> AsyncGenerator[None]:
        try:
            yield
        finally:
            # A finished generator still holds its loop's finalizer hook, so its loop: let go.
            self._closer = None
            await self._close_clients()

    async def _close_clients(self) -> None:
        clients = [*self.by_settings.values(), *self.retired]
        self.by_settings.clear()
        self.retired.clear()
        for client in clients:
            await client.aclose()


# Keyed by the loop itself, not its id: a new loop may reuse an ended one's id.
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
    weakref.WeakKeyDictionary()
)


def _clients_of_running_loop() -> _LoopClients:
    loop = asyncio.get_running_loop()
    clients = _by_loop.get(loop)
    if clients is None:
        clients = _by_loop[loop] = _LoopClients()
    return clients


def _client(verify: bool, follow: bool, policy: NetworkPolicy) -> httpx.AsyncClient:
    return _clients_of_running_loop().get(verify, follow, policy)


def _new_client(verify: bool, follow: bool, policy: NetworkPolicy) -> httpx.AsyncClient:
    # A fresh connection per probe: it measures connect time, notices a restarted server at
    # once, and keeps httpcore's pool (whose request assignment is quadratic in its
    # connections) down to the probes in flight.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    return httpx.AsyncClient(
        transport=PolicyTransport(policy, verify=verify, limits=limits),
        follow_redirects=follow,  # each hop is a new connect, judged by the policy
        max_redirects=5,
        trust_env=False,  # a proxy from the environment must not sit between us and localhost
        headers={"User-Agent": "Portside-health/1"},
    )


async def close_clients() -> None:
    """Close the clients of the running loop now (the scheduler calls this when it stops)."""
    clients = _by_loop.pop(asyncio.get_running_loop(), None)
    if clients is not None:
        await clients.close()


async def probe(
    target: Target, timeout: float, *, policy: NetworkPolicy = LOCAL_ONLY
) -> ProbeResult:
    url = target["url"]
    expected = [int(code) for code in (target.get("expected_status") or [200])]
    max_bytes = int(target.get("max_bytes") or DEFAULT_MAX_BYTES)
    await _clients_of_running_loop().close_when_the_loop_ends()
    client = _client(
        bool(target.get("verify_tls", True)), bool(target.get("follow_redirects")), policy
    )
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
