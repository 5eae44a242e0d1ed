"""Refused anonymous requests are counted per address, path and minute, not a row each."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from console.foundation import tokens
from console.foundation.models import AuditEntry
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db


def _not_near_a_minute_end() -> None:
    """The folding is per minute: start a burst early in one so it cannot straddle two."""
    assert wait_until(lambda: timezone.now().second < 40, timeout=30, interval=0.2)


def test_it_folds_200_anonymous_401s_into_one_row(client):
    _not_near_a_minute_end()
    for _ in range(200):
        assert client.get("/api/v1/ports").status_code == 401
    rows = list(AuditEntry.objects.filter(action="authz.unauthenticated"))
    assert len(rows) == 1
    assert rows[0].count == 200
    assert rows[0].target == "GET /api/v1/ports"
    assert rows[0].address == "127.0.0.1"
    assert rows[0].user is None


def test_it_keeps_one_row_per_path_and_per_address(client):
    _not_near_a_minute_end()
    for _ in range(3):
        client.get("/api/v1/ports")
        client.get("/api/v1/checks")
        client.get("/api/v1/ports", REMOTE_ADDR="127.0.0.2")
    rows = {
        (entry.address, entry.target): entry.count
        for entry in AuditEntry.objects.filter(action="authz.unauthenticated")
    }
    assert rows == {
        ("127.0.0.1", "GET /api/v1/ports"): 3,
        ("127.0.0.1", "GET /api/v1/checks"): 3,
        ("127.0.0.2", "GET /api/v1/ports"): 3,
    }


def test_it_keeps_a_signed_in_users_refusals_one_row_each(viewer_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer_user)
    for _ in range(3):
        # No CSRF token: CsrfViewMiddleware's 403, recorded by the audit middleware.
        assert client.post("/account/password/", {}).status_code == 403
    rows = AuditEntry.objects.filter(action="authz.denied", user=viewer_user)
    assert rows.count() == 3
    assert all(entry.count == 1 for entry in rows)


def test_it_starts_a_new_row_in_the_next_minute(client, monkeypatch):
    from datetime import timedelta

    client.get("/api/v1/ports")
    AuditEntry.objects.update(at=timezone.now() - timedelta(minutes=2))
    client.get("/api/v1/ports")
    assert sorted(AuditEntry.objects.values_list("count", flat=True)) == [1, 1]


@pytest.mark.django_db(transaction=True)
async def test_it_folds_refused_anonymous_websocket_handshakes():
    from console.asgi import application

    _not_near_a_minute_end()
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")]
    for _ in range(5):
        communicator = WebsocketCommunicator(application, "/ws/ports/", headers=headers)
        connected, _detail = await communicator.connect(timeout=5)
        assert not connected
    rows = [entry async for entry in AuditEntry.objects.filter(action="ws.refused")]
    assert [(entry.target, entry.count) for entry in rows] == [("/ws/ports/", 5)]


def test_it_shows_the_count_in_the_api_and_on_the_audit_page(client, admin_user):
    _not_near_a_minute_end()
    for _ in range(7):
        client.get("/api/v1/ports")
    access = tokens.issue_pair(admin_user)["access"]
    body = client.get(
        "/api/v1/audit?action=authz.unauthenticated", headers={"Authorization": f"Bearer {access}"}
    ).json()
    assert [(item["target"], item["count"]) for item in body["items"]] == [("GET /api/v1/ports", 7)]
    client.force_login(admin_user)
    page = client.get("/audit/?action=authz.unauthenticated").content.decode()
    assert "\N{MULTIPLICATION SIGN} 7" in page
