from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from console.foundation.models import AuditEntry
from console.security.first_run import account_needing_link
from console.security.models import SignInLink

pytestmark = pytest.mark.django_db


def _link_path(user) -> str:
    return f"/login/link/{SignInLink.issue(user)}/"


def test_it_creates_the_admin_on_first_run_and_only_then():
    user, created = account_needing_link()
    assert created and user.username == "admin" and user.is_superuser
    assert not user.has_usable_password()
    again, created_again = account_needing_link()
    assert again == user and not created_again  # still no password: a new link is due
    user.set_password("a-long-enough-passphrase")
    user.save()
    assert account_needing_link() == (None, False)


def test_it_stores_only_the_hash_of_a_link():
    user, _ = account_needing_link()
    raw = SignInLink.issue(user)
    stored = SignInLink.objects.get()
    assert raw not in stored.token_hash and len(stored.token_hash) == 64


def test_it_signs_in_once_with_a_link_and_asks_for_a_password(client):
    user, _ = account_needing_link()
    path = _link_path(user)
    shown = client.get(path)
    assert shown.status_code == 200 and b"Sign in as admin" in shown.content
    assert client.get(path).status_code == 200  # a GET (link preview) does not use it up
    response = client.post(path)
    assert response.status_code == 302 and response["Location"] == "/account/password/"
    assert client.get("/ports/free/").status_code == 200
    client.logout()
    assert client.post(path).status_code == 410
    assert AuditEntry.objects.filter(action="auth.login", outcome="ok").count() == 1


def test_it_refuses_an_expired_link(client):
    user, _ = account_needing_link()
    path = _link_path(user)
    SignInLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(path)
    assert response.status_code == 410
    assert b"cannot be used" in response.content


def test_it_lets_a_link_user_set_a_first_password(client):
    user, _ = account_needing_link()
    client.post(_link_path(user))
    response = client.post(
        "/account/password/",
        {"new_password1": "harbour-lights-2026", "new_password2": "harbour-lights-2026"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("harbour-lights-2026")


def test_it_signs_in_with_a_password_and_audits_failures(client, viewer_user):
    bad = client.post("/login/", {"username": "vic", "password": "nope"})
    assert bad.status_code == 200 and b"correct username and password" in bad.content
    good = client.post("/login/", {"username": "vic", "password": "correct-horse-battery-9"})
    assert good.status_code == 302
    outcomes = list(
        AuditEntry.objects.filter(action="auth.login").values_list("outcome", flat=True)
    )
    assert sorted(outcomes) == ["denied", "ok"]


def test_it_offers_createsuperuser_as_usual():
    from django.core.management import call_command

    call_command("createsuperuser", username="root2", email="r@example.com", interactive=False)
    assert get_user_model().objects.get(username="root2").is_superuser
