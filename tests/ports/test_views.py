"""The Ports pages: full page and htmx fragment from one URL, and terminate from the page."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


def test_it_renders_the_full_page_with_a_test_socket(operator_client, listening_child):
    child = listening_child(host="0.0.0.0")
    response = operator_client.get("/ports/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" in body and 'id="port-table"' in body
    assert f">{child.port}</a>" in body and "all interfaces" in body


def test_it_returns_only_the_table_to_htmx(operator_client, listening_child):
    child = listening_child()
    response = operator_client.get(
        "/ports/", {"q": str(child.port)}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert "<html" not in body
    assert body.strip().startswith('<div id="port-table"')
    assert f">{child.port}</a>" in body


def test_it_filters_and_sorts_without_javascript(operator_client, listening_child):
    child = listening_child()
    response = operator_client.get("/ports/", {"q": "no-such-thing-anywhere"})
    assert "No listening sockets match" in response.content.decode()
    sorted_desc = operator_client.get("/ports/", {"proto": "tcp", "sort": "-port"}).content.decode()
    assert 'aria-sort="descending"' in sorted_desc
    assert f">{child.port}</a>" in sorted_desc


def test_it_shows_a_port_with_its_process(operator_client, listening_child):
    child = listening_child()
    body = operator_client.get(f"/ports/{child.port}/").content.decode()
    assert f"Terminate pid {child.pid}" in body
    assert "Working directory" in body


def test_it_confirms_exactly_what_will_be_signalled(operator_client, listening_child):
    child = listening_child()
    response = operator_client.get(
        f"/ports/{child.port}/terminate/",
        {"pid": child.pid, "create_time": child.create_time()},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert f"Send SIGTERM to pid {child.pid}" in body
    assert "SIGKILL" in body and 'name="escalate"' in body
    assert child.process.poll() is None  # showing the confirmation signals nothing


def test_it_terminates_from_the_page(operator_client, listening_child):
    child = listening_child()
    response = operator_client.post(
        f"/ports/{child.port}/terminate/",
        {
            "pid": child.pid,
            "create_time": child.create_time(),
            "signal": "TERM",
            "grace_seconds": 5,
        },
    )
    assert response.status_code == 302
    assert child.process.wait(timeout=5) is not None
    page = operator_client.get(response["Location"]).content.decode()
    assert "exited after SIGTERM" in page


def test_it_reports_a_stale_target_on_the_page(operator_client, listening_child):
    child = listening_child()
    response = operator_client.post(
        f"/ports/{child.port}/terminate/",
        {"pid": child.pid + 100000, "create_time": 1.0, "signal": "TERM", "grace_seconds": 5},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 409
    assert "no longer holds" in response.content.decode()


def test_it_hides_terminate_from_a_viewer(client, viewer_user, listening_child):
    child = listening_child()
    client.force_login(viewer_user)
    body = client.get(f"/ports/{child.port}/").content.decode()
    assert "Terminate pid" not in body and "needs the operator role" in body
    response = client.post(
        f"/ports/{child.port}/terminate/",
        {
            "pid": child.pid,
            "create_time": child.create_time(),
            "signal": "TERM",
            "grace_seconds": 5,
        },
    )
    assert response.status_code == 403
    assert child.process.poll() is None


def test_it_finds_free_ports_on_the_page(operator_client):
    response = operator_client.get(
        "/ports/free/", {"near": 5000, "count": 3}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200 and body.count("<code>") == 3


def test_it_explains_bad_free_port_input(operator_client):
    response = operator_client.get("/ports/free/", {"near": 70000, "count": 3})
    assert response.status_code == 422
    assert "less than or equal to 65535" in response.content.decode()


def test_it_rerenders_the_whole_port_after_terminating_over_htmx(operator_client, listening_child):
    child = listening_child()
    response = operator_client.post(
        f"/ports/{child.port}/terminate/",
        {"pid": child.pid, "create_time": child.create_time()},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert response["HX-Retarget"] == "#port-detail"
    assert body.strip().startswith('<div id="port-detail">')
    assert "exited after SIGTERM" in body
    assert f"Terminate pid {child.pid}" not in body and 'badge-ok">free' in body


def test_it_offers_to_monitor_a_port_with_a_prefilled_check(operator_client, listening_child):
    child = listening_child()
    body = operator_client.get("/ports/", {"q": str(child.pid)}).content.decode()
    link = f"/checks/new/?port={child.port}&amp;host=127.0.0.1&amp;service=&amp;proto=tcp"
    assert link in body
    form = operator_client.get(f"/checks/new/?port={child.port}&host=127.0.0.1&proto=tcp")
    assert form.status_code == 200 and str(child.port) in form.content.decode()
