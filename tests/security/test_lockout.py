"""Failed sign-ins: 429 with the wait, per username and address, and a higher per-user bar."""

from __future__ import annotations

import pytest

from console.foundation import runtime_settings
from console.foundation.models import AuditEntry

pytestmark = pytest.mark.django_db

GOOD = "correct-horse-battery-9"


def _login(client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def _token(api, username: str, password: str, address: str = "127.0.0.1"):
    return api(
        "post",
        "/api/v1/auth/token",
        body={"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def test_it_locks_the_sign_in_page_after_the_limit(client, viewer_user):
    for _ in range(5):
        assert _login(client, "vic", "wrong").status_code == 200
    locked = _login(client, "vic", GOOD)  # even the right password waits out the cool-off
    assert locked.status_code == 429
    assert "Too many failed sign-ins. Try again in 15 minutes." in locked.content.decode()
    assert int(locked["Retry-After"]) > 800
    assert AuditEntry.objects.filter(action="auth.login", outcome="locked").exists()


def test_it_locks_the_token_endpoint_too(api, viewer_user):
    for _ in range(5):
        assert _token(api, "vic", "wrong").status_code == 401
    locked = _token(api, "vic", GOOD)
    assert locked.status_code == 429
    assert locked.json()["detail"].startswith("Too many failed sign-ins")
    assert locked["Retry-After"]


def test_it_does_not_lock_others_arriving_from_the_same_address(client, viewer_user, make_user):
    make_user("wendy")
    for _ in range(5):
        _login(client, "vic", "wrong")
    assert _login(client, "wendy", GOOD).status_code == 302


def test_it_counts_a_username_across_addresses_with_a_higher_bar(client, viewer_user):
    runtime_settings.update({"lockout_username_failures": 8})
    for number in range(8):
        _login(client, "vic", "wrong", address=f"10.0.0.{number + 1}")  # 1-2 tries per address
    assert _login(client, "vic", GOOD, address="10.0.1.1").status_code == 429


def test_it_forgets_failures_after_a_success(client, viewer_user):
    for _ in range(4):
        _login(client, "vic", "wrong")
    assert _login(client, "vic", GOOD).status_code == 302
    client.logout()
    for _ in range(4):
        assert _login(client, "vic", "wrong").status_code == 200


def test_failures_without_a_username_lock_no_account(make_user):
    from console.security import lockout

    make_user("xxxx", "viewer")  # any name at all: the empty name must not stand for one
    for _ in range(10):
        lockout.failed("", "127.0.0.1")
    assert lockout.locked("xxxx", "127.0.0.1") is None
    assert lockout.locked("", "127.0.0.1") is not None
