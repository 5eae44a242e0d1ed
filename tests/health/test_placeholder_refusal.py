"""A refused `${...}` names the field it is in, so a person knows what to change."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ({"host": "127.0.0.1", "port": 1, "send": "${PATH}"}, "target.send"),
        ({"host": "127.0.0.1", "port": 1, "expect": "${PORTSIDE_X}"}, "target.expect"),
    ],
)
def test_a_placeholder_outside_an_admin_import_is_refused_naming_its_field(
    client, operator_user, bearer, target, field
):
    response = client.post(
        "/api/v1/checks",
        json.dumps({"name": "x", "type": "tcp", "target": target}),
        content_type="application/json",
        headers=bearer(operator_user),
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}: ")
