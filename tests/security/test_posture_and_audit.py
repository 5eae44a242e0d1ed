"""Posture, runtime settings and the audit log, through pages and the API."""

from __future__ import annotations

import pytest

from console.foundation import audit, runtime_settings, tokens
from console.foundation.models import AuditEntry
from console.security import posture
from console.security.models import PasswordCheck

pytestmark = pytest.mark.django_db


def _admin_token(user) -> str:
    return tokens.issue_pair(user)["access"]


def test_it_flags_a_weak_admin_password_and_debug(settings, make_user, client):
    weak = make_user("weakling", "admin", password="password")
    client.post("/login/", {"username": "weakling", "password": "password"})  # judged at sign-in
    assert PasswordCheck.objects.get(user=weak).weak
    settings.DEBUG = True
    items = {item.key: item for item in posture.assess()}
    assert (
        items["admin-passwords"].status == "fail" and "weakling" in items["admin-passwords"].detail
    )
    assert items["debug"].status == "fail" and items["debug"].fix


def test_it_fails_a_lan_bind_without_tls(settings, monkeypatch, admin_user):
    monkeypatch.setenv("CONSOLE_BOUND", "0.0.0.0:8000")
    monkeypatch.setenv("CONSOLE_BIND_SOURCE", "--lan")
    settings.LAN_MODE = True
    items = {item.key: item for item in posture.assess()}
    assert items["bind"].status == "fail" and "--tls" in items["bind"].fix
    assert items["networks"].status == "warn"
    # Django's deploy checks about HTTPS apply once the console leaves loopback.
    assert any(item.key.startswith("security.W") for item in posture.assess())


def test_it_warns_about_long_lived_admin_tokens(admin_user):
    runtime_settings.update({"personal_token_max_days": 365})
    tokens.issue_personal(admin_user, "forever", ["admin"], 365)
    items = {item.key: item for item in posture.assess()}
    assert items["admin-tokens"].status == "warn"


def test_it_serves_the_posture_in_the_api(api, admin_user):
    body = api("get", "/api/v1/security/posture", _admin_token(admin_user)).json()
    assert set(body["summary"]) == {"pass", "warn", "fail"}
    assert {item["key"] for item in body["items"]} >= {"bind", "debug", "admin-passwords"}


def test_it_edits_runtime_settings_and_the_code_reads_them(api, admin_user):
    token = _admin_token(admin_user)
    response = api(
        "patch",
        "/api/v1/security/settings",
        token,
        {"access_token_minutes": 5, "allowed_networks": "10.0.0.0/8, 192.168.1.7"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["allowed_networks"] == "10.0.0.0/8\n192.168.1.7/32"
    assert "Allowed hosts" in body["fixed"] and "Content-Security-Policy" in body["fixed"]
    assert tokens.issue_pair(admin_user)["expires_in"] == 300
    assert runtime_settings.address_allowed("10.9.9.9") and not runtime_settings.address_allowed(
        "172.16.0.1"
    )
    entry = AuditEntry.objects.get(action="security.settings")
    assert entry.detail["changes"]["access_token_minutes"] == ["15", "5"]
    bad = api("patch", "/api/v1/security/settings", token, {"access_token_minutes": 600})
    assert bad.status_code == 422


def test_it_edits_settings_on_the_security_page(client, admin_user):
    client.force_login(admin_user)
    page = client.get("/security/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Posture" in text and "Exposure audit" in text and "Fixed at start" in text
    form = {
        field: getattr(runtime_settings.current(), field) for field in runtime_settings.EDITABLE
    }
    form.update(lockout_failures=7, command_checks="")
    assert client.post("/security/", form).status_code == 302
    assert runtime_settings.current().lockout_failures == 7
    form.update(allowed_networks="nonsense")
    refused = client.post("/security/", form)
    assert refused.status_code == 422 and "not a network" in refused.content.decode()


def test_it_filters_the_audit_log_in_the_api_and_the_page(api, client, admin_user):
    audit.record("port.terminate", user=admin_user, target="port 5000 pid 42", outcome="terminated")
    audit.record("auth.login", target="mallory", outcome="denied", username="mallory")
    token = _admin_token(admin_user)
    body = api("get", "/api/v1/audit?action=port.&limit=5", token).json()
    assert body["count"] == 1 and body["items"][0]["target"] == "port 5000 pid 42"
    denied = api("get", "/api/v1/audit?outcome=denied", token).json()
    assert [item["username"] for item in denied["items"]] == ["mallory"]
    client.force_login(admin_user)
    page = client.get("/audit/?user=mallory").content.decode()
    assert "mallory" in page and "port 5000 pid 42" not in page
    fragment = client.get("/audit/?action=port.", headers={"HX-Request": "true"})
    assert fragment.content.decode().lstrip().startswith('<div id="audit-table"')


def test_it_never_lets_the_audit_log_be_edited(client, make_user):
    root = make_user("root", "superuser")
    entry = audit.record("auth.login", user=root, target="root")
    client.force_login(root)
    assert client.post(f"/admin/console/auditentry/{entry.pk}/delete/").status_code == 403
    assert client.post(f"/admin/console/auditentry/{entry.pk}/change/").status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_it_records_unauthenticated_api_calls(client):
    assert client.get("/api/v1/ports").status_code == 401
    assert AuditEntry.objects.filter(action="authz.unauthenticated", outcome="401").exists()
