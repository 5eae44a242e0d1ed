"""Host, Origin and CSRF guards, and a walk over every URL the console serves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from console.asgi import application
from console.foundation.models import AuditEntry

ROOT = Path(__file__).resolve().parents[2]
# The documented open doors (README, Security): liveness, signing in, static files, and the
# token endpoints that exchange credentials. The admin site's own login page is open too.
OPEN = {
    "/health",
    "/favicon.ico",  # the console's icon, the same file /static/ serves to anyone
    "/login/",
    "/login/link/x/",
    "/api/v1/auth/token",
    "/api/v1/auth/refresh",
    "/api/v1/auth/revoke",
    "/admin/login/",
}


def _routes(resolver: URLResolver | None = None, prefix: str = ""):
    """Every route as a concrete path (converters filled with 1 or "x")."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        if isinstance(pattern, RoutePattern):
            part = re.sub(r"<int:[^>]+>", "1", str(pattern))
            part = re.sub(r"<(?:\w+:)?[^>]+>", "x", part)
        else:
            part = str(pattern).lstrip("^").rstrip("$").replace("\\Z", "")
            if "(" in part or "\\" in part:
                continue  # the admin site's regex routes: covered by its index below
        if isinstance(entry, URLResolver):
            yield from _routes(entry, prefix + part)
        elif isinstance(entry, URLPattern):
            yield "/" + prefix + part


@pytest.mark.django_db
def test_it_needs_authentication_on_every_route_but_the_open_ones(client):
    routes = sorted(set(_routes()))
    assert len(routes) > 30 and "/api/v1/security/posture" in routes and "/audit/" in routes
    open_found = set()
    for route in routes:
        answers = {method: getattr(client, method)(route) for method in ("get", "post")}
        statuses = {method: response.status_code for method, response in answers.items()}
        refused = all(
            status in (401, 404, 405)
            or (status == 302 and "login" in answers[method]["Location"])
            or (status == 200 and answers[method].get("HX-Redirect"))
            for method, status in statuses.items()
        )
        if not refused:
            open_found.add(route)
    assert open_found <= OPEN, f"open without authentication: {open_found - OPEN}"
    assert client.get("/admin/").status_code == 302


def test_it_refuses_a_foreign_host_header_over_http(client):
    assert client.get("/login/", HTTP_HOST="evil.test").status_code == 400
    assert client.get("/api/v1/openapi.json", HTTP_HOST="evil.test").status_code == 400


@pytest.mark.django_db(transaction=True)
async def test_it_refuses_a_foreign_host_header_over_a_websocket_with_a_session(
    client, viewer_user
):
    await client.aforce_login(viewer_user)
    cookie = client.cookies["sessionid"].value
    communicator = WebsocketCommunicator(
        application,
        "/ws/ports/",
        headers=[
            (b"host", b"evil.test"),
            (b"origin", b"http://evil.test"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, code = await communicator.connect()
    assert not connected and code == 4403
    assert await AuditEntry.objects.filter(action="ws.refused").aexists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://[::1]:8000", "null"])
async def test_it_refuses_other_local_origins(client, viewer_user, origin):
    await client.aforce_login(viewer_user)
    cookie = client.cookies["sessionid"].value
    communicator = WebsocketCommunicator(
        application,
        "/ws/health/",
        headers=[
            (b"host", b"localhost:8000"),
            (b"origin", origin.encode()),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, code = await communicator.connect()
    assert not connected and code == 4403


@pytest.mark.django_db
def test_it_refuses_a_post_without_a_csrf_token(viewer_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer_user)
    response = client.post("/account/password/", {"new_password1": "x", "new_password2": "x"})
    assert response.status_code == 403
    assert AuditEntry.objects.filter(action="authz.denied", outcome="403").exists()


@pytest.mark.django_db
def test_it_refuses_a_post_from_a_foreign_origin_even_with_a_token(viewer_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer_user)
    client.get("/account/password/")
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/logout/",
        {"csrfmiddlewaretoken": token},
        headers={"Origin": "http://evil.test"},
    )
    assert response.status_code == 403
    same = client.post(
        "/logout/", {"csrfmiddlewaretoken": token}, headers={"Origin": "http://testserver"}
    )
    assert same.status_code == 302


@pytest.mark.django_db
def test_it_refuses_a_session_post_to_the_api_without_the_csrf_header(viewer_user):
    # A cookie alone never writes: the session reads, and writes only with the CSRF header
    # (tests/security/test_session_api.py), refused before the role or the body is looked at.
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer_user)
    response = client.post("/api/v1/ports/5000/terminate", {}, content_type="application/json")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "a write with the browser session needs the X-CSRFToken header"
    }


def test_it_uses_csrf_exempt_nowhere_but_the_bearer_only_api():
    offenders = []
    for folder in ("console", "ports", "health"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if "csrf_exempt" in text and path.name != "api.py":
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
