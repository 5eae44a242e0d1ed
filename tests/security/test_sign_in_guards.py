"""Sign-in cannot be used against the people signing in.

The admin site's login goes through the console's throttle and audit (before: 40 wrong
passwords passed unnoticed), and `auth/token` refuses what a foreign page can send without a
preflight before anything is counted (the five-`text/plain`-posts lock-out is in
test_sign_in_origin.py).
"""

from __future__ import annotations

import json

import pytest

from console.foundation.models import AuditEntry
from console.security.models import SignInFailure

pytestmark = pytest.mark.django_db

GOOD = "correct-horse-battery-9"


@pytest.fixture
def staff(make_user):
    return make_user("root", "superuser")


def _admin_login(client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def _token(client, username: str, password: str, **extra):
    return client.post(
        "/api/v1/auth/token",
        json.dumps({"username": username, "password": password}),
        content_type=extra.pop("content_type", "application/json"),
        **extra,
    )


def test_forty_wrong_admin_passwords_are_throttled_and_audited(client, staff):
    statuses = [_admin_login(client, "root", f"guess-{n}").status_code for n in range(40)]
    assert statuses[:5] == [200] * 5
    assert set(statuses[5:]) == {429}
    assert SignInFailure.objects.filter(username="root").count() == 5  # locked tries not tried
    entries = AuditEntry.objects.filter(action="auth.login", username="root")
    assert entries.filter(outcome="denied").count() == 5
    assert entries.filter(outcome="locked").count() == 35
    assert entries.first().detail.get("via") == "admin site"


def test_a_locked_admin_login_refuses_even_the_right_password_and_says_the_wait(client, staff):
    for _ in range(5):
        _admin_login(client, "root", "wrong")
    locked = _admin_login(client, "root", GOOD)
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 800
    assert "Too many failed sign-ins. Try again in 15 minutes." in locked.content.decode()
    assert client.get("/admin/").status_code == 302  # not signed in


def test_the_admin_site_and_the_console_share_one_throttle(client, staff):
    for _ in range(3):
        _admin_login(client, "root", "wrong")
    for _ in range(2):
        client.post("/login/", {"username": "root", "password": "wrong"})
    assert client.post("/login/", {"username": "root", "password": GOOD}).status_code == 429
    assert _admin_login(client, "root", GOOD).status_code == 429
    assert _token(client, "root", GOOD).status_code == 429


def test_a_staff_sign_in_at_the_admin_site_is_audited_and_forgets_the_failures(client, staff):
    for _ in range(4):
        _admin_login(client, "root", "wrong")
    response = _admin_login(client, "root", GOOD)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert not SignInFailure.objects.exists()
    assert AuditEntry.objects.filter(action="auth.login", outcome="ok", user=staff).exists()


def test_a_non_staff_password_is_refused_at_the_admin_site_without_counting(client, viewer_user):
    for _ in range(6):
        refused = _admin_login(client, "vic", GOOD)
        assert refused.status_code == 200
        assert b"staff account" in refused.content
    assert not SignInFailure.objects.exists()
    assert client.post("/login/", {"username": "vic", "password": GOOD}).status_code == 302


def test_the_console_page_keeps_its_throttle(client, viewer_user):
    for _ in range(5):
        assert client.post("/login/", {"username": "vic", "password": "x"}).status_code == 200
    locked = client.post("/login/", {"username": "vic", "password": GOOD})
    assert locked.status_code == 429
    assert locked["Retry-After"]
    assert b"Too many failed sign-ins" in locked.content


def test_a_form_post_or_a_null_origin_never_counts_as_a_failure(client, viewer_user):
    for _ in range(6):
        form = client.post(
            "/api/v1/auth/token",
            {"username": "vic", "password": "wrong"},
            headers={"Origin": "http://localhost:5173"},
        )
        assert form.status_code == 415
        sandboxed = _token(client, "vic", "wrong", headers={"Origin": "null"})
        assert sandboxed.status_code == 403
    assert not SignInFailure.objects.exists()
    assert _token(client, "vic", GOOD).status_code == 200


def test_the_token_endpoint_still_counts_real_failures(client, viewer_user):
    for _ in range(5):
        assert _token(client, "vic", "wrong").status_code == 401
    locked = _token(client, "vic", GOOD, headers={"Origin": "http://testserver"})
    assert locked.status_code == 429
    assert locked.json()["detail"].startswith("Too many failed sign-ins")
    assert AuditEntry.objects.filter(action="auth.token", outcome="locked").count() == 1
