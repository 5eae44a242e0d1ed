"""Settings as the user meets them: open liveness, login everywhere else, headers, secrets."""

from __future__ import annotations

import logging
import stat

import pytest
from django.conf import settings
from django.test import AsyncClient


def test_it_answers_health_without_authentication(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/ports/", "/ports/5000/", "/ports/free/", "/account/password/"])
def test_it_sends_anonymous_visitors_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.django_db
def test_it_sends_an_expired_htmx_session_to_sign_in_as_a_whole_page(client):
    response = client.get("/ports/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/login/"


def test_it_refuses_a_foreign_host_header(client):
    response = client.get("/health", HTTP_HOST="evil.test")
    assert response.status_code == 400


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000"])
def test_it_accepts_the_loopback_host_names(client, host):
    assert client.get("/health", HTTP_HOST=host).status_code == 200


@pytest.mark.django_db
def test_it_sends_security_headers_and_a_csp_nonce(client):
    response = client.get("/login/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    nonce = csp.split("'nonce-")[1].split("'")[0]
    body = response.content.decode()
    assert f'nonce="{nonce}"' in body  # the htmx script tag carries it
    assert f'"inlineStyleNonce": "{nonce}"' in body
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_it_times_every_response(client):
    response = client.get("/health")
    assert response["Server-Timing"].startswith("app;dur=")
    assert response["X-Response-Time"].endswith("ms")


async def test_a_request_served_over_asgi_is_timed_and_logged_like_one_over_wsgi(caplog):
    # `manage.py serve` runs the console under ASGI, the path users meet: the same headers as
    # over WSGI, and one log line with method, path, status and time.
    caplog.set_level(logging.INFO, logger="console.requests")
    response = await AsyncClient().get("/health")
    assert response.status_code == 200
    timing = response["Server-Timing"]
    assert timing.startswith("app;dur=")
    assert response["X-Response-Time"] == f"{timing.removeprefix('app;dur=')}ms"
    lines = [r.getMessage() for r in caplog.records if r.name == "console.requests"]
    assert lines == [f"GET /health 200 {timing.removeprefix('app;dur=')}ms"]


def test_it_keeps_cookies_strict():
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE == "Strict"
    assert settings.DEBUG is False


def test_it_generates_separate_private_secrets(tmp_path, monkeypatch):
    from console.settings import envsecret

    monkeypatch.delenv("CONSOLE_TEST_SECRET", raising=False)
    first = envsecret("CONSOLE_TEST_SECRET", tmp_path / "one")
    again = envsecret("CONSOLE_TEST_SECRET", tmp_path / "one")
    other = envsecret("CONSOLE_TEST_SECRET", tmp_path / "two")
    assert first == again and first != other and len(first) >= 43
    assert stat.S_IMODE((tmp_path / "one").stat().st_mode) == 0o600
    assert settings.JWT_SIGNING_KEY != settings.SECRET_KEY


def test_it_reads_a_secret_from_a_file_variable(tmp_path, monkeypatch):
    from console.settings import envsecret

    secret_file = tmp_path / "given"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("CONSOLE_TEST_SECRET_FILE", str(secret_file))
    assert envsecret("CONSOLE_TEST_SECRET", tmp_path / "unused") == "from-a-file"
    assert not (tmp_path / "unused").exists()
