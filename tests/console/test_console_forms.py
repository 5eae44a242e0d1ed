"""The console's own forms as a person meets them: every error at once, beside its field, with the
field's label; the password rules before they are broken; what a viewer is shown."""

from __future__ import annotations

import re

import pytest

PASSWORD = "correct-horse-battery-9"


def _text(response) -> str:
    return response.content.decode()


@pytest.mark.django_db
def test_it_shows_a_mismatch_and_a_broken_rule_at_once_each_beside_its_field(client, make_user):
    client.force_login(make_user("ada", "admin"))
    response = client.post(
        "/account/password/",
        {"old_password": "wrong", "new_password1": "12345", "new_password2": "123456"},
    )
    assert response.status_code == 200
    body = _text(response)
    assert 'id="id_old_password_error"' in body
    assert 'id="id_new_password1_error">New password: ' in body
    assert "too short" in body
    assert "entirely numeric" in body
    assert 'id="id_new_password2_error">New password confirmation: ' in body
    assert "fields didn\u2019t match" in body
    assert "3 fields to fix" in body
    # Old password first, as Django orders a change form.
    assert body.index("id_old_password") < body.index("id_new_password1")


@pytest.mark.django_db
def test_it_still_saves_a_good_new_password(client, make_user):
    user = make_user("ada", "admin")
    client.force_login(user)
    response = client.post(
        "/account/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "lantern-harbour-2026",
            "new_password2": "lantern-harbour-2026",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("lantern-harbour-2026")


@pytest.mark.django_db
def test_it_lists_every_new_user_error_at_once(client, admin_user):
    client.force_login(admin_user)
    response = client.post("/users/", {"username": "ada", "role": "viewer", "password": "123"})
    assert response.status_code == 422
    body = _text(response)
    assert "Username: a user with that name exists" in body
    assert 'id="id_password_error">Password: ' in body
    assert "too short" in body
    assert "2 fields to fix" in body


@pytest.mark.django_db
def test_it_shows_the_rules_and_says_a_link_is_shown_not_sent(client, admin_user):
    client.force_login(admin_user)
    body = _text(client.get("/users/"))
    assert "at least 8 characters" in body
    assert "shown here for you to pass on" in body
    assert " send " not in body.lower()
    response = client.post("/users/", {"username": "vic", "role": "viewer", "password": ""})
    assert "Shown here once" in _text(response)
    assert "/login/link/" in _text(response)


@pytest.mark.django_db
def test_it_names_roles_in_words_on_the_users_page(client, admin_user, viewer_user):
    client.force_login(admin_user)
    body = _text(client.get("/users/"))
    assert '<option value="viewer" selected>viewer (read only)</option>' in body
    assert '<td data-label="Role">admin (administrator)</td>' in body


@pytest.mark.django_db
def test_it_lists_every_token_error_beside_its_field(client, operator_user):
    client.force_login(operator_user)
    response = client.post("/account/tokens/", {"name": "", "expires_in_days": "0"})
    assert response.status_code == 422
    body = _text(response)
    assert 'id="id_name_error">Name: ' in body
    assert "Scopes: choose at least one scope" in body
    assert 'id="id_expires_in_days_error">Expires in (days): ' in body
    assert "3 fields to fix" in body


@pytest.mark.django_db
def test_it_marks_a_wrong_security_setting_beside_its_field(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/security/",
        {
            "access_token_minutes": "0",
            "refresh_token_days": "7",
            "personal_token_max_days": "90",
            "lockout_failures": "5",
            "lockout_username_failures": "20",
            "lockout_minutes": "15",
            "allowed_networks": "banana",
            "check_networks": "",
        },
    )
    assert response.status_code == 422
    body = _text(response)
    assert 'id="id_access_token_minutes_error"' in body
    assert 'id="id_allowed_networks_error"' in body
    assert 'aria-invalid="true"' in body


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/security/", "/audit/", "/users/", "/account/tokens/"])
def test_it_gives_a_viewer_no_button_it_cannot_use_on_the_security_pages(client, viewer_user, path):
    client.force_login(viewer_user)
    response = client.get(path)
    assert response.status_code == 403
    forms = re.findall(r'<form method="post" action="([^"]*)"', _text(response))
    assert forms == ["/logout/"]  # only Sign out


@pytest.mark.django_db
def test_it_hides_the_menu_items_a_viewer_cannot_open(client, viewer_user):
    client.force_login(viewer_user)
    body = _text(client.get("/account/password/"))
    assert 'href="/account/tokens/"' not in body
    assert 'href="/users/"' not in body
    assert 'href="/security/"' not in body
    assert 'href="/audit/"' not in body


@pytest.mark.django_db
def test_it_writes_no_backticks_on_the_security_page(client, admin_user):
    client.force_login(admin_user)
    body = _text(client.get("/security/"))
    assert "`" not in body
