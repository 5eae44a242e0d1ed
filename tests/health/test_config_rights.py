"""healthcheck.yml import and export: who may, with what token, and what the audit log keeps.

The file can create, change and delete every check and channel, and the export can carry every
credential the checks use: each step of an import answers to the gate with the caller's role,
token scope and address, and leaves a row saying who did it from where.
"""

from __future__ import annotations

import pytest

from console.foundation import gate
from console.foundation.models import AuditEntry
from health import config
from health.models import AlertChannel, Check

pytestmark = pytest.mark.django_db

ADDRESS = "127.0.0.9"  # not the test client's default, so a row that lost the request shows
FIRST = (
    "services:\n"
    "  api:\n"
    "    checks:\n"
    "      - {type: tcp, host: 127.0.0.1, port: 5000, name: api tcp}\n"
    "      - {type: tcp, host: 127.0.0.1, port: 5001, name: api spare}\n"
    "alerts:\n"
    "  hook: {kind: webhook, url: 'http://127.0.0.1:9/a'}\n"
)
SECOND = (
    "services:\n"
    "  api:\n"
    "    checks:\n"
    "      - {type: tcp, host: 127.0.0.1, port: 5002, name: api tcp}\n"
    "alerts:\n"
    "  hook: {kind: webhook, url: 'http://127.0.0.1:9/b'}\n"
)


def _post_import(client, headers, text, replace=False):
    return client.post(
        "/api/v1/health/import" + ("?replace=true" if replace else ""),
        text,
        content_type="application/yaml",
        headers=headers,
        REMOTE_ADDR=ADDRESS,
    )


def test_every_change_an_api_import_makes_is_audited_as_the_caller_from_their_address(
    client, admin_user, bearer
):
    headers = bearer(admin_user)
    assert _post_import(client, headers, FIRST).status_code == 200
    assert _post_import(client, headers, SECOND, replace=True).status_code == 200
    refused = _post_import(client, headers, "services:\n  api: [1]\n")
    assert refused.status_code == 422

    rows = list(AuditEntry.objects.order_by("id"))
    assert [(row.action, row.target, row.outcome) for row in rows] == [
        ("alert_channel.create", "hook", "ok"),
        ("check.create", "api tcp", "ok"),
        ("check.create", "api spare", "ok"),
        ("health.import", "", "ok"),
        ("alert_channel.update", "hook", "ok"),
        ("check.update", "api tcp", "ok"),
        ("check.delete", "api spare", "ok"),
        ("health.import", "", "ok"),
        ("health.import", "", "invalid"),
    ]
    assert {(row.address, row.username) for row in rows} == {(ADDRESS, admin_user.username)}
    imports = [row.detail for row in rows if row.action == "health.import"]
    assert imports == [
        {"created": 2, "updated": 0, "removed": 0, "channels": 1},
        {"created": 0, "updated": 1, "removed": 1, "channels": 1},
        {"error": "line 2: service 'api' must be a mapping"},
    ]


def test_an_admins_read_token_cannot_import_and_the_refusal_is_one_row(
    client, admin_user, personal_token
):
    _record, token = personal_token(admin_user, ["read"])
    response = _post_import(client, {"Authorization": f"Bearer {token}"}, FIRST)
    assert response.status_code == 403
    assert "scopes (read)" in response.json()["detail"]
    assert not Check.objects.exists() and not AlertChannel.objects.exists()
    (row,) = AuditEntry.objects.all()
    assert (row.action, row.outcome, row.address, row.username) == (
        "health.import",
        "forbidden",
        ADDRESS,
        admin_user.username,
    )
    assert (row.detail["scope"], row.detail["via"]) == ("read", "api")


def test_the_scope_an_import_is_given_caps_what_it_may_do(admin_user):
    # The service function's own contract, as the CLI and any caller without a request use it.
    with pytest.raises(gate.Refused, match=r"scopes \(read\)"):
        config.import_yaml(FIRST, admin_user, scope="read", environ={})
    # Alert channels are an admin's: an operate-scoped token of an admin may not make them...
    with pytest.raises(gate.Refused, match=r"scopes \(operate\)"):
        config.import_yaml(FIRST, admin_user, scope="operate", environ={})
    assert not Check.objects.exists() and not AlertChannel.objects.exists()
    # ...nor SQL checks, which run on this machine.
    query = "checks:\n  - {type: query, dsn: 'postgresql://app@127.0.0.1/app', query: SELECT 1}\n"
    with pytest.raises(gate.Refused, match=r"scopes \(operate\)"):
        config.import_yaml(query, admin_user, scope="operate", environ={})
    assert not Check.objects.exists()


def test_an_operate_scoped_import_cannot_change_or_remove_what_needs_an_admin(admin_user):
    config.import_yaml(FIRST, admin_user, environ={})
    query = "checks:\n  - {type: query, dsn: 'postgresql://app@127.0.0.1/app', query: SELECT 1}\n"
    config.import_yaml(query, admin_user, environ={})
    channel_before = AlertChannel.objects.get().config
    with pytest.raises(gate.Refused):
        config.import_yaml(SECOND, admin_user, scope="operate", environ={})
    assert AlertChannel.objects.get().config == channel_before
    with pytest.raises(gate.Refused):
        config.import_yaml(query.replace("SELECT 1", "SELECT 2"), admin_user, scope="operate")
    assert Check.objects.get(type="query").target["query"] == "SELECT 1"
    # replace would delete the SQL check, which is not in this file: refused, and nothing goes.
    tcp_only = "checks:\n  - {type: tcp, host: 127.0.0.1, port: 1, name: lone}\n"
    with pytest.raises(gate.Refused):
        config.import_yaml(tcp_only, admin_user, scope="operate", replace=True, environ={})
    assert Check.objects.filter(type="query").exists()
    assert not Check.objects.filter(name="lone").exists()


REDIS_WITH_PLACEHOLDER = (
    "checks:\n  - {type: redis, host: 127.0.0.1, port: 6379, password: '${PORTSIDE_PW}', name: r}\n"
)


def test_only_an_admins_full_import_stores_a_placeholder(admin_user, operator_user):
    env = {"PORTSIDE_PW": "secret"}
    for user, scope in ((operator_user, None), (admin_user, "operate")):
        with pytest.raises(config.ConfigError, match=r"^line 2: r: target\.password: "):
            config.import_yaml(REDIS_WITH_PLACEHOLDER, user, scope=scope, environ=env)
        assert not Check.objects.exists()
    config.import_yaml(REDIS_WITH_PLACEHOLDER, admin_user, environ=env)
    assert Check.objects.get().target["password"] == "${PORTSIDE_PW}"


def test_an_admins_reimport_updates_placeholders_as_written(admin_user):
    env = {"PORTSIDE_PW": "one", "PORTSIDE_PW2": "two", "PORTSIDE_HOOK": "http://127.0.0.1:9/"}
    channel = "alerts:\n  hook: {kind: webhook, url: '${PORTSIDE_HOOK}'}\n"
    config.import_yaml(REDIS_WITH_PLACEHOLDER + channel, admin_user, environ=env)
    changed = REDIS_WITH_PLACEHOLDER.replace("PORTSIDE_PW", "PORTSIDE_PW2") + channel.replace(
        "}'}", "}/b'}"
    )
    summary = config.import_yaml(changed, admin_user, environ=env)
    assert summary["updated"] == ["r"] and summary["channels"] == ["hook"]
    assert Check.objects.get().target["password"] == "${PORTSIDE_PW2}"
    assert AlertChannel.objects.get().config["url"] == "${PORTSIDE_HOOK}/b"


def test_an_import_keeps_the_checks_it_does_not_name_unless_told_to_replace(admin_user):
    Check.objects.create(name="mine", type="tcp", target={"host": "127.0.0.1", "port": 1})
    config.import_yaml(SECOND, admin_user, environ={})
    assert Check.objects.filter(name="mine").exists()


def test_the_export_carries_secrets_only_for_an_admin_with_an_admins_rights(admin_user):
    config.import_yaml(FIRST + "  pd: {kind: pagerduty, service_key: pd-key}\n", admin_user)
    # From the command line (no request): the admin's export has them.
    assert "pd-key" in config.export_for(admin_user)
    # An admin's operate-scoped token gets the operator's export, redacted.
    redacted = config.export_for(admin_user, scope="operate")
    assert "pd-key" not in redacted and "***" in redacted
    with pytest.raises(gate.Refused, match=r"scopes \(read\)"):
        config.export_for(admin_user, scope="read")
    rows = AuditEntry.objects.filter(action="health.export").order_by("id")
    assert [(row.outcome, row.target, row.detail.get("secrets")) for row in rows] == [
        ("ok", "healthcheck.yml", "included"),
        ("ok", "healthcheck.yml", "redacted"),
        ("forbidden", "", None),
    ]
    assert {row.username for row in rows} == {admin_user.username}


def test_an_api_export_is_audited_as_the_caller_from_their_address(client, admin_user, bearer):
    response = client.get("/api/v1/health/export", headers=bearer(admin_user), REMOTE_ADDR=ADDRESS)
    assert response.status_code == 200
    (row,) = AuditEntry.objects.filter(action="health.export")
    assert (row.address, row.username, row.target) == (
        ADDRESS,
        admin_user.username,
        "healthcheck.yml",
    )


def test_the_file_is_written_for_people(admin_user):
    # Names as written (not \u escapes), services in order, durations in the unit that reads.
    config.import_yaml(
        "services:\n"
        "  zeta:\n    checks:\n      - {type: tcp, host: 127.0.0.1, port: 1, name: a}\n"
        "  alpha:\n    checks:\n"
        "      - {type: tcp, host: 127.0.0.1, port: 2, name: café ☕, timeout: 1500ms}\n",
        admin_user,
        environ={},
    )
    text = config.export_yaml(reveal=False)
    assert "café ☕" in text
    assert "timeout: 1500ms" in text
    assert text.index("alpha:") < text.index("zeta:")


def test_the_export_reads_the_checks_channels_in_one_query(admin_user, django_assert_num_queries):
    hooks = "".join(
        f"  hook{n}: {{kind: webhook, url: 'http://127.0.0.1:9/{n}'}}\n" for n in range(1, 4)
    )
    checks = "".join(
        f"  - {{type: tcp, host: 127.0.0.1, port: {n}, name: c{n}, channels: [hook{n}]}}\n"
        for n in range(1, 4)
    )
    config.import_yaml(f"checks:\n{checks}alerts:\n{hooks}", admin_user, environ={})
    with django_assert_num_queries(3):  # the checks, their channels, the alert channels
        data = config.export_data(reveal=False)
    assert [entry["channels"] for entry in data["checks"]] == [["hook1"], ["hook2"], ["hook3"]]


def test_a_read_scope_is_refused_before_the_file_is_read(admin_user):
    # Even a file that would not parse: the refusal is the gate's, as health.import.
    with pytest.raises(gate.Refused, match=r"scopes \(read\)"):
        config.import_yaml("services: [", admin_user, scope="read", environ={})
    (row,) = AuditEntry.objects.all()
    assert (row.action, row.outcome, row.detail["scope"]) == ("health.import", "forbidden", "read")


def test_an_import_judges_the_request_it_is_given(rf, viewer_user):
    request = rf.post("/checks/import/", REMOTE_ADDR=ADDRESS)
    request.user = viewer_user
    with pytest.raises(gate.Refused, match="operator"):
        config.import_yaml(FIRST, viewer_user, request=request, environ={})
    (row,) = AuditEntry.objects.all()
    assert (row.action, row.address, row.username) == ("health.import", ADDRESS, "vic")


def test_an_import_from_the_command_line_is_audited_as_its_user(admin_user):
    config.import_yaml(FIRST, admin_user, environ={})
    with pytest.raises(config.ConfigError):
        config.import_yaml("services:\n  api: [1]\n", admin_user, environ={})
    rows = AuditEntry.objects.filter(action="health.import").order_by("id")
    assert [(row.outcome, row.username) for row in rows] == [
        ("ok", admin_user.username),
        ("invalid", admin_user.username),
    ]
