"""The port page and the free-port page: words that agree with the badge, commands as code, every
form error on its field, and no button a viewer cannot use."""

from __future__ import annotations

import re

import pytest

from ports.free_ports import find_free_port
from ports.templatetags.port_text import code_spans

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


@pytest.fixture
def viewer_client(client, viewer_user):
    client.force_login(viewer_user)
    return client


def _heading(body: str) -> str:
    match = re.search(r'id="explanation">.*?<h2>(.*?)</h2>', body, re.S)
    assert match, "the page has no explanation"
    return match.group(1)


def test_it_says_free_beside_a_free_badge(operator_client):
    (port,) = find_free_port(32000)
    body = operator_client.get(f"/ports/{port}/").content.decode()
    assert 'id="port-badge"><span class="badge badge-ok">free</span>' in body
    assert _heading(body) == "Free"
    assert "already in use" not in body
    assert f"Register port {port} for a project" in body


def test_it_explains_address_in_use_only_when_the_port_is_taken(operator_client, listening_child):
    child = listening_child()
    body = operator_client.get(f"/ports/{child.port}/").content.decode()
    assert 'badge-busy">in use' in body
    assert _heading(body) == "Why “address already in use”"
    assert f"One process (pid {child.pid})" in body
    assert "pids" not in _server_paragraph(body)


def _server_paragraph(body: str) -> str:
    match = re.search(r'<div class="server".*?<p class="small">(.*?)</p>', body, re.S)
    assert match, "no server section"
    return match.group(1)


def test_it_shows_a_viewer_no_button_it_cannot_use(viewer_client, listening_child):
    child = listening_child()
    body = viewer_client.get(f"/ports/{child.port}/").content.decode()
    assert f"Terminate pid {child.pid}…</a>" not in body
    assert "Stop the server…</a>" not in body
    assert "Stop and Terminate on this page need the operator role" in body
    assert "needs the operator role; you are signed in as a viewer" in body


def test_it_gives_an_operator_both_buttons(operator_client, listening_child):
    child = listening_child()
    body = operator_client.get(f"/ports/{child.port}/").content.decode()
    assert f"Terminate pid {child.pid}…</a>" in body
    assert "Stop the server…</a>" in body
    assert "need the operator role" not in body


def test_it_connects_the_page_to_its_own_socket(operator_client):
    (port,) = find_free_port(32100)
    body = operator_client.get(f"/ports/{port}/").content.decode()
    assert f'ws-connect="/ws/ports/{port}/"' in body
    assert 'id="live-status"' in body and "js/port-live" in body
    assert re.search(r'data-rendered-at="\d+\.\d{3}"', body)


def test_it_shows_commands_between_backticks_as_code():
    assert code_spans("stop it with `systemctl stop <web>`.") == (
        "stop it with <code>systemctl stop &lt;web&gt;</code>."
    )
    assert code_spans("a lone ` stays <b>") == "a lone ` stays &lt;b&gt;"
    assert code_spans("no code here") == "no code here"


def test_it_puts_each_free_port_error_on_its_field(operator_client):
    response = operator_client.get("/ports/free/", {"near": "abc", "count": ""})
    body = response.content.decode()
    assert response.status_code == 422
    assert "near:" not in body and "count:" not in body
    assert '<a href="#id_near">Near port</a>: Enter a whole number.' in body
    assert '<a href="#id_count">How many</a>: This field is required.' in body
    assert 'id="id_near_error">Enter a whole number.</p>' in body
    assert 'aria-invalid="true"' in body


def test_it_rerenders_the_free_form_with_its_errors_for_htmx(operator_client):
    response = operator_client.get(
        "/ports/free/", {"near": "70000", "count": "3"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert body.strip().startswith('<div id="free-result">')
    assert 'id="id_near_error">Ensure this value is less than or equal to 65535.</p>' in body


def test_it_names_bad_terminate_fields_by_their_label(operator_client):
    (port,) = find_free_port(32200)
    response = operator_client.get(f"/ports/{port}/terminate/", {"pid": "x", "create_time": "1"})
    assert response.status_code == 422
    assert "That request was incomplete: Pid: Enter a whole number." in response.content.decode()
