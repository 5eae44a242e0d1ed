"""The ports API against real sockets opened by the test's own children."""

from __future__ import annotations

import socket

import pytest

from console.foundation.models import AuditEntry
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db


def _items(client, headers, **params):
    response = client.get("/api/v1/ports", params, headers=headers)
    assert response.status_code == 200, response.content
    return response.json()


def test_it_lists_a_socket_the_test_opened_with_its_process(
    client, viewer_user, bearer, listening_child
):
    child = listening_child(host="127.0.0.1")
    body = _items(client, bearer(viewer_user), port=child.port)
    assert body["count"] == 1
    (item,) = body["items"]
    assert item["proto"] == "tcp" and item["address"] == "127.0.0.1"
    assert item["exposure"] == "loopback" and item["pid"] == child.pid
    assert item["process"]["name"].startswith("python")
    assert abs(item["process"]["create_time"] - child.create_time()) < 0.05
    assert item["is_console"] is False


def test_it_filters_by_exposure_protocol_and_search(client, viewer_user, bearer, listening_child):
    exposed = listening_child(host="0.0.0.0")
    headers = bearer(viewer_user)
    everywhere = _items(client, headers, exposure="all")["items"]
    assert exposed.port in {item["port"] for item in everywhere}
    assert all(item["exposure"] == "all" for item in everywhere)
    assert not _items(client, headers, port=exposed.port, proto="udp")["items"]
    found = _items(client, headers, q=str(exposed.pid))["items"]
    assert exposed.port in {item["port"] for item in found}


def test_it_pages_the_list(client, viewer_user, bearer):
    headers = bearer(viewer_user)
    whole = _items(client, headers)
    page = _items(client, headers, limit=1, offset=0)
    assert page["count"] == whole["count"] and len(page["items"]) <= 1


def test_it_describes_one_port(client, viewer_user, bearer, listening_child):
    child = listening_child()
    response = client.get(f"/api/v1/ports/{child.port}", headers=bearer(viewer_user))
    body = response.json()
    assert body["port"] == child.port and body["free"] is False
    assert body["listeners"][0]["pid"] == child.pid


# The route takes any path segment and the schema judges it, so a word or a negative number is
# a 422 naming the field, like a number out of range, never a 404.
@pytest.mark.parametrize("bad", ["0", "70000", "abc", "-1"])
def test_it_refuses_impossible_ports_with_422(client, viewer_user, operator_user, bearer, bad):
    response = client.get(f"/api/v1/ports/{bad}", headers=bearer(viewer_user))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "port"]
    headers = bearer(operator_user)  # a viewer's POST is refused before it is parsed (403)
    response = client.post(
        f"/api/v1/ports/{bad}/terminate",
        {"pid": 2, "create_time": 1.0},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "port"]


def test_it_answers_422_not_404_for_out_of_range_numbers(client, viewer_user, bearer):
    headers = bearer(viewer_user)
    for bad in ("0", "70000"):
        response = client.get(f"/api/v1/ports/{bad}", headers=headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == "port"


def test_it_refuses_a_terminate_without_pid_or_create_time(client, operator_user, bearer):
    response = client.post(
        "/api/v1/ports/5000/terminate",
        {"signal": "TERM"},
        content_type="application/json",
        headers=bearer(operator_user),
    )
    assert response.status_code == 422
    missing = {error["loc"][-1] for error in response.json()["detail"]}
    assert missing == {"pid", "create_time"}


def test_it_refuses_malformed_json(client, operator_user, bearer):
    response = client.post(
        "/api/v1/ports/5000/terminate",
        "{not json",
        content_type="application/json",
        headers=bearer(operator_user),
    )
    # Not JSON at all is a bad request (400); JSON with wrong fields would be a 422.
    assert response.status_code == 400
    assert response.json() == {"detail": "Cannot parse request body"}


def test_it_refuses_an_unknown_signal(client, operator_user, bearer):
    response = client.post(
        "/api/v1/ports/5000/terminate",
        {"pid": 5, "create_time": 1.0, "signal": "HUP"},
        content_type="application/json",
        headers=bearer(operator_user),
    )
    assert response.status_code == 422


def test_it_terminates_a_real_child_for_an_operator(client, operator_user, bearer, listening_child):
    child = listening_child()
    response = client.post(
        f"/api/v1/ports/{child.port}/terminate",
        {"pid": child.pid, "create_time": child.create_time(), "grace_seconds": 5},
        content_type="application/json",
        headers=bearer(operator_user),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["outcome"] == "terminated" and body["released"] is True
    assert child.process.wait(timeout=5) is not None
    entry = AuditEntry.objects.get(action="port.terminate")
    assert entry.username == "olive" and entry.outcome == "terminated"


def test_it_answers_409_for_a_stale_create_time(client, operator_user, bearer, listening_child):
    child = listening_child()
    response = client.post(
        f"/api/v1/ports/{child.port}/terminate",
        {"pid": child.pid, "create_time": child.create_time() - 100},
        content_type="application/json",
        headers=bearer(operator_user),
    )
    assert response.status_code == 409
    assert child.process.poll() is None


def test_it_forbids_a_viewer_to_terminate(client, viewer_user, bearer, listening_child):
    child = listening_child()
    response = client.post(
        f"/api/v1/ports/{child.port}/terminate",
        {"pid": child.pid, "create_time": child.create_time()},
        content_type="application/json",
        headers=bearer(viewer_user),
    )
    assert response.status_code == 403
    assert "operator" in response.json()["detail"]
    assert child.process.poll() is None
    assert AuditEntry.objects.get(action="port.terminate").outcome == "forbidden"


def test_it_finds_free_ports_skipping_a_held_one(client, viewer_user, bearer):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    held = holder.getsockname()[1]
    try:
        response = client.get(
            "/api/v1/ports/free", {"near": held, "count": 3}, headers=bearer(viewer_user)
        )
        ports = response.json()["ports"]
        assert len(ports) == 3 and held not in ports and all(p > held for p in ports)
    finally:
        holder.close()


@pytest.mark.parametrize("params", [{"near": 0}, {"near": 70000}, {"count": 0}, {"near": "x"}])
def test_it_refuses_bad_free_port_questions(client, viewer_user, bearer, params):
    response = client.get("/api/v1/ports/free", params, headers=bearer(viewer_user))
    assert response.status_code == 422


def test_it_publishes_an_openapi_spec_to_token_holders_and_signed_in_users(
    client, viewer_user, bearer
):
    assert client.get("/api/v1/openapi.json").status_code == 401
    assert client.get("/api/v1/docs").status_code == 401
    response = client.get("/api/v1/openapi.json", headers=bearer(viewer_user))
    assert response.status_code == 200
    client.force_login(viewer_user)
    assert client.get("/api/v1/docs").status_code == 200
    paths = response.json()["paths"]
    assert {
        "/api/v1/ports",
        "/api/v1/ports/{port}",
        "/api/v1/ports/{port}/terminate",
        "/api/v1/ports/free",
        "/api/v1/auth/token",
    } <= set(paths)


def test_it_sees_a_port_close(client, viewer_user, bearer, listening_child):
    child = listening_child()
    headers = bearer(viewer_user)
    child.stop()
    assert wait_until(lambda: _items(client, headers, port=child.port)["count"] == 0)


@pytest.mark.parametrize("path", ["/api/v1/ports", "/api/v1/events", "/api/v1/projects"])
def test_it_refuses_an_offset_beyond_any_list_with_422(client, viewer_user, bearer, path):
    response = client.get(path, {"offset": 72374858661172953088}, headers=bearer(viewer_user))
    assert response.status_code == 422
