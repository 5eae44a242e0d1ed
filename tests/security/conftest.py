"""Security test helpers: JSON calls with a bearer (personal tokens: tests/conftest.py)."""

from __future__ import annotations

import pytest


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
