"""The API with the browser's session (the docs' Try it out): reads from this console's own
pages, writes only with the CSRF header, every right at the same gate as a bearer's."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory

from console.foundation import api_auth, tokens
from console.foundation.models import AuditEntry

pytestmark = pytest.mark.django_db

PORTS = "/api/v1/ports?port=1"
PROJECTS = "/api/v1/projects"
TERMINATE = "/api/v1/ports/5000/terminate"
FOREIGN = "http://localhost:5173"  # a dev server on another port of this machine


def _signed_in(user) -> tuple[Client, str]:
    """A browser that signed in and opened the API docs: (its client, its CSRF token)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/v1/docs").status_code == 200
    return client, client.cookies["csrftoken"].value


def _project(name: str = "shop") -> dict:
    return {"name": name, "preferred_port": 38210}


def _post(client, path: str, body: dict, **headers):
    return client.post(path, body, content_type="application/json", headers=headers)


# Reads


def test_it_reads_with_a_signed_in_viewers_session(viewer_user):
    client, _ = _signed_in(viewer_user)
    response = client.get(PORTS)
    assert response.status_code == 200
    assert "items" in response.json()


def test_it_reads_from_its_own_pages_and_from_the_address_bar(viewer_user):
    client, _ = _signed_in(viewer_user)
    for headers in (
        {"Origin": "http://testserver"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
    ):
        assert client.get(PORTS, headers=headers).status_code == 200, headers


def test_it_refuses_a_session_read_from_another_origin(viewer_user):
    client, _ = _signed_in(viewer_user)
    response = client.get(PORTS, headers={"Origin": FOREIGN})
    assert response.status_code == 403
    assert response.json() == {
        "detail": "the API takes a browser session only from this console's own pages"
    }


def test_it_refuses_a_session_read_that_the_browser_says_came_from_another_site(viewer_user):
    # <img src> from localhost:5173 sends no Origin, but the cookie (SameSite ignores ports)
    # and Sec-Fetch-Site: same-site.
    client, _ = _signed_in(viewer_user)
    for site in ("same-site", "cross-site"):
        response = client.get(PORTS, headers={"Sec-Fetch-Site": site})
        assert response.status_code == 403, site


def test_it_records_a_refused_session_request_with_its_reason(viewer_user):
    client, _ = _signed_in(viewer_user)
    client.get(PORTS, headers={"Origin": FOREIGN})
    entry = AuditEntry.objects.get(action="authz.denied")
    assert entry.username == "vic"
    assert entry.target == "GET /api/v1/ports"
    assert entry.detail["reason"] == (
        "the API takes a browser session only from this console's own pages"
    )


def test_it_refuses_the_session_of_a_deactivated_user(viewer_user):
    client, _ = _signed_in(viewer_user)
    viewer_user.is_active = False
    viewer_user.save()
    response = client.get(PORTS)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_it_refuses_a_session_that_signed_out(viewer_user):
    client, _ = _signed_in(viewer_user)
    client.logout()
    assert client.get(PORTS).status_code == 401


def test_it_gates_a_session_read_by_role(viewer_user, admin_user):
    viewer, _ = _signed_in(viewer_user)
    refused = viewer.get("/api/v1/security/posture")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "this needs the admin role (you are viewer)"
    admin, _ = _signed_in(admin_user)
    assert admin.get("/api/v1/security/posture").status_code == 200


# Writes


def test_it_refuses_a_viewers_session_write_by_role_even_with_the_csrf_header(viewer_user):
    client, csrf = _signed_in(viewer_user)
    body = {"pid": 1, "create_time": 0, "signal": "TERM"}
    response = _post(client, TERMINATE, body, X_CSRFToken=csrf)
    assert response.status_code == 403
    assert response.json()["detail"] == "this needs the operator role (you are viewer)"
    entry = AuditEntry.objects.get(action="port.terminate")
    assert entry.outcome == "forbidden"
    assert entry.detail["via"] == "api"
    assert entry.detail["scope"] == ""


def test_it_refuses_an_operators_session_write_without_the_csrf_header(operator_user):
    client, _ = _signed_in(operator_user)
    response = _post(client, PROJECTS, _project())
    assert response.status_code == 403
    assert response.json() == {
        "detail": "a write with the browser session needs the X-CSRFToken header"
    }
    assert client.get(f"{PROJECTS}/shop").status_code == 404


def test_it_takes_an_operators_session_write_with_the_csrf_header(operator_user):
    client, csrf = _signed_in(operator_user)
    response = _post(client, PROJECTS, _project(), X_CSRFToken=csrf)
    assert response.status_code == 201
    assert response.json()["name"] == "shop"
    patched = client.patch(
        f"{PROJECTS}/shop",
        {"notes": "the storefront"},
        content_type="application/json",
        headers={"X-CSRFToken": csrf},
    )
    assert patched.status_code == 200
    assert client.delete(f"{PROJECTS}/shop", headers={"X-CSRFToken": csrf}).status_code == 204


def test_it_refuses_a_session_write_whose_csrf_header_does_not_match_the_cookie(operator_user):
    client, csrf = _signed_in(operator_user)
    wrong = ("b" if csrf[0] == "a" else "a") + csrf[1:]
    response = _post(client, PROJECTS, _project(), X_CSRFToken=wrong)
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "CSRF check failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect."
    )


def test_it_refuses_a_session_write_without_a_csrf_cookie(operator_user):
    client, csrf = _signed_in(operator_user)
    del client.cookies["csrftoken"]
    response = _post(client, PROJECTS, _project(), X_CSRFToken=csrf)
    assert response.status_code == 403
    assert response.json()["detail"] == "CSRF check failed: CSRF cookie not set."


def test_it_refuses_a_session_write_from_another_origin_even_with_the_token(operator_user):
    client, csrf = _signed_in(operator_user)
    response = _post(client, PROJECTS, _project(), X_CSRFToken=csrf, Origin=FOREIGN)
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "the API takes a browser session only from this console's own pages"
    )
    assert client.get(f"{PROJECTS}/shop").status_code == 404


def test_it_takes_a_session_write_from_its_own_page(operator_user):
    client, csrf = _signed_in(operator_user)
    response = _post(
        client,
        PROJECTS,
        _project(),
        X_CSRFToken=csrf,
        Origin="http://testserver",
        Sec_Fetch_Site="same-origin",
    )
    assert response.status_code == 201


def test_it_gives_a_session_its_roles_full_scope(admin_user, operator_user, personal_token):
    # An admin's session revokes anyone's token, as the Tokens page would; no token caps it.
    record, _ = personal_token(operator_user, ["read"])
    client, csrf = _signed_in(admin_user)
    response = client.delete(f"/api/v1/auth/tokens/{record.id}", headers={"X-CSRFToken": csrf})
    assert response.status_code == 204
    record.refresh_from_db()
    assert record.revoked_at is not None


def test_it_judges_a_request_with_a_bearer_by_the_bearer_alone(admin_user, personal_token):
    client, _ = _signed_in(admin_user)
    _, raw = personal_token(admin_user, ["read"])
    # A read-scoped token caps the admin it belongs to, session or not.
    capped = client.get("/api/v1/security/posture", headers={"Authorization": f"Bearer {raw}"})
    assert capped.status_code == 403
    assert capped.json()["detail"] == "this token's scopes (read) do not include admin"
    # A bad token is a 401 though the session would have passed.
    for header in ("Bearer not-a-token", "Basic YWRhOnB3", ""):
        assert client.get(PORTS, headers={"Authorization": header}).status_code == 401, header


def test_it_still_takes_a_bearer_without_a_session(client, operator_user):
    access = tokens.issue_pair(operator_user)["access"]
    response = _post(client, PROJECTS, _project(), Authorization=f"Bearer {access}")
    assert response.status_code == 201


def test_it_keeps_the_sign_in_endpoint_to_its_own_rules(viewer_user):
    client, csrf = _signed_in(viewer_user)
    credentials = {"username": "vic", "password": "correct-horse-battery-9"}
    foreign = _post(client, "/api/v1/auth/token", credentials, Origin=FOREIGN, X_CSRFToken=csrf)
    assert foreign.status_code == 403
    # No CSRF header needed: it exchanges credentials, not the session.
    assert _post(client, "/api/v1/auth/token", credentials).status_code == 200


# browser_session on its own, for what the test client cannot send


def _request(method: str, user, **headers):
    request = RequestFactory().generic(method, "/api/v1/ports", headers=headers)
    request.user = user
    return request


def test_it_reads_a_head_request_as_a_read(viewer_user):
    assert api_auth.browser_session(_request("HEAD", viewer_user)) == viewer_user


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_it_asks_every_other_method_for_the_csrf_header(viewer_user, method):
    with pytest.raises(PermissionDenied, match="needs the X-CSRFToken header"):
        api_auth.browser_session(_request(method, viewer_user))


def test_it_leaves_an_anonymous_request_to_the_next_rule():
    assert api_auth.browser_session(_request("POST", AnonymousUser())) is None
    request = RequestFactory().get("/api/v1/ports")
    assert api_auth.browser_session(request) is None  # no authentication middleware ran


def test_it_checks_csrf_afresh_even_when_a_request_says_it_was_checked(viewer_user):
    request = _request("POST", viewer_user, X_CSRFToken="x" * 32)
    request.csrf_processing_done = True
    with pytest.raises(PermissionDenied, match="CSRF check failed: CSRF cookie not set"):
        api_auth.browser_session(request)


def test_it_marks_a_session_as_uncapped_by_any_token(viewer_user):
    request = _request("GET", viewer_user)
    api_auth.browser_session(request)
    assert request.token_scope is None


def test_it_spells_its_own_origin_as_a_browser_does():
    assert api_auth.own_origin(RequestFactory().get("/", secure=True)) == "https://testserver"


# The docs page that makes these calls


def _swagger_settings(client) -> dict:
    page = client.get("/api/v1/docs").content.decode()
    found = re.search(r'<script id="swagger-settings" type="application/json">(.*?)</script>', page)
    assert found is not None, "the docs page carries no Swagger settings"
    return json.loads(found.group(1))


def test_it_offers_a_viewer_try_it_out_on_reads_only(viewer_user, operator_user):
    viewer, _ = _signed_in(viewer_user)
    assert _swagger_settings(viewer)["supportedSubmitMethods"] == ["get", "head"]
    operator, _ = _signed_in(operator_user)
    settings = _swagger_settings(operator)
    assert "supportedSubmitMethods" not in settings
    assert settings["url"] == "/api/v1/openapi.json"
    assert settings["validatorUrl"] is None  # no badge fetched from validator.swagger.io


def test_it_serves_the_docs_in_the_consoles_frame_from_its_own_files(viewer_user):
    client, _ = _signed_in(viewer_user)
    page = client.get("/api/v1/docs").content.decode()
    assert '<header class="topbar">' in page
    assert "<title>API · Portside</title>" in page
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert "/static/ninja/swagger-ui-bundle.js" in scripts
    assert "/static/js/api-docs.js" in scripts
    assert [src for src in scripts if not src.startswith("/static/")] == []
    assert client.get("/static/ninja/swagger-ui-bundle.js").status_code == 200


def test_it_names_one_bearer_scheme_in_the_spec(viewer_user, bearer):
    spec = Client().get("/api/v1/openapi.json", headers=bearer(viewer_user)).json()
    assert list(spec["components"]["securitySchemes"]) == ["JWTBearer"]
    needs = {
        str(operation.get("security"))
        for operations in spec["paths"].values()
        for operation in operations.values()
    }
    assert needs == {"[{'JWTBearer': []}]", "None"}
    assert "security" not in spec["paths"]["/api/v1/auth/refresh"]["post"]
