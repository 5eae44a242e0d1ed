"""Prometheus metrics at /api/v1/metrics for any token with read."""

from __future__ import annotations

import pytest
from django.utils import timezone

from health import storage
from health.models import Check

pytestmark = pytest.mark.django_db


def test_it_exports_check_state_latency_uptime_and_listeners(
    client, viewer_user, bearer, listening_child
):
    check = Check.objects.create(
        name="api", service="main_api", type="tcp", target={"host": "127.0.0.1", "port": 1}
    )
    storage.store([storage.Observation(check.id, timezone.now(), True, 12.5, "ok")])
    listening_child()
    response = client.get("/api/v1/metrics", headers=bearer(viewer_user))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    labels = 'check="api",service="main_api",type="tcp"'
    # The client library sorts label names.
    assert 'portside_check_state{check="api",service="main_api",state="up",type="tcp"} 1.0' in text
    assert (
        'portside_check_state{check="api",service="main_api",state="down",type="tcp"} 0.0' in text
    )
    assert f"portside_check_up{{{labels}}} 1.0" in text
    assert f"portside_check_latency_ms{{{labels}}} 12.5" in text
    assert f'portside_check_uptime_ratio{{{labels},window="24h"}} 1.0' in text
    assert 'portside_listeners{exposure="loopback",proto="tcp"}' in text


def test_it_needs_a_token(client):
    assert client.get("/api/v1/metrics").status_code == 401
