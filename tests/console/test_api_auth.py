"""The token rules: every bad token gets the same 401."""

from __future__ import annotations

import time

import jwt
import pytest
from django.conf import settings

from console.foundation import tokens
from tests.conftest import jwt_claims

pytestmark = pytest.mark.django_db

PORTS = "/api/v1/ports?port=1"


def _get(client, token: str | None, path: str = PORTS):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get(path, headers=headers)


def test_it_issues_a_pair_for_good_credentials(client, viewer_user):
    response = client.post(
        "/api/v1/auth/token",
        {"username": "vic", "password": "correct-horse-battery-9"},
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert _get(client, body["access"]).status_code == 200


def test_it_refuses_wrong_credentials(client, viewer_user):
    response = client.post(
        "/api/v1/auth/token", {"username": "vic", "password": "no"}, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid username or password"}


def test_it_requires_a_token(client):
    response = _get(client, None)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_it_ignores_a_token_in_the_query_string(client, viewer_user):
    access = tokens.issue_pair(viewer_user)["access"]
    assert client.get(f"{PORTS}&token={access}").status_code == 401


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda u: jwt.encode(jwt_claims(u), None, algorithm="none"), id="alg-none"),
        pytest.param(
            lambda u: jwt.encode(jwt_claims(u), settings.JWT_SIGNING_KEY, algorithm="HS512"),
            id="hs512",
        ),
        pytest.param(
            lambda u: jwt.encode(
                jwt_claims(u), "a-different-key-of-32-bytes-at-least!", algorithm="HS256"
            ),
            id="wrong-key",
        ),
        pytest.param(
            lambda u: jwt.encode(
                jwt_claims(u, exp=int(time.time()) - 120),
                settings.JWT_SIGNING_KEY,
                algorithm="HS256",
            ),
            id="expired",
        ),
        pytest.param(
            lambda u: jwt.encode(
                jwt_claims(u, exp=None), settings.JWT_SIGNING_KEY, algorithm="HS256"
            ),
            id="no-exp",
        ),
        pytest.param(
            lambda u: jwt.encode(
                jwt_claims(u, aud="someone-else"), settings.JWT_SIGNING_KEY, algorithm="HS256"
            ),
            id="wrong-aud",
        ),
        pytest.param(
            lambda u: jwt.encode(
                jwt_claims(u, iss="someone-else"), settings.JWT_SIGNING_KEY, algorithm="HS256"
            ),
            id="wrong-iss",
        ),
        pytest.param(
            lambda u: jwt.encode(
                jwt_claims(u, jti=None), settings.JWT_SIGNING_KEY, algorithm="HS256"
            ),
            id="no-jti",
        ),
        pytest.param(lambda u: tokens.issue_pair(u)["refresh"], id="refresh-as-access"),
        pytest.param(lambda u: "not.a.jwt", id="garbage"),
    ],
)
def test_it_refuses_every_bad_token_the_same_way(client, viewer_user, forge):
    response = _get(client, forge(viewer_user))
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_it_refuses_a_token_of_a_deactivated_user(client, viewer_user):
    access = tokens.issue_pair(viewer_user)["access"]
    viewer_user.is_active = False
    viewer_user.save()
    assert _get(client, access).status_code == 401


def test_it_rotates_refresh_tokens_and_kills_the_family_on_reuse(client, viewer_user):
    first = tokens.issue_pair(viewer_user)["refresh"]
    rotated = client.post(
        "/api/v1/auth/refresh", {"refresh": first}, content_type="application/json"
    )
    assert rotated.status_code == 200
    second = rotated.json()["refresh"]
    reused = client.post(
        "/api/v1/auth/refresh", {"refresh": first}, content_type="application/json"
    )
    assert reused.status_code == 401
    # The thief's replay revoked the family: the legitimate newer token is dead too.
    assert (
        client.post(
            "/api/v1/auth/refresh", {"refresh": second}, content_type="application/json"
        ).status_code
        == 401
    )


def test_it_revokes_a_refresh_token(client, viewer_user):
    refresh = tokens.issue_pair(viewer_user)["refresh"]
    assert (
        client.post(
            "/api/v1/auth/revoke", {"refresh": refresh}, content_type="application/json"
        ).status_code
        == 204
    )
    assert (
        client.post(
            "/api/v1/auth/refresh", {"refresh": refresh}, content_type="application/json"
        ).status_code
        == 401
    )
