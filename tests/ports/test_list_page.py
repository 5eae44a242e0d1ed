"""The Ports list page: its columns, links and copy texts, and the preferences each user keeps."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from ports.free_ports import find_free_port
from ports.models import ListPreference
from tests.conftest import wait_until
from tests.ports.list_helpers import listen_as, start_notebook

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def viewer_client(client, viewer_user):
    client.force_login(viewer_user)
    return client


@pytest.fixture
def http_server():
    """`python -m http.server` on loopback: the hint names it, so the row offers Open."""
    port = find_free_port(24000)[0]
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from ports import inventory

        listening = wait_until(
            lambda: any(lr.port == port for lr in inventory.snapshot().listeners), timeout=15
        )
        assert listening, "http.server did not listen within 15 s"
        yield port, process.pid
    finally:
        process.kill()  # our own child, by its handle's pid
        process.wait(timeout=10)


def test_it_shows_cpu_memory_open_and_copy_for_an_http_listener(viewer_client, http_server):
    port, pid = http_server
    body = viewer_client.get("/ports/", {"q": str(port)}).content.decode()
    assert 'class="col-cpu' in body
    assert 'class="col-memory' in body
    assert f'href="http://localhost:{port}/" target="_blank" rel="noopener"' in body
    assert f'data-copy="curl http://localhost:{port}/"' in body
    assert f'data-copy="{pid}"' in body
    assert "-m http.server --bind 127.0.0.1" in body  # the whole command, in the row's details


def test_it_offers_no_open_link_for_a_plain_socket(viewer_client, listening_child):
    child = listening_child()
    body = viewer_client.get("/ports/", {"q": str(child.pid)}).content.decode()
    assert f">{child.port}</a>" in body
    assert "http://localhost:" not in body
    assert "Copy curl" not in body


def test_it_sorts_cpu_and_memory_biggest_first_and_keeps_the_filters(viewer_client):
    body = viewer_client.get("/ports/", {"proto": "tcp"}, headers=HX).content.decode()
    assert 'href="?proto=tcp&amp;sort=-cpu"' in body
    assert 'href="?proto=tcp&amp;sort=-memory"' in body
    assert 'href="?proto=tcp&amp;sort=-port"' in body  # port is sorted ascending: the flip
    sorted_by_cpu = viewer_client.get("/ports/", {"proto": "tcp", "sort": "-cpu"}, headers=HX)
    html = sorted_by_cpu.content.decode()
    assert '<th scope="col" class="col-cpu" aria-sort="descending">' in html
    # The filter form's sort comes with the table, so the next filter change keeps it.
    assert '<input type="hidden" name="sort" form="port-filters" value="-cpu">' in html


def test_it_remembers_each_users_preferences(client, make_user, listening_child):
    ana, bo = make_user("ana"), make_user("bo")
    client.force_login(ana)
    response = client.post(
        "/ports/list-preferences/", {"hide_system": "1", "group": "server", "q": "x"}, headers=HX
    )
    assert response.status_code == 200
    assert response.content.decode().strip().startswith('<div id="port-table"')
    stored = ListPreference.objects.get(user=ana)
    assert (stored.hide_system, stored.group_by_server) == (True, True)
    page = client.get("/ports/").content.decode()
    assert 'name="hide_system" value="1" checked' in page
    assert 'name="group" value="server" checked' in page
    client.force_login(bo)
    assert 'name="hide_system" value="1" checked' not in client.get("/ports/").content.decode()
    # Unchecked boxes are left out of the form: both off again.
    client.force_login(ana)
    client.post("/ports/list-preferences/", {}, headers=HX)
    stored.refresh_from_db()
    assert (stored.hide_system, stored.group_by_server) == (False, False)


def test_it_redirects_to_the_same_filters_without_javascript(viewer_client):
    response = viewer_client.post("/ports/list-preferences/", {"hide_system": "1", "q": "flask"})
    assert response.status_code == 302
    assert response["Location"] == "/ports/?q=flask"


def test_it_explains_a_preference_it_does_not_know(viewer_client):
    response = viewer_client.post("/ports/list-preferences/", {"hide_system": "yes"})
    assert response.status_code == 422
    assert "hide_system is '1' or left out" in response.content.decode()
    assert not ListPreference.objects.exists()


def test_it_refuses_preferences_without_a_session(client):
    response = client.post("/ports/list-preferences/", {"hide_system": "1"})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not ListPreference.objects.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="another account's socket needs setuid (root)")
def test_it_hides_another_accounts_socket_as_a_system_service(client, viewer_user):
    other = listen_as()
    try:
        client.force_login(viewer_user)
        assert f">{other.port}</a>" in client.get("/ports/").content.decode()
        ListPreference.objects.create(user=viewer_user, hide_system=True)
        body = client.get("/ports/").content.decode()
        assert f">{other.port}</a>" not in body
        assert re.search(r"\b\d+ system services? hidden", body)
    finally:
        other.stop()


def test_it_groups_a_notebooks_kernels_under_it(viewer_client, viewer_user):
    notebook = start_notebook(kernels=3)
    try:
        ListPreference.objects.create(user=viewer_user, group_by_server=True)
        body = viewer_client.get("/ports/", {"q": "python"}, headers=HX).content.decode()
        header = f'id="server-{notebook.pid}-'
        assert body.count(header) == 1
        group_key = body.split(header, 1)[1].split('"', 1)[0]
        for port in notebook.ports:
            row = body.split(f'<a href="/ports/{port}/">{port}</a>', 1)[0].rsplit("<tr ", 1)[1]
            assert f'data-group="server-{notebook.pid}-{group_key}"' in row, port
    finally:
        notebook.stop()
