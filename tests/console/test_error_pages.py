"""Error pages in the console's frame, JSON errors under /api/, the favicon and the role words."""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import path

from console.urls import handler403, handler404, handler500
from console.urls import urlpatterns as console_urls

NAV = 'aria-label="Main"'


def _explode(request):
    raise RuntimeError("a bug the page must not show")


# A URLconf for the 500 test: the console's own plus one view that fails.
urlpatterns = [path("boom/", _explode), *console_urls]
__all__ = ["handler403", "handler404", "handler500", "urlpatterns"]


def _text(response: HttpResponse) -> str:
    return response.content.decode()


@pytest.mark.django_db
def test_it_shows_a_404_in_the_frame_with_a_way_back(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    body = _text(response)
    assert NAV in body
    assert "Nothing here" in body
    assert "/no-such-page/" in body
    assert 'href="/ports/"' in body
    assert 'rel="stylesheet"' in body


@pytest.mark.django_db
def test_it_shows_a_404_to_a_visitor_who_is_not_signed_in_without_the_navigation(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Nothing here" in _text(response)
    assert NAV not in _text(response)


@pytest.mark.django_db
def test_it_answers_json_for_an_unknown_api_path(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found"}


@pytest.mark.django_db
def test_it_shows_the_gates_reason_on_a_403_in_the_frame(client, viewer_user):
    client.force_login(viewer_user)
    response = client.get("/security/")
    assert response.status_code == 403
    body = _text(response)
    assert NAV in body
    assert "You cannot do this" in body
    assert "viewer (read only)" in body
    assert "This needs the admin role (you are viewer)." in body  # the gate's reason, as a sentence


@pytest.mark.django_db
def test_it_sends_an_htmx_request_only_the_error_card(client, viewer_user):
    client.force_login(viewer_user)
    response = client.get("/security/", headers={"HX-Request": "true"})
    assert response.status_code == 403
    body = _text(response)
    assert body.lstrip().startswith('<section class="card error-page"')
    assert NAV not in body


@pytest.mark.django_db
def test_it_shows_a_405_in_the_frame_and_keeps_the_allow_header(client, admin_user):
    client.force_login(admin_user)
    response = client.put("/ports/")
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    body = _text(response)
    assert NAV in body
    assert "does not take a PUT request: it answers GET only" in body


@pytest.mark.django_db
def test_it_says_an_address_for_a_button_is_not_a_page(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/logout/")
    assert response.status_code == 405
    assert "OPTIONS" in response["Allow"]
    body = _text(response)
    assert "This address is not a page" in body
    assert "(POST only)" in body


@pytest.mark.django_db
def test_it_answers_json_for_a_405_under_the_api_and_keeps_the_allow_header(client, admin_user):
    client.force_login(admin_user)
    response = client.delete("/api/v1/checks")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method not allowed"}
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


@pytest.mark.django_db
@pytest.mark.urls("tests.console.test_error_pages")
def test_it_shows_a_500_in_the_frame_without_the_error(admin_user):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.get("/boom/")
    assert response.status_code == 500
    body = _text(response)
    assert "Something went wrong" in body
    assert NAV in body
    assert "a bug the page must not show" not in body
    assert "RuntimeError" not in body


def test_it_answers_json_for_a_500_under_the_api(rf):
    from console import error_pages

    response = error_pages.server_error(rf.get("/api/v1/ports"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert "log" in json.loads(response.content)["detail"]


@pytest.mark.django_db
def test_it_still_answers_a_500_page_when_the_frame_fails(rf, monkeypatch):
    from console import error_pages

    def broken(template, context=None, request=None):
        raise RuntimeError("the template engine is down")

    monkeypatch.setattr(error_pages.loader, "render_to_string", broken)
    response = error_pages.server_error(rf.get("/ports/"))
    assert response.status_code == 500
    assert "Something went wrong" in _text(response)


@pytest.mark.django_db
def test_it_serves_the_favicon_to_anyone(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in response.content
    assert "max-age=86400" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "words"),
    [
        ("admin", 'ada</span> — <span class="user-role">admin (administrator)'),
        ("operator", 'olive</span> — <span class="user-role">operator'),
        ("viewer", 'vic</span> — <span class="user-role">viewer (read only)'),
    ],
)
def test_it_names_the_user_and_the_role_in_words(client, make_user, role, words):
    name = {"admin": "ada", "operator": "olive", "viewer": "vic"}[role]
    client.force_login(make_user(name, role))
    body = _text(client.get("/account/password/"))
    assert words in body


@pytest.mark.django_db
def test_it_shows_the_password_rules_before_they_are_broken(client, admin_user):
    client.force_login(admin_user)
    body = _text(client.get("/account/password/"))
    assert "at least 8 characters" in body
    assert 'id="id_new_password1_helptext"' in body
    assert 'aria-describedby="id_new_password1_helptext"' in body
