"""The health API: CRUD, validation (422 naming the field), roles, run/pause/resume, results."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from console.foundation.models import AuditEntry
from health.models import Check, Result

pytestmark = pytest.mark.django_db


def _post(client, url, body, headers):
    return client.post(url, json.dumps(body), content_type="application/json", headers=headers)


def _http_check(url: str, **extra) -> dict:
    return {
        "name": "api",
        "service": "main_api",
        "type": "http",
        "target": {"url": url},
        "interval_s": 30,
        "timeout_s": 2,
        **extra,
    }


def test_it_creates_reads_updates_and_deletes_a_check(client, operator_user, bearer, http_server):
    headers = bearer(operator_user)
    created = _post(client, "/api/v1/checks", _http_check(http_server.url), headers)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["state"] == "pending" and body["target"]["expected_status"] == [200]
    assert body["uptime"] == {"24h": None, "7d": None, "30d": None}

    listed = client.get("/api/v1/checks", headers=headers).json()
    assert listed["count"] == 1 and listed["items"][0]["name"] == "api"

    patched = client.patch(
        f"/api/v1/checks/{body['id']}",
        {"interval_s": 60, "warn_ms": 50},
        content_type="application/json",
        headers=headers,
    )
    assert patched.status_code == 200 and patched.json()["interval_s"] == 60
    assert patched.json()["target"]["url"] == http_server.url

    assert client.delete(f"/api/v1/checks/{body['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/checks/{body['id']}", headers=headers).status_code == 404
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert {"check.create", "check.update", "check.delete"} <= set(actions)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "smtp"}, "type"),
        ({"interval_s": 0}, "interval_s"),
        ({"timeout_s": 60}, "timeout_s"),
        ({"target": {"url": "not a url"}}, "target.url"),
        ({"target": {"url": "ftp://example.com/"}}, "target.url"),
        ({"target": {"url": "http://127.0.0.1:99999/"}}, "target.url"),
        ({"warn_ms": 500, "crit_ms": 100}, "warn_ms"),
    ],
)
def test_it_rejects_bad_input_with_422_naming_the_field(
    client, operator_user, bearer, change, field
):
    response = _post(
        client,
        "/api/v1/checks",
        {**_http_check("http://127.0.0.1/"), **change},
        bearer(operator_user),
    )
    assert response.status_code == 422, response.content
    assert field in json.dumps(response.json()["detail"])
    assert not Check.objects.exists()


def test_it_rejects_a_bad_patch_with_422(client, operator_user, bearer):
    check = Check.objects.create(name="t", type="tcp", target={"host": "127.0.0.1", "port": 1})
    response = client.patch(
        f"/api/v1/checks/{check.id}",
        {"target": {"port": 0}},
        content_type="application/json",
        headers=bearer(operator_user),
    )
    assert response.status_code == 422 and "target.port" in response.json()["detail"]


def test_viewers_read_but_do_not_change(client, viewer_user, bearer):
    headers = bearer(viewer_user)
    assert client.get("/api/v1/checks", headers=headers).status_code == 200
    response = _post(client, "/api/v1/checks", _http_check("http://127.0.0.1/"), headers)
    assert response.status_code == 403
    check = Check.objects.create(name="t", type="tcp", target={"host": "127.0.0.1", "port": 1})
    assert client.post(f"/api/v1/checks/{check.id}/run", headers=headers).status_code == 403
    assert client.post(f"/api/v1/checks/{check.id}/pause", headers=headers).status_code == 403
    assert AuditEntry.objects.filter(outcome="forbidden").count() == 3


def test_command_checks_are_for_admins_only(client, operator_user, admin_user, bearer):
    command = {
        "name": "cmd",
        "type": "command",
        "target": {"argv": ["true"]},
        "interval_s": 30,
        "timeout_s": 5,
    }
    assert _post(client, "/api/v1/checks", command, bearer(operator_user)).status_code == 403
    assert _post(client, "/api/v1/checks", command, bearer(admin_user)).status_code == 201


@override_settings(LAN_MODE=True, CONSOLE_ALLOW_COMMAND_CHECKS=False)
def test_command_checks_are_off_in_lan_mode_until_the_security_page_allows_them(
    client, admin_user, bearer
):
    from console.foundation import runtime_settings

    command = {"name": "cmd", "type": "command", "target": {"argv": ["true"]}}
    response = _post(client, "/api/v1/checks", command, bearer(admin_user))
    assert response.status_code == 422 and "LAN mode" in response.json()["detail"]
    # The one switch: the Security page's setting, read by the health code too.
    runtime_settings.update({"command_checks": True})
    assert _post(client, "/api/v1/checks", command, bearer(admin_user)).status_code == 201


def test_it_runs_pauses_and_resumes_a_check(client, operator_user, bearer, http_server):
    headers = bearer(operator_user)
    check_id = _post(client, "/api/v1/checks", _http_check(http_server.url), headers).json()["id"]
    ran = client.post(f"/api/v1/checks/{check_id}/run", headers=headers).json()
    assert ran["state"] == "up" and ran["last_result"]["outcome"] == "up"
    assert ran["last_result"]["latency_ms"] > 0
    assert ran["uptime"]["24h"] == 100.0

    paused = client.post(f"/api/v1/checks/{check_id}/pause", headers=headers).json()
    assert paused["state"] == "paused" and paused["enabled"] is False
    resumed = client.post(f"/api/v1/checks/{check_id}/resume", headers=headers).json()
    assert resumed["state"] == "pending" and resumed["enabled"] is True

    results = client.get(f"/api/v1/checks/{check_id}/results?limit=10", headers=headers).json()
    assert results["count"] == 1 and results["items"][0]["outcome"] == "up"
    assert {"check.run", "check.pause", "check.resume"} <= set(
        AuditEntry.objects.values_list("action", flat=True)
    )


def test_it_hides_secrets_from_the_check_payload(client, operator_user, bearer):
    headers = bearer(operator_user)
    body = {"name": "cache", "type": "redis", "target": {"port": 6379, "password": "s3cret"}}
    created = _post(client, "/api/v1/checks", body, headers).json()
    assert created["target"]["password"] == "***"
    # Sending the redacted value back keeps the stored password.
    client.patch(
        f"/api/v1/checks/{created['id']}",
        {"target": created["target"]},
        content_type="application/json",
        headers=headers,
    )
    assert Check.objects.get().target["password"] == "s3cret"


def test_it_pages_and_filters_checks(client, viewer_user, bearer):
    for index in range(5):
        Check.objects.create(
            name=f"c{index}",
            service="a" if index < 3 else "b",
            type="tcp",
            target={"host": "127.0.0.1", "port": 1},
        )
    headers = bearer(viewer_user)
    page = client.get("/api/v1/checks?limit=2&offset=1", headers=headers).json()
    assert page["count"] == 5 and len(page["items"]) == 2
    assert client.get("/api/v1/checks?service=b", headers=headers).json()["count"] == 2
    assert client.get("/api/v1/checks?state=nope", headers=headers).status_code == 422
    assert client.get("/api/v1/checks").status_code == 401
    assert not Result.objects.exists()
