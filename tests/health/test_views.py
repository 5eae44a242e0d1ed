"""The Health pages: list grouped by service, detail, forms with validation, the websocket."""

from __future__ import annotations

import json
import re

import pytest
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from console.foundation.models import AuditEntry
from health import storage
from health.models import Check

pytestmark = pytest.mark.django_db


def _check(name="api", service="main_api", **fields) -> Check:
    defaults = {"type": "tcp", "target": {"host": "127.0.0.1", "port": 5000}}
    return Check.objects.create(name=name, service=service, **{**defaults, **fields})


def test_it_lists_checks_grouped_by_service_with_bars_and_sparklines(client, viewer_user):
    api, db = _check(), _check("db", service="database")
    now = timezone.now()
    storage.store([storage.Observation(api.id, now, True, 12.0, "ok")])
    client.force_login(viewer_user)
    response = client.get("/checks/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("database") < html.index("main_api")  # groups in order
    assert f'id="check-{api.id}"' in html and f'id="check-{db.id}"' in html
    assert 'class="uptime-bar"' in html and "12 ms" in html
    assert 'ws-connect="/ws/health/"' in html
    assert " style=" not in html  # CSP: no inline styles


def test_it_answers_htmx_with_the_groups_partial(client, viewer_user):
    _check()
    client.force_login(viewer_user)
    response = client.get("/checks/?q=api", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="check-groups">') and "<html" not in html
    assert "No checks match" in client.get("/checks/?q=zzz").content.decode()


def test_it_shows_a_check_with_chart_history_and_results(client, operator_user, http_server):
    check = _check(type="http", target={"url": http_server.url}, warn_ms=100)
    client.force_login(operator_user)
    assert client.post(f"/checks/{check.id}/run/").status_code == 302
    html = client.get(f"/checks/{check.id}/").content.decode()
    assert 'class="latency-chart"' in html and "threshold-warn" in html
    assert "pending → " in html and "HTTP 200" in html
    assert "Run now" in html and "Pause" in html


def test_it_runs_pauses_and_resumes_from_the_page_with_htmx(client, operator_user):
    check = _check()
    client.force_login(operator_user)
    paused = client.post(f"/checks/{check.id}/pause/", headers={"HX-Request": "true"})
    assert 'id="check-detail"' in paused.content.decode() and "Resume" in paused.content.decode()
    check.refresh_from_db()
    assert check.state == "paused"
    client.post(f"/checks/{check.id}/resume/")
    check.refresh_from_db()
    assert check.state == "pending"


def test_viewers_cannot_run_checks_from_the_page(client, viewer_user):
    check = _check()
    client.force_login(viewer_user)
    assert client.post(f"/checks/{check.id}/run/").status_code == 302
    assert AuditEntry.objects.filter(action="check.run", outcome="forbidden").exists()


def test_it_creates_a_check_from_the_form(client, operator_user):
    client.force_login(operator_user)
    response = client.post(
        "/checks/new/",
        {
            "name": "web",
            "service": "main_api",
            "type": "http",
            "interval_s": 30,
            "timeout_s": 5,
            "failures_before_down": 2,
            "successes_before_up": 1,
            "url": "http://127.0.0.1:5000/",
            "method": "GET",
            "expected_status": "200, 204",
            "verify_tls": "on",
        },
    )
    check = Check.objects.get(name="web")
    assert response.status_code == 302 and response["Location"] == f"/checks/{check.id}/"
    assert check.target["expected_status"] == [200, 204] and check.target["verify_tls"] is True


def test_it_shows_validation_messages_next_to_the_field(client, operator_user):
    client.force_login(operator_user)
    response = client.post(
        "/checks/new/",
        {
            "name": "web",
            "type": "http",
            "interval_s": 10,
            "timeout_s": 30,
            "failures_before_down": 2,
            "successes_before_up": 1,
            "url": "not a url",
            "method": "GET",
        },
    )
    html = response.content.decode()
    assert response.status_code == 422 and not Check.objects.exists()
    assert "longer than the interval" in html
    response = client.post(
        "/checks/new/",
        {
            "name": "web",
            "type": "http",
            "interval_s": 30,
            "timeout_s": 5,
            "failures_before_down": 2,
            "successes_before_up": 1,
            "url": "not a url",
            "method": "GET",
        },
    )
    assert "is not an http:// or https:// URL" in response.content.decode()


def test_it_edits_a_check_keeping_its_redis_password(client, operator_user):
    check = _check(
        "cache", type="redis", target={"host": "127.0.0.1", "port": 6379, "password": "pw"}
    )
    client.force_login(operator_user)
    page = client.get(f"/checks/{check.id}/edit/").content.decode()
    assert 'value="cache"' in page and "pw" not in page
    response = client.post(
        f"/checks/{check.id}/edit/",
        {
            "name": "cache",
            "type": "redis",
            "interval_s": 60,
            "timeout_s": 5,
            "failures_before_down": 3,
            "successes_before_up": 1,
            "host": "127.0.0.1",
            "port": 6379,
            "method": "GET",
        },
    )
    assert response.status_code == 302
    check.refresh_from_db()
    assert check.interval_s == 60 and check.target["password"] == "pw"


@pytest.mark.parametrize(
    ("params", "kind", "expected"),
    [
        ("port=5000&host=127.0.0.1&service=Flask&proto=tcp", "http", "http://127.0.0.1:5000/"),
        ("port=8443&host=0.0.0.0&service=nginx&proto=tcp", "http", "https://127.0.0.1:8443/"),
        ("port=5432&host=127.0.0.1&service=PostgreSQL&proto=tcp", "tcp", None),
        ("port=6379&host=::&service=Redis&proto=tcp", "redis", None),
        ("port=9999&host=::1&service=&proto=tcp", "tcp", None),
    ],
)
def test_monitor_this_port_prefills_a_sensible_check(client, operator_user, params, kind, expected):
    client.force_login(operator_user)
    response = client.get(f"/checks/new/?{params}")
    form = response.context["form"]
    assert form.initial["type"] == kind
    if expected:
        assert form.initial["url"] == expected
    else:
        assert form.initial["port"] == int(params.split("&")[0].split("=")[1])


@pytest.mark.django_db(transaction=True)
async def test_the_websocket_pushes_row_fragments_and_refuses_anonymous(viewer_user):
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import AnonymousUser

    from health import live
    from health.consumers import HealthPageConsumer

    anonymous = WebsocketCommunicator(HealthPageConsumer.as_asgi(), "/ws/health/")
    anonymous.scope["user"] = AnonymousUser()
    connected, code = await anonymous.connect()
    assert not connected and code == 4401

    check = await sync_to_async(_check)()
    communicator = WebsocketCommunicator(HealthPageConsumer.as_asgi(), "/ws/health/")
    communicator.scope["user"] = viewer_user
    communicator.scope["origin_verified"] = True
    connected, _ = await communicator.connect()
    assert connected
    # The page says what it shows; with resync it gets those rows at once (and we know it has).
    await communicator.send_to(text_data=json.dumps({"q": "", "state": "", "resync": "1"}))
    assert f'id="check-{check.id}"' in await communicator.receive_from(timeout=5)
    observation = storage.Observation(check.id, timezone.now(), True, 7.0, "ok")
    transitions = await sync_to_async(storage.store)([observation])
    await live.publish_results([observation], transitions)
    message = await communicator.receive_from(timeout=5)
    assert f'id="check-{check.id}"' in message and 'hx-swap-oob="true"' in message
    assert "state-up" in message and 'id="check-summary"' in message
    await communicator.disconnect()


def test_a_viewer_sees_no_enabled_button_it_cannot_use(client, viewer_user):
    check = _check()
    client.force_login(viewer_user)
    new = client.get("/checks/new/").content.decode()
    assert re.search(r'<button class="primary" disabled title="needs the operator role">', new)
    detail = client.get(f"/checks/{check.id}/").content.decode()
    assert "Run now" not in detail and "Pause" not in detail and "Delete" not in detail
    listing = client.get("/checks/").content.decode()
    assert "New check" not in listing and "Export" not in listing
    imported = client.get("/checks/import/").content.decode()
    assert 'disabled title="needs the operator role">Import</button>' in imported
    assert "/checks/export/" not in imported


def test_an_operator_is_offered_no_action_on_a_query_check(client, operator_user):
    check = _check(
        "orders", type="query", target={"dsn": "sqlite:////tmp/x.db", "query": "SELECT 1"}
    )
    client.force_login(operator_user)
    detail = client.get(f"/checks/{check.id}/").content.decode()
    assert "Run now" not in detail and "needs the admin role" in detail
    edit = client.get(f"/checks/{check.id}/edit/").content.decode()
    assert 'disabled title="needs the admin role">Save</button>' in edit
