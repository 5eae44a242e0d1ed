"""/ws/ports/<port>/: the port page's sections pushed again when its port opens, closes or
changes owner, through the same guards as every socket."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from channels.testing import WebsocketCommunicator

from console.asgi import application
from ports import inventory
from ports.free_ports import find_free_port
from tests.conftest import spawn_listener, wait_until
from tests.ports.live_helpers import running_sampler

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")]


def _headers(cookie: str | None) -> list[tuple[bytes, bytes]]:
    return HEADERS + ([(b"cookie", f"sessionid={cookie}".encode())] if cookie else [])


@pytest.fixture
def viewer_cookie(client, viewer_user):
    client.force_login(viewer_user)
    return client.cookies["sessionid"].value


@pytest.fixture
def operator_cookie(client, operator_user):
    client.force_login(operator_user)
    return client.cookies["sessionid"].value


@contextlib.asynccontextmanager
async def port_socket(port: int, cookie: str | None):
    communicator = WebsocketCommunicator(
        application, f"/ws/ports/{port}/", headers=_headers(cookie)
    )
    connected, code = await communicator.connect(timeout=5)
    try:
        yield communicator, connected, code
    finally:
        await communicator.disconnect()


async def _receive_until(communicator, wanted, timeout: float = 15.0) -> str:
    """The first message for which wanted(html) holds, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    seen = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            html = await communicator.receive_from(timeout=left)
        except TimeoutError:
            break
        if wanted(html):
            return html
        seen.append(html)
    raise AssertionError(f"no wanted message within {timeout} s; got {len(seen)} others")


async def test_it_refuses_a_socket_without_a_session():
    async with port_socket(find_free_port(31000)[0], None) as (_, connected, code):
        assert not connected
        assert code == 4401


@pytest.mark.parametrize("port", [0, 70000])
async def test_it_refuses_a_port_out_of_range(viewer_cookie, port):
    async with port_socket(port, viewer_cookie) as (_, connected, code):
        assert not connected
        assert code == 4404


async def test_it_pushes_the_sections_when_the_port_opens_and_closes(viewer_cookie):
    (port,) = find_free_port(31100)
    async with port_socket(port, viewer_cookie) as (communicator, connected, _):
        assert connected
        async with running_sampler():
            child = await asyncio.to_thread(spawn_listener, port=port)
            try:
                opened = await _receive_until(communicator, lambda html: str(child.pid) in html)
            finally:
                await asyncio.to_thread(child.stop)
            closed = await _receive_until(communicator, lambda html: 'badge-ok">free' in html)
    # Every live section, each swapped by its id; the Terminate panel is not among them.
    for section in ("port-badge", "explanation", "port-holders", "port-history"):
        assert f'id="{section}" hx-swap-oob="true"' in opened
    assert 'id="terminate-panel"' not in opened
    assert "still open" in opened and "in use" in opened
    # A viewer's page never gets a button it cannot use.
    assert f"Terminate pid {child.pid}…</a>" not in opened
    assert "Stop the server…</a>" not in opened
    assert "needs the operator role" in opened
    assert "still open" not in closed
    assert f"History of port {port}" in closed


async def test_it_gives_an_operator_the_buttons(operator_cookie):
    (port,) = find_free_port(31200)
    async with port_socket(port, operator_cookie) as (communicator, connected, _):
        assert connected
        async with running_sampler():
            child = await asyncio.to_thread(spawn_listener, port=port)
            try:
                html = await _receive_until(
                    communicator, lambda html: f"Terminate pid {child.pid}" in html
                )
            finally:
                await asyncio.to_thread(child.stop)
    assert "Stop the server…</a>" in html


async def test_it_stays_quiet_about_other_ports(viewer_cookie):
    watched, other = find_free_port(31300, count=2)
    async with port_socket(watched, viewer_cookie) as (communicator, connected, _):
        assert connected
        async with running_sampler():
            noise = await asyncio.to_thread(spawn_listener, port=other)
            try:
                # Held until the sampler has told the other port's opening to the group.
                assert await asyncio.to_thread(
                    wait_until, lambda: inventory.Inventory().snapshot().on_port(other), 10.0
                )
                assert await communicator.receive_nothing(timeout=0.5)
            finally:
                await asyncio.to_thread(noise.stop)


async def test_it_resyncs_a_page_that_asks(viewer_cookie):
    (port,) = find_free_port(31400)
    async with port_socket(port, viewer_cookie) as (communicator, connected, _):
        assert connected
        # No sampler runs in this process: whether anything changed is unknown, so it answers.
        await communicator.send_to(text_data='{"since": 0}')
        html = await communicator.receive_from(timeout=10)
        assert f"History of port {port}" in html
        for junk in ("not json", "[1]", '{"since": "soon"}', "x" * 5000):
            await communicator.send_to(text_data=junk)
        assert await communicator.receive_nothing(timeout=0.3)


async def test_it_looks_again_at_a_port_that_is_neither_held_nor_free(viewer_cookie, monkeypatch):
    """TIME_WAIT ends without a sampler event: the socket renders again until the port settles,
    and sends only what changed."""
    from ports import port_consumer

    answers = iter(
        [("<p id='a'>1</p>", False), ("<p id='a'>1</p>", False), ("<p id='a'>2</p>", True)]
    )
    renders = []

    def render(self):
        renders.append(1)
        return next(answers)

    monkeypatch.setattr(port_consumer, "RECHECK_SECONDS", 0.05)
    monkeypatch.setattr(port_consumer.PortPageConsumer, "_render", render)
    async with port_socket(find_free_port(31500)[0], viewer_cookie) as (communicator, *_):
        await communicator.send_to(text_data='{"since": 0}')
        assert await communicator.receive_from(timeout=5) == "<p id='a'>1</p>"
        assert await communicator.receive_from(timeout=5) == "<p id='a'>2</p>"
        assert await communicator.receive_nothing(timeout=0.3)
    assert len(renders) == 3
