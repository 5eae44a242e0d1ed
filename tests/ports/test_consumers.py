"""Websockets through the whole ASGI app: guards, authentication, live events from real sockets."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator

from console.asgi import application
from ports.free_ports import find_free_port
from ports.models import Project
from tests.conftest import spawn_listener
from tests.ports.live_helpers import running_sampler

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "http://127.0.0.1:8000"


def _headers(
    *, origin: str | None = ORIGIN, cookie: str | None = None, bearer: str | None = None
) -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"127.0.0.1:8000")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    if bearer is not None:
        headers.append((b"authorization", f"Bearer {bearer}".encode()))
    return headers


@pytest.fixture
def session_cookie(client, viewer_user):
    client.force_login(viewer_user)
    return client.cookies["sessionid"].value


@pytest.fixture
def access_token(viewer_user):
    from console.foundation import tokens

    return tokens.issue_pair(viewer_user)["access"]


async def _connect(path: str, headers) -> tuple[WebsocketCommunicator, bool, object]:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, detail = await communicator.connect(timeout=5)
    return communicator, connected, detail


async def test_it_streams_json_events_to_a_bearer_token_without_origin(access_token):
    port = find_free_port(30000)[0]
    # The registry knows the port: the event names the project, as the API does.
    await Project.objects.acreate(name="events-demo", preferred_port=port)
    communicator, connected, _ = await _connect(
        "/ws/v1/events", _headers(origin=None, bearer=access_token)
    )
    assert connected
    await communicator.send_json_to({"subscribe": {"ports": [port]}})
    assert await communicator.receive_json_from() == {
        "type": "subscribed",
        "ports": [port],
        "checks": None,
    }
    async with running_sampler():
        child = await asyncio.to_thread(spawn_listener, port=port)
        try:
            opened = await communicator.receive_json_from(timeout=10)
            assert opened["type"] == "port.opened" and opened["listener"]["port"] == port
            # On a busy machine the first sample can see the socket before its owner's fd scan
            # does; the owner then follows as an owner-changed event for the same socket.
            owned = opened
            while owned["listener"]["pid"] is None:
                owned = await communicator.receive_json_from(timeout=10)
                assert owned["type"] == "port.owner-changed"
            assert owned["listener"]["pid"] == child.pid
            assert owned["listener"]["process"]["name"].startswith("python")
            assert opened["listener"]["project"] == "events-demo"
        finally:
            await asyncio.to_thread(child.stop)
        closed = await communicator.receive_json_from(timeout=10)
        assert closed["type"] == "port.closed" and closed["listener"]["port"] == port
    await communicator.disconnect()


async def test_it_narrows_the_stream_to_subscribed_ports(access_token):
    wanted, other = find_free_port(30100, count=2)
    communicator, connected, _ = await _connect(
        "/ws/v1/events", _headers(origin=None, bearer=access_token)
    )
    assert connected
    await communicator.send_json_to({"subscribe": {"ports": [wanted]}})
    await communicator.receive_json_from()
    async with running_sampler():
        noise = await asyncio.to_thread(spawn_listener, port=other)
        try:
            assert await communicator.receive_nothing(timeout=0.4)
        finally:
            await asyncio.to_thread(noise.stop)
    await communicator.disconnect()


async def test_it_explains_a_bad_subscription(access_token):
    communicator, connected, _ = await _connect(
        "/ws/v1/events", _headers(origin=None, bearer=access_token)
    )
    assert connected
    for bad in ({"subscribe": {"ports": [0]}}, {"subscribe": {"ports": "5000"}}, ["x"]):
        await communicator.send_json_to(bad)
        reply = await communicator.receive_json_from()
        assert reply["type"] == "error" and "subscribe" in reply["detail"]
    await communicator.send_to(text_data="{not json")
    assert (await communicator.receive_json_from())["detail"] == "not JSON"
    await communicator.disconnect()


async def test_it_accepts_a_session_with_the_exact_origin(session_cookie):
    communicator, connected, _ = await _connect("/ws/v1/events", _headers(cookie=session_cookie))
    assert connected
    await communicator.disconnect()


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.test",
        "http://127.0.0.1:3000",
        "http://localhost:8000",
        "https://127.0.0.1:8000",
    ],
)
@pytest.mark.parametrize("path", ["/ws/v1/events", "/ws/ports/"])
async def test_it_refuses_a_session_from_any_other_origin(session_cookie, origin, path):
    _communicator, connected, code = await _connect(
        path, _headers(origin=origin, cookie=session_cookie)
    )
    assert not connected and code == 4403


@pytest.mark.parametrize("path", ["/ws/v1/events", "/ws/ports/"])
async def test_it_refuses_a_session_cookie_without_origin(session_cookie, path):
    _communicator, connected, code = await _connect(
        path, _headers(origin=None, cookie=session_cookie)
    )
    assert not connected and code == 4403


@pytest.mark.parametrize("path", ["/ws/v1/events", "/ws/ports/"])
async def test_it_refuses_an_anonymous_client(path):
    _communicator, connected, code = await _connect(path, _headers())
    assert not connected and code == 4401


async def test_it_refuses_a_bad_bearer_token_and_never_falls_back_to_the_cookie(session_cookie):
    _communicator, connected, code = await _connect(
        "/ws/v1/events", _headers(cookie=session_cookie, bearer="not-a-token")
    )
    assert not connected and code == 4401


async def test_it_refuses_a_foreign_host_header(access_token):
    communicator = WebsocketCommunicator(
        application,
        "/ws/v1/events",
        headers=[(b"host", b"evil.test"), (b"authorization", f"Bearer {access_token}".encode())],
    )
    connected, code = await communicator.connect()
    assert not connected and code == 4403


async def test_it_pushes_matching_rows_to_the_page_and_nothing_else(session_cookie):
    wanted, other = find_free_port(30200, count=2)
    communicator, connected, _ = await _connect("/ws/ports/", _headers(cookie=session_cookie))
    assert connected
    async with running_sampler():
        # The page's hidden filter form: only this port, and the table is current.
        await communicator.send_json_to({"q": str(wanted), "since": "9999999999"})
        noise = await asyncio.to_thread(spawn_listener, port=other)
        try:
            assert await communicator.receive_nothing(timeout=0.4)
        finally:
            await asyncio.to_thread(noise.stop)
        child = await asyncio.to_thread(spawn_listener, port=wanted)
        try:
            # One message per swap: a <tbody> after a <tr> in one message would be dropped.
            insert = await communicator.receive_from(timeout=5)
            assert insert.startswith('<tbody hx-swap-oob="beforeend:#port-rows">')
            assert f">{wanted}</a>" in insert and "just-opened" in insert
            notices = await communicator.receive_from(timeout=5)
            assert f"port {wanted} opened by python (pid {child.pid})" in notices
        finally:
            await asyncio.to_thread(child.stop)
        removal = await communicator.receive_from(timeout=5)
        assert removal.startswith('<div hx-swap-oob="beforeend:#port-removals">')
        assert f'data-remove="listener-tcp4-{wanted}-' in removal
        assert f"port {wanted} closed" in await communicator.receive_from(timeout=5)
    await communicator.disconnect()


async def test_it_renders_a_message_of_changes_off_the_event_loop(session_cookie, monkeypatch):
    """Rendering on the loop would hold every other socket back; each fragment still goes alone."""
    from channels.layers import get_channel_layer

    from ports import consumers, sampler
    from ports.inventory.records import Listener, ProcessInfo
    from ports.models import PortEvent

    rendered_on_the_loop = []
    render = consumers.render_to_string

    def recording_render(name, context):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            rendered_on_the_loop.append(name)
        return render(name, context)

    monkeypatch.setattr(consumers, "render_to_string", recording_render)
    process = ProcessInfo(11, "gunicorn", "dev", "gunicorn app", "/src", create_time=1000.0)
    listener = Listener(
        proto="tcp",
        family="ipv4",
        address="127.0.0.1",
        port=5055,
        inode=4242,
        uid=1000,
        pids=(11,),
        process=process,
    )
    handed_over = sampler.PortChange(PortEvent.OWNER_CHANGED, 1.0, listener, previous_pids=(10,))
    communicator, connected, _ = await _connect("/ws/ports/", _headers(cookie=session_cookie))
    assert connected
    await get_channel_layer().group_send(
        sampler.GROUP, {"type": "ports.changes", "changes": [handed_over.as_message()]}
    )
    # The page never showed the old row (it sent no filter): nothing to remove, only the new.
    insert = await communicator.receive_from(timeout=5)
    notices = await communicator.receive_from(timeout=5)
    assert insert.startswith('<tbody hx-swap-oob="beforeend:#port-rows">')
    assert "<tr " in insert
    assert "port 5055 is now held by gunicorn (pid 11)" in notices
    assert rendered_on_the_loop == []
    await communicator.disconnect()


async def test_it_resyncs_the_rows_when_the_page_is_behind(session_cookie):
    communicator, connected, _ = await _connect("/ws/ports/", _headers(cookie=session_cookie))
    assert connected
    await communicator.send_json_to({"q": "", "since": "0"})
    html = await communicator.receive_from(timeout=2)
    assert html.strip().startswith('<tbody id="port-rows"') and 'hx-swap-oob="outerHTML"' in html
    await communicator.disconnect()


async def test_it_streams_check_state_changes_as_json(access_token):
    from datetime import UTC, datetime

    from health.live import publish_results
    from health.storage import Transition

    communicator, connected, _ = await _connect(
        "/ws/v1/events", _headers(origin=None, bearer=access_token)
    )
    assert connected
    await communicator.send_json_to({"subscribe": {"checks": [7]}})
    assert (await communicator.receive_json_from())["checks"] == [7]
    at = datetime.now(tz=UTC)
    other = Transition(8, "db", "database", "up", "down", at, "refused", None)
    mine = Transition(7, "api http", "main_api", "up", "down", at, "connection refused", 3.5)
    await publish_results([], [other, mine])
    event = await communicator.receive_json_from(timeout=2)
    assert event["type"] == "check.state" and event["at"] == at.isoformat()
    assert event["check"] == {
        "id": 7,
        "name": "api http",
        "service": "main_api",
        "from": "up",
        "state": "down",
        "detail": "connection refused",
        "latency_ms": 3.5,
    }
    assert await communicator.receive_nothing(timeout=0.2)  # check 8 is not subscribed
    await communicator.disconnect()


def _change(kind: str, port: int, pid: int = 11, at: float = 1796300000.0) -> dict:
    from ports import sampler
    from ports.inventory.records import Listener, ProcessInfo

    process = ProcessInfo(pid, "python", "dev", f"python kernel {port}", "/src", create_time=1.0)
    listener = Listener(
        proto="tcp",
        family="ipv4",
        address="127.0.0.1",
        port=port,
        inode=port,
        uid=1000,
        pids=(pid,),
        process=process,
    )
    return sampler.PortChange(kind, at, listener).as_message()


def _no_servers(listeners):
    return {}


def test_it_names_no_row_the_page_does_not_show():
    from ports.consumers import _change_fragments
    from ports.listing import ListenerFilter

    shown: dict[str, str] = {}
    fragments = _change_fragments(
        [_change("closed", 5055), _change("owner-changed", 5056)],
        ListenerFilter(q="5056"),
        shown,
        _no_servers,
    )
    assert not any("port-removals" in fragment for fragment in fragments)
    assert fragments[0].startswith('<tbody hx-swap-oob="beforeend:#port-rows">')
    assert shown == {"listener-tcp4-5056-5056": ""}
    assert "port 5056 is now held by python" in fragments[-1]
    assert "5055" not in fragments[-1]  # no notice of a row the page never had


def test_it_removes_a_shown_row_and_tells_when():
    from ports.consumers import _change_fragments
    from ports.listing import ListenerFilter

    shown = {"listener-tcp4-5055-5055": ""}
    removal, notices = _change_fragments(
        [_change("closed", 5055)], ListenerFilter(), shown, _no_servers
    )
    assert removal == (
        '<div hx-swap-oob="beforeend:#port-removals"><i data-remove="listener-tcp4-5055-5055">'
        "</i></div>"
    )
    assert shown == {}
    assert 'data-port="5055"' in notices
    assert '<time datetime="2026-12-03T' in notices
    assert 'aria-label="Dismiss: port 5055 closed"' in notices


def test_it_inserts_a_group_header_with_its_first_row_and_removes_it_with_the_last():
    from ports.consumers import _change_fragments
    from ports.inventory.records import Server
    from ports.listing import ListenerFilter

    notebook = Server(10, 1.0, "jupyter-lab", "jupyter lab", "Jupyter", (10, 11, 12), True)

    def servers_of(listeners):
        return {listener.inode: notebook for listener in listeners}

    grouped = ListenerFilter(group_by_server=True)
    shown: dict[str, str] = {}
    first = _change_fragments([_change("opened", 40001, pid=11)], grouped, shown, servers_of)
    assert 'id="server-10-100" class="server-group just-opened"' in first[0]
    assert 'data-group="server-10-100"' in first[0]
    second = _change_fragments([_change("opened", 40002, pid=12)], grouped, shown, servers_of)
    assert "server-group" not in second[0]  # the header is on the page already
    assert set(shown.values()) == {"server-10-100"}
    (removal, _notices) = _change_fragments(
        [_change("closed", 40001, pid=11)], grouped, shown, servers_of
    )
    assert 'data-remove="server-10-100"' not in removal  # a kernel is left under it
    (removal, _notices) = _change_fragments(
        [_change("closed", 40002, pid=12)], grouped, shown, servers_of
    )
    assert 'data-remove="listener-tcp4-40002-40002"></i><i data-remove="server-10-100">' in removal
    assert shown == {}
