"""The live exposure audit: a real sampler, the real watch service and a real Werkzeug debugger
started on 0.0.0.0 after both are running. Probes go to 127.0.0.1 only; the alert goes to a
webhook receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from console.asgi import application
from console.security import exposure_watch, exposures
from health import alerts
from health.models import Alert, AlertChannel
from ports import inventory
from ports.free_ports import find_free_port
from ports.sampler import Sampler
from tests.conftest import wait_until_async
from tests.security.servers import WERKZEUG_APP, start_server, stop_server

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE_S = 30  # generous: a busy 2-core machine


@contextlib.asynccontextmanager
async def sampler_and_watch():
    """The two background services as `serve` runs them, in this event loop."""
    stop = asyncio.Event()
    sampler = Sampler(take_snapshot=inventory.Inventory().snapshot, interval=0.1)
    tasks = [asyncio.create_task(sampler.run(stop)), asyncio.create_task(exposure_watch.run(stop))]
    try:
        await _until(lambda: exposure_watch.current() is not None and sampler.samples > 0)
        await _until(lambda: exposure_watch.current().seen is not None)
        yield exposure_watch.current()
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)


async def _until(predicate, timeout: float = DEADLINE_S):
    if result := await wait_until_async(predicate, timeout):
        return result
    raise AssertionError("condition not met before the deadline")


async def _fragment_with(channel: str, text: str) -> str:
    layer = get_channel_layer()
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        message = await asyncio.wait_for(layer.receive(channel), deadline - time.monotonic())
        if message["type"] == "page.fragment" and text in message["html"]:
            return message["html"]
    raise AssertionError(f"no fragment with {text!r}")


async def test_a_new_debugger_is_found_pushed_and_alerted_without_waiting_for_a_cache(receiver):
    told = await AlertChannel.objects.acreate(
        name="hook", kind="webhook", config={"url": receiver.url}, on_exposure=True
    )
    await AlertChannel.objects.acreate(name="quiet", kind="webhook", config={"url": receiver.url})
    layer = get_channel_layer()
    ports_page, security_page = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("ports-page", ports_page)
    await layer.group_add("security-page", security_page)
    port = find_free_port(24000)[0]
    async with sampler_and_watch() as watch:
        assert all(f.port != port for f in watch.audit().findings)
        server = await asyncio.to_thread(
            start_server, [sys.executable, "-c", WERKZEUG_APP, str(port)], port
        )
        try:
            badge = await _fragment_with(ports_page, f"{port} werkzeug-debugger")
            assert 'hx-swap-oob="true"' in badge and 'id="exposure-badge"' in badge
            section = await _fragment_with(security_page, "werkzeug-debugger")
            assert f">{port}</a>" in section and 'id="exposures"' in section
            finding = next(f for f in exposures.cached().findings if f.port == port)
            assert (finding.kind, finding.severity, finding.probed) == (
                "werkzeug-debugger",
                "danger",
                True,
            )
            # One alert, for the channel that asked, and delivered by the real alert worker.
            sent = await Alert.objects.filter(event="exposure").aget()
            assert sent.channel_id == told.id and str(port) in sent.message
            assert "Fix:" in sent.message
            stop_worker = asyncio.Event()
            worker = asyncio.create_task(alerts.worker(stop_worker, idle_poll_s=60))
            try:
                await _until(lambda: receiver.received)
            finally:
                stop_worker.set()
                await asyncio.wait_for(worker, timeout=10)
            _path, body = receiver.received[0]
            assert body["event"] == "exposure" and f"port {port}" in body["message"]
            # Seen again (another reconcile, the same listener): not news.
            watch.seen = None
            await exposure_watch._step(watch, watch.listeners(), layer)
            assert await Alert.objects.filter(event="exposure").acount() == 1
        finally:
            await asyncio.to_thread(stop_server, server)
        # Gone: its finding goes with it, and the pages are told.
        await _until(lambda: all(f.port != port for f in exposures.cached().findings))
        badge = await _fragment_with(ports_page, "exposure-badge")
        assert f"{port} werkzeug-debugger" not in badge


async def test_a_refresh_probes_every_listener_again_into_the_watch(listening_child):
    child = await asyncio.to_thread(listening_child, host="0.0.0.0")
    async with sampler_and_watch() as watch:
        await _until(lambda: any(f.port == child.port for f in watch.audit().findings))
        watch.findings = {}  # as if it had missed it
        audit = await sync_to_async(exposures.latest)(refresh=True)
        assert any(f.port == child.port and f.kind == "reachable" for f in audit.findings)
        assert any(f.port == child.port for f in watch.audit().findings)


def _ws_headers(cookie: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"host", b"127.0.0.1:8000"),
        (b"origin", b"http://127.0.0.1:8000"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_the_security_socket_is_for_admins_only(make_user, client, role):
    user = await sync_to_async(make_user)(f"someone-{role}", role)
    await sync_to_async(client.force_login)(user)
    communicator = WebsocketCommunicator(
        application, "/ws/security/", headers=_ws_headers(client.cookies["sessionid"].value)
    )
    connected, code = await communicator.connect()
    assert (connected, code) == (False, 4403)


async def test_the_security_socket_closes_when_its_admin_is_demoted(make_user, client, settings):
    settings.CONSOLE_WS_RECHECK_SECONDS = 0.2
    admin = await sync_to_async(make_user)("soon-viewer", "admin")
    await sync_to_async(client.force_login)(admin)
    communicator = WebsocketCommunicator(
        application, "/ws/security/", headers=_ws_headers(client.cookies["sessionid"].value)
    )
    connected, _ = await communicator.connect()
    assert connected
    await get_channel_layer().group_send(
        "security-page", {"type": "page.fragment", "html": "<section id='exposures'></section>"}
    )
    assert "exposures" in await communicator.receive_from(timeout=DEADLINE_S)
    await sync_to_async(admin.groups.clear)()  # a user in no group is a viewer
    closed = await communicator.receive_output(timeout=DEADLINE_S)
    assert closed == {"type": "websocket.close", "code": 4401}
