"""Sign-in cannot be used to lock out the people signing in."""

from __future__ import annotations

import json

import pytest

from console.security.models import SignInFailure

pytestmark = pytest.mark.django_db


def test_a_foreign_page_cannot_lock_a_user_out(client, operator_user):
    wrong = json.dumps({"username": operator_user.username, "password": "wrong"})
    for _ in range(6):
        # What a page on localhost:5173 can send without a CORS preflight.
        plain = client.post(
            "/api/v1/auth/token",
            wrong,
            content_type="text/plain",
            headers={"Origin": "http://localhost:5173"},
        )
        assert plain.status_code == 415
        foreign = client.post(
            "/api/v1/auth/token",
            wrong,
            content_type="application/json",
            headers={"Origin": "http://localhost:5173"},
        )
        assert foreign.status_code == 403
    assert not SignInFailure.objects.exists()
    good = json.dumps({"username": operator_user.username, "password": "correct-horse-battery-9"})
    response = client.post("/api/v1/auth/token", good, content_type="application/json")
    assert response.status_code == 200 and "access" in response.json()
    own = client.post(
        "/api/v1/auth/token",
        good,
        content_type="application/json",
        headers={"Origin": "http://testserver"},
    )
    assert own.status_code == 200
