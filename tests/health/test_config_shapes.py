"""healthcheck.yml field by field: every key a person may write is read into the check or the
channel, the export writes it back as a person would, and each refusal names its line.

tests/health/test_config.py proves the round trip of the issue's example; a round trip alone
cannot tell a field that is read and written from one that is dropped both ways, or an export
that writes a generic dump instead of the file a person writes.
"""

from __future__ import annotations

import textwrap

import pytest

from health import config
from health.models import AlertChannel, Check

pytestmark = pytest.mark.django_db

EVERY_FIELD = textwrap.dedent(
    """\
    services:
      shop:
        endpoint: http://127.0.0.1:5000/health
        checks:
          - type: http
            method: POST
            headers: {Accept: application/json}
            body: '{"ping": true}'
            expected_status: [200, 204]
            body_contains: ok
            verify_tls: false
            follow_redirects: true
            max_bytes: 4096
            timeout: 500ms
            interval: 1m
            failures_before_down: 3
            successes_before_up: 2
            channels: hook
          - {type: response_time, threshold: 300ms, warning_threshold: 150ms}
          - {type: tcp, host: 127.0.0.1, port: 5432, send: hi, expect: hello, paused: true}
      cache:
        checks:
          - type: ping
            command: redis-cli -h 127.0.0.1 -p 6380 -a s3cret --user app --no-auth-warning ping
          - {type: command, command: "pg_isready -h 127.0.0.1", expect_exit: 0}
    alerts:
      hook:
        kind: webhook
        url: http://127.0.0.1:9/hook
        enabled: false
        on_degraded: true
        on_exposure: true
        remind_every: 10m
      pagerduty: {service_key: pd-key}
    """
)

# What an admin's export of EVERY_FIELD says: the same set-up, in the console's own units
# (whole seconds, or milliseconds below a second), defaults left out, names made explicit.
EVERY_FIELD_EXPORTED = textwrap.dedent(
    """\
    # Portside health checks: `manage.py health import healthcheck.yml`
    services:
      cache:
        checks:
        - type: command
          name: cache command
          argv:
          - pg_isready
          - -h
          - 127.0.0.1
          expect_exit: 0
          interval: 30s
          timeout: 5s
          failures_before_down: 2
          successes_before_up: 1
        - type: redis
          name: cache redis
          host: 127.0.0.1
          password: s3cret
          port: 6380
          username: app
          interval: 30s
          timeout: 5s
          failures_before_down: 2
          successes_before_up: 1
      shop:
        checks:
        - type: http
          name: shop http
          method: POST
          url: http://127.0.0.1:5000/health
          expected_status:
          - 200
          - 204
          headers:
            Accept: application/json
          body: '{"ping": true}'
          body_contains: ok
          verify_tls: false
          follow_redirects: true
          max_bytes: 4096
          interval: 60s
          timeout: 500ms
          threshold: 300ms
          warning_threshold: 150ms
          failures_before_down: 3
          successes_before_up: 2
          channels:
          - hook
        - type: tcp
          name: shop tcp
          expect: hello
          host: 127.0.0.1
          port: 5432
          send: hi
          interval: 30s
          timeout: 5s
          failures_before_down: 2
          successes_before_up: 1
          paused: true
    alerts:
      hook:
        kind: webhook
        url: http://127.0.0.1:9/hook
        enabled: false
        on_degraded: true
        on_exposure: true
        remind_every: 600s
      pagerduty:
        service_key: pd-key
    """
)


def test_every_field_of_a_check_and_a_channel_is_read(admin_user):
    config.import_yaml(EVERY_FIELD, admin_user, environ={})

    http = Check.objects.get(name="shop http")
    assert http.target == {
        "url": "http://127.0.0.1:5000/health",
        "method": "POST",
        "headers": {"Accept": "application/json"},
        "body": '{"ping": true}',
        "expected_status": [200, 204],
        "body_contains": "ok",
        "verify_tls": False,
        "follow_redirects": True,
        "max_bytes": 4096,
    }
    assert (http.interval_s, http.timeout_s, http.crit_ms, http.warn_ms) == (60, 0.5, 300, 150)
    assert (http.failures_before_down, http.successes_before_up, http.enabled) == (3, 2, True)
    assert [channel.name for channel in http.channels.all()] == ["hook"]

    tcp = Check.objects.get(name="shop tcp")
    assert tcp.target == {"host": "127.0.0.1", "port": 5432, "send": "hi", "expect": "hello"}
    assert tcp.enabled is False and tcp.crit_ms is None  # thresholds go to http checks only

    # `redis-cli ... ping` is asked over RESP, with redis-cli's own options read.
    redis = Check.objects.get(service="cache", type="redis")
    assert redis.target == {
        "host": "127.0.0.1",
        "port": 6380,
        "password": "s3cret",
        "username": "app",
    }
    command = Check.objects.get(service="cache", type="command")
    assert command.target["argv"] == ["pg_isready", "-h", "127.0.0.1"]
    assert command.target["expect_exit"] == 0

    hook = AlertChannel.objects.get(name="hook")
    assert (hook.kind, hook.config) == ("webhook", {"url": "http://127.0.0.1:9/hook"})
    assert (hook.enabled, hook.on_degraded, hook.on_exposure) == (False, True, True)
    assert hook.remind_every_s == 600
    pagerduty = AlertChannel.objects.get(name="pagerduty")
    assert (pagerduty.kind, pagerduty.config) == ("pagerduty", {"routing_key": "pd-key"})
    assert (pagerduty.enabled, pagerduty.on_degraded, pagerduty.on_exposure) == (
        True,
        False,
        False,
    )
    assert pagerduty.remind_every_s == 0


def test_an_admins_export_writes_the_file_a_person_would(admin_user):
    config.import_yaml(EVERY_FIELD, admin_user, environ={})
    assert config.export_yaml(reveal=True) == EVERY_FIELD_EXPORTED


def test_an_operators_export_says_its_secrets_are_hidden_and_hides_them(admin_user):
    config.import_yaml(EVERY_FIELD, admin_user, environ={})
    exported = config.export_yaml(reveal=False)
    assert exported.startswith(
        "# Portside health checks: `manage.py health import healthcheck.yml`\n"
        "# Secrets are shown as *** (only an admin's export carries them).\nservices:\n"
    )
    assert "s3cret" not in exported and "pd-key" not in exported
    assert "password: '***'" in exported and "service_key: '***'" in exported


def test_a_plain_http_check_exports_without_its_defaults(admin_user):
    text = "checks:\n  - {type: http, url: 'http://127.0.0.1:8000/'}\n"
    config.import_yaml(text, admin_user, environ={})
    assert config.export_data(reveal=True) == {
        "services": {},
        "checks": [
            {
                "type": "http",
                "name": "http",
                "method": "GET",
                "url": "http://127.0.0.1:8000/",
                "expected_status": 200,
                "interval": "30s",
                "timeout": "5s",
                "failures_before_down": 2,
                "successes_before_up": 1,
            }
        ],
    }


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "alerts:\n  hook: [1]\n",
            2,
            "alert channel 'hook' must be a mapping",
        ),
        (
            "alerts:\n  hook:\n    kind: webhook\n    url: http://127.0.0.1:9/\n"
            "    zeta: 1\n    colour: red\n",
            6,  # the first unknown key by name, at its own line
            "unknown key 'colour' for webhook",
        ),
        (
            "alerts:\n  hook:\n    kind: webhook\n    url: http://127.0.0.1:9/\n"
            "    remind_every: often\n",
            5,
            "remind_every",
        ),
        (
            "alerts:\n  hook: {kind: webhook, url: 'not a url'}\n",
            2,
            "alerts.hook: ",
        ),
        (
            "checks:\n  - {type: ping, command: 'redis-cli -n 2 ping'}\n",
            2,
            "command: redis-cli option -n is not understood",
        ),
        (
            "checks:\n  - {type: command, command: 'echo \"unclosed'}\n",
            2,
            "command: No closing quotation",
        ),
        (
            "checks:\n  - {type: command, command: []}\n",
            2,
            "command: a command line or a list of arguments",
        ),
    ],
)
def test_a_refused_field_names_its_line_and_what_is_wrong(admin_user, text, line, message):
    with pytest.raises(config.ConfigError) as raised:
        config.import_yaml(text, admin_user, environ={})
    assert raised.value.line == line
    assert str(raised.value).startswith(f"line {line}: ")
    assert message in str(raised.value)
    assert not Check.objects.exists() and not AlertChannel.objects.exists()


def test_a_redis_cli_option_without_its_value_is_read_as_empty(admin_user):
    config.import_yaml(
        "checks:\n  - {type: ping, command: 'redis-cli -a ping'}\n", admin_user, environ={}
    )
    # `-a` takes the next word as the password: here there is none before the final `ping`.
    target = Check.objects.get().target
    assert (target["host"], target["port"], target["password"]) == ("127.0.0.1", 6379, "")


@pytest.mark.parametrize(
    ("command", "expected", "kind", "target"),
    [
        ("redis-cli ping", None, "redis", {"host": "127.0.0.1", "port": 6379}),
        (
            "/opt/redis/bin/redis-cli -h localhost -p 6390 PING",
            None,
            "redis",
            {"host": "localhost", "port": 6390},
        ),
        # Not a ping of redis-cli: run as a command that must print the expected word.
        (
            "redis-cli info",
            None,
            "command",
            {"argv": ["redis-cli", "info"], "expect_output": "PONG"},
        ),
        ("check-cache", "ready", "command", {"argv": ["check-cache"], "expect_output": "ready"}),
    ],
)
def test_a_ping_check_is_asked_over_redis_or_run_as_a_command(
    admin_user, command, expected, kind, target
):
    line = f"checks:\n  - {{type: ping, name: p, command: '{command}'"
    line += f", expected: {expected}}}\n" if expected else "}\n"
    config.import_yaml(line, admin_user, environ={})
    check = Check.objects.get()
    assert check.type == kind
    assert {key: check.target[key] for key in target} == target


def test_response_thresholds_read_bare_numbers_as_milliseconds(admin_user):
    config.import_yaml(
        "services:\n  api:\n    endpoint: http://127.0.0.1:1/\n    checks:\n"
        "      - {type: http}\n"
        "      - {type: response_time, threshold: 2s, warning_threshold: 250}\n",
        admin_user,
        environ={},
    )
    check = Check.objects.get()
    assert (check.crit_ms, check.warn_ms) == (2000, 250)


def test_checks_are_named_for_their_service_and_kind_and_kept_apart(admin_user):
    config.import_yaml(
        "services:\n  api:\n    checks:\n"
        + "      - {type: tcp, host: 127.0.0.1, port: 1}\n" * 3
        + "checks:\n  - {type: tcp, host: 127.0.0.1, port: 2}\n"
        + "  - {type: command, command: 'true', expect_exit: 3, expect_output: ok}\n",
        admin_user,
        environ={},
    )
    assert sorted(Check.objects.values_list("name", flat=True)) == [
        "api tcp",
        "api tcp 2",
        "api tcp 3",
        "command",
        "tcp",
    ]
    command = Check.objects.get(type="command").target
    assert (command["expect_exit"], command["expect_output"]) == (3, "ok")
