"""A port's history: holder spans on the page and in the API, stored events in the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ports.history import port_timeline
from ports.models import PortEvent

pytestmark = pytest.mark.django_db

T0 = timezone.now() - timedelta(days=1)


def _event(
    kind: str,
    minutes: float,
    *,
    pid: int,
    inode: int = 1,
    port: int = 5000,
    name: str = "python",
    **extra,
) -> PortEvent:
    return PortEvent.objects.create(
        at=T0 + timedelta(minutes=minutes),
        kind=kind,
        proto="tcp",
        family="ipv4",
        address="127.0.0.1",
        port=port,
        inode=inode,
        exposure="loopback",
        uid=1000,
        pid=pid,
        pids=[pid],
        process_name=name,
        user="dev",
        cmdline=f"{name} app.py",
        **extra,
    )


@pytest.fixture
def yesterday_on_5000():
    """Flask held 5000 for 30 minutes, then a gunicorn master forked a worker onto it."""
    _event("opened", 0, pid=100, name="flask")
    _event("closed", 30, pid=100, name="flask")
    _event("opened", 60, pid=200, inode=2, name="gunicorn")
    _event("owner-changed", 61, pid=200, inode=2, name="gunicorn")
    _event("opened", 0, pid=300, port=8000)  # another port stays out of it


def test_it_builds_holder_spans_newest_first(yesterday_on_5000):
    spans = port_timeline(5000)
    assert [(s.process_name, s.pid) for s in spans] == [
        ("gunicorn", 200),
        ("gunicorn", 200),
        ("flask", 100),
    ]
    still_open, handed_over, flask = spans
    assert still_open.closed_at is None
    assert handed_over.duration == timedelta(minutes=1)
    assert flask.duration == timedelta(minutes=30)


def test_it_answers_what_held_the_port_yesterday_in_the_api(
    client, viewer_user, bearer, yesterday_on_5000
):
    body = client.get("/api/v1/ports/5000", headers=bearer(viewer_user)).json()
    flask = body["history"][-1]
    assert flask["process_name"] == "flask" and flask["duration_seconds"] == 1800
    assert flask["open_before_console_start"] is False


def test_it_shows_the_timeline_on_the_port_page(client, viewer_user, yesterday_on_5000):
    client.force_login(viewer_user)
    body = client.get("/ports/5000/").content.decode()
    assert "History of port 5000" in body
    assert "flask" in body and "30 min 0 s" in body and "still open" in body


def test_it_lists_stored_events_with_filters(client, viewer_user, bearer, yesterday_on_5000):
    headers = bearer(viewer_user)
    body = client.get("/api/v1/events", {"port": 5000}, headers=headers).json()
    assert body["count"] == 4
    assert [item["kind"] for item in body["items"]] == [
        "owner-changed",
        "opened",
        "closed",
        "opened",
    ]
    since = (T0 + timedelta(minutes=45)).isoformat()
    later = client.get("/api/v1/events", {"port": 5000, "since": since}, headers=headers).json()
    assert later["count"] == 2
    closed = client.get("/api/v1/events", {"kind": "closed"}, headers=headers).json()
    assert closed["count"] == 1 and closed["items"][0]["process"]["name"] == "flask"
    page = client.get("/api/v1/events", {"limit": 1, "offset": 1}, headers=headers).json()
    assert page["count"] == 5 and len(page["items"]) == 1


@pytest.mark.parametrize(
    "params", [{"port": 0}, {"since": "yesterday"}, {"limit": 0}, {"kind": "exploded"}]
)
def test_it_refuses_bad_event_queries(client, viewer_user, bearer, params):
    response = client.get("/api/v1/events", params, headers=bearer(viewer_user))
    assert response.status_code == 422


def test_it_requires_a_token_for_events(client):
    assert client.get("/api/v1/events").status_code == 401
