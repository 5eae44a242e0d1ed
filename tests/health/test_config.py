"""healthcheck.yml: the issue's example, errors that name the line, all-or-nothing, round trip."""

from __future__ import annotations

import textwrap

import pytest

from console.foundation.models import AuditEntry
from health import config
from health.models import AlertChannel, Check

pytestmark = pytest.mark.django_db

EXAMPLE = textwrap.dedent(
    """\
    services:
      main_api:
        endpoint: http://localhost:5000/health
        checks:
          - {type: http, method: GET, expected_status: 200, timeout: 5s, interval: 30s}
          - {type: tcp, host: localhost, port: 5000, timeout: 3s, interval: 30s}
          - {type: response_time, threshold: 100ms, warning_threshold: 50ms}
      database:
        checks:
          - {type: query, dsn: "postgresql://app@127.0.0.1/app", query: "SELECT 1", timeout: 10s}
      cache:
        checks:
          - {type: ping, command: "redis-cli ping", expected: "PONG"}
    alerts:
      slack: {webhook_url: "${PORTSIDE_SLACK_WEBHOOK}", channel: "#dev-alerts"}
      email: {recipients: [dev-team@example.com]}
      pagerduty: {service_key: "${PORTSIDE_PAGERDUTY_KEY}"}
    """
)
ENV = {"PORTSIDE_SLACK_WEBHOOK": "http://127.0.0.1:9/slack", "PORTSIDE_PAGERDUTY_KEY": "pd-key"}


def _import(text: str, user, **kwargs):
    return config.import_yaml(text, user, environ=ENV, **kwargs)


def test_it_imports_the_example_of_the_issue(admin_user):
    summary = _import(EXAMPLE, admin_user)
    assert len(summary["created"]) == 4 and summary["channels"] == ["slack", "email", "pagerduty"]
    http = Check.objects.get(service="main_api", type="http")
    assert http.target["url"] == "http://localhost:5000/health"
    assert (http.warn_ms, http.crit_ms, http.interval_s, http.timeout_s) == (50, 100, 30, 5)
    tcp = Check.objects.get(service="main_api", type="tcp")
    assert tcp.target["port"] == 5000 and tcp.timeout_s == 3 and tcp.crit_ms is None
    query = Check.objects.get(service="database")
    assert query.target == {"dsn": "postgresql://app@127.0.0.1/app", "query": "SELECT 1"}
    assert query.timeout_s == 10
    redis = Check.objects.get(service="cache")
    assert redis.type == "redis" and redis.target["port"] == 6379  # no redis-cli needed
    slack = AlertChannel.objects.get(name="slack")
    # The placeholder is stored, never the value: it is resolved when an alert is sent.
    assert slack.config == {"webhook_url": "${PORTSIDE_SLACK_WEBHOOK}", "channel": "#dev-alerts"}
    pagerduty = AlertChannel.objects.get(kind="pagerduty")
    assert pagerduty.config["routing_key"] == "${PORTSIDE_PAGERDUTY_KEY}"
    assert AuditEntry.objects.filter(action="health.import", outcome="ok").exists()


def test_export_then_import_gives_the_same_set_up(admin_user):
    _import(EXAMPLE, admin_user)
    Check.objects.filter(type="tcp").update(enabled=False, state="paused")
    first = config.export_yaml(reveal=True)
    assert "${PORTSIDE_SLACK_WEBHOOK}" in first  # an admin's export writes the placeholder back
    before = _snapshot()
    Check.objects.all().delete()
    AlertChannel.objects.all().delete()
    _import(first, admin_user)
    assert _snapshot() == before
    assert config.export_yaml(reveal=True) == first


def _snapshot():
    checks = sorted(
        (
            c.name,
            c.service,
            c.type,
            c.target,
            c.interval_s,
            c.timeout_s,
            c.warn_ms,
            c.crit_ms,
            c.failures_before_down,
            c.successes_before_up,
            c.enabled,
        )
        for c in Check.objects.all()
    )
    channels = sorted(
        (c.name, c.kind, c.config, c.on_degraded, c.remind_every_s)
        for c in AlertChannel.objects.all()
    )
    return str(checks), str(channels)


def test_importing_twice_updates_instead_of_duplicating(admin_user):
    _import(EXAMPLE, admin_user)
    summary = _import(EXAMPLE.replace("interval: 30s}", "interval: 60s}"), admin_user)
    assert summary["created"] == [] and len(summary["updated"]) == 4
    assert Check.objects.count() == 4
    assert Check.objects.get(service="main_api", type="http").interval_s == 60


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("services:\n  a:\n    checks:\n      - {type: smtp}\n", 4, "unknown check type 'smtp'"),
        ("services:\n  a:\n    checks:\n      - type: http\n        url: nope\n", 4, "target.url"),
        (
            "services:\n  a:\n    checks:\n      - {type: tcp, port: 1, interval: 0s}\n",
            4,
            "interval_s",
        ),
        (
            "services:\n  a:\n    checks:\n\n      - {type: tcp, port: 1, timeout: 9s,"
            " interval: 5s}\n",
            5,
            "longer than the interval",
        ),
        (
            "services:\n  a:\n    checks:\n      - {type: tcp, port: 1, colour: red}\n",
            4,
            "unknown key 'colour'",
        ),
        (
            "services:\n  a:\n    checks:\n      - {type: tcp, port: 1, timeout: soon}\n",
            4,
            "not a duration",
        ),
        (
            "services:\n  a:\n    checks:\n      - {type: response_time, threshold: 5ms}\n",
            4,
            "needs an http check",
        ),
        (
            "alerts:\n  slack: {webhook_url: '${PORTSIDE_NOPE}'}\n",
            2,
            "PORTSIDE_NOPE is not set",
        ),
        ("alerts:\n  teams: {url: 'http://x'}\n", 2, "unknown kind 'teams'"),
        ("services:\n  a: [1, 2\n", 3, "not valid YAML"),
        ("base: &b {type: tcp}\nservices: *b\n", 1, "anchors and aliases"),  # at the anchor
        ("owner: me\n", 1, "unknown top-level key 'owner'"),
    ],
)
def test_it_rejects_bad_files_naming_the_line(admin_user, text, line, words):
    with pytest.raises(config.ConfigError) as raised:
        _import(text, admin_user)
    assert raised.value.line == line, str(raised.value)
    assert words in str(raised.value)
    assert f"line {line}:" in str(raised.value)


def test_an_import_with_one_bad_check_changes_nothing(admin_user):
    Check.objects.create(name="keep", type="tcp", target={"host": "127.0.0.1", "port": 1})
    text = EXAMPLE + "  extra: {kind: webhook, url: 'not a url'}\n"
    with pytest.raises(config.ConfigError):
        _import(text, admin_user, replace=True)
    assert list(Check.objects.values_list("name", flat=True)) == ["keep"]
    assert not AlertChannel.objects.exists()


def test_an_operator_cannot_import_alert_channels_and_nothing_is_kept(operator_user):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        _import(EXAMPLE, operator_user)
    assert not Check.objects.exists()


def test_replace_removes_checks_missing_from_the_file(admin_user):
    Check.objects.create(name="old", type="tcp", target={"host": "127.0.0.1", "port": 1})
    summary = _import(EXAMPLE, admin_user, replace=True)
    assert summary["removed"] == ["old"] and not Check.objects.filter(name="old").exists()


def test_it_caps_the_file_size(admin_user, settings):
    settings.HEALTH_IMPORT_MAX_BYTES = 100
    with pytest.raises(config.ConfigError, match="larger than 100 bytes"):
        _import(EXAMPLE, admin_user)


def test_the_api_imports_raw_yaml_or_a_file_field_and_exports_yaml(
    client, admin_user, bearer, monkeypatch
):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    headers = bearer(admin_user)
    response = client.post(
        "/api/v1/health/import", EXAMPLE, content_type="application/yaml", headers=headers
    )
    assert response.status_code == 200, response.content
    assert len(response.json()["created"]) == 4
    exported = client.get("/api/v1/health/export", headers=headers)
    assert exported["Content-Type"] == "application/yaml"
    assert "main_api" in exported.content.decode()

    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("healthcheck.yml", exported.content)
    response = client.post("/api/v1/health/import", {"file": upload}, headers=headers)
    assert response.status_code == 200 and len(response.json()["updated"]) == 4

    bad = client.post(
        "/api/v1/health/import",
        "services:\n  a:\n    checks:\n      - {type: x}\n",
        content_type="application/yaml",
        headers=headers,
    )
    assert bad.status_code == 422 and "line 4" in bad.json()["detail"]
    wrong_type = client.post(
        "/api/v1/health/import", "{}", content_type="application/json", headers=headers
    )
    assert wrong_type.status_code == 415


def test_viewers_cannot_export_the_secrets(client, viewer_user, bearer):
    assert client.get("/api/v1/health/export", headers=bearer(viewer_user)).status_code == 403


def test_the_import_page_shows_the_error_line_and_imports(client, admin_user, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    client.force_login(admin_user)
    bad = client.post("/checks/import/", {"text": "services:\n  a:\n    checks:\n      - 7\n"})
    assert bad.status_code == 422 and "line 4: a check must be a mapping" in bad.content.decode()
    good = client.post("/checks/import/", {"text": EXAMPLE})
    assert good.status_code == 302 and Check.objects.count() == 4
    assert client.get("/checks/export/")["Content-Type"] == "application/yaml"


@pytest.mark.parametrize(
    "text", ["", "# nothing yet\n", "services: {}\n", "services:\n  web:\n    checks: []\n"]
)
def test_an_empty_file_is_refused_rather_than_imported(admin_user, text):
    Check.objects.create(name="kept", type="tcp", target={"port": 1})
    with pytest.raises(config.ConfigError) as raised:
        config.import_yaml(text, admin_user, replace=True)
    assert "nothing to import" in str(raised.value)
    assert Check.objects.filter(name="kept").exists()  # replace=True deleted nothing


def test_the_api_and_the_page_refuse_an_empty_import_with_a_reason(client, admin_user, bearer):
    # (Django's test client drops the Content-Type of an empty body: a comment is empty too.)
    answer = client.post(
        "/api/v1/health/import",
        "# no checks yet\n",
        content_type="application/yaml",
        headers=bearer(admin_user),
    )
    assert answer.status_code == 422 and "nothing to import" in answer.json()["detail"]
    client.force_login(admin_user)
    page = client.post("/checks/import/", {"text": ""})
    assert page.status_code == 422
    html = page.content.decode()
    assert "nothing to import" in html and "Imported:" not in html
