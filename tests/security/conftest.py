"""Security test helpers: personal tokens and JSON calls with a bearer."""

from __future__ import annotations

import pytest


@pytest.fixture
def personal_token():
    """personal_token(user, scopes=["read"], days=30) -> (record, raw JWT)."""
    from console.foundation import tokens

    def make(user, scopes=("read",), days: int = 30):
        return tokens.issue_personal(user, "test token", list(scopes), days)

    return make


@pytest.fixture
def api(client):
    """api(method, path, token=None, body=None) -> response, JSON bodies and a bearer header."""

    def call(method: str, path: str, token: str | None = None, body=None, **extra):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return getattr(client, method.lower())(
            path,
            body if body is not None else None,
            content_type="application/json",
            headers=headers,
            **extra,
        )

    return call
