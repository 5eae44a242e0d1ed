# ruff: noqa: E501  (each refusal is one sentence, kept on one line as a person reads it)
"""Every refusal of healthcheck.yml, word for word: the line, the field and what to write instead.

A person fixes the file from this one sentence, so each is pinned whole; a check of a few words
would let the rest of the sentence rot.
"""

from __future__ import annotations

import pytest

from health import config
from health.models import AlertChannel, Check

pytestmark = pytest.mark.django_db

ENV = {"PORTSIDE_SLACK": "http://127.0.0.1:9/"}


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        pytest.param(
            "- 1\n- 2\n",
            "line 1: the file must be a mapping with 'services' and 'alerts'",
            id="a list for a file",
        ),
        pytest.param(
            "owner: me\n",
            "line 1: unknown top-level key 'owner'",
            id="unknown top-level key",
        ),
        pytest.param(
            "services: [1]\n",
            "line 1: 'services' must be a mapping",
            id="services not a mapping",
        ),
        pytest.param(
            "services:\n  api: [1]\n",
            "line 2: service 'api' must be a mapping",
            id="service not a mapping",
        ),
        pytest.param(
            "services:\n  api:\n    endpoint: http://127.0.0.1:1/\n    colour: red\n",
            "line 4: unknown key 'colour' in api",
            id="unknown key in a service",
        ),
        pytest.param(
            "services:\n  api:\n    checks: {type: tcp}\n",
            "line 3: 'checks' must be a list",
            id="checks not a list",
        ),
        pytest.param(
            "services:\n  api:\n    checks:\n      - 7\n",
            "line 4: a check must be a mapping with a 'type'",
            id="a check not a mapping",
        ),
        pytest.param(
            "services:\n  api:\n    checks:\n      - {type: smtp}\n",
            "line 4: type: unknown check type 'smtp'; one of http, tcp, redis, query, command, ping, response_time",
            id="unknown type",
        ),
        pytest.param(
            "services:\n  api:\n    checks:\n      - {type: tcp, port: 1, colour: red}\n",
            "line 4: unknown key 'colour' for a tcp check",
            id="unknown key for a type",
        ),
        pytest.param(
            "services:\n  api:\n    checks:\n      - {type: response_time, threshold: 5ms}\n",
            "line 4: response_time needs an http check in service 'api'",
            id="response_time without http",
        ),
        pytest.param(
            "services:\n  api:\n    checks:\n      - {type: http}\n",
            "line 4: an http check needs a 'url' or the service's endpoint",
            id="http without url",
        ),
        pytest.param(
            "services:\n  api:\n    checks:\n      - {type: tcp, port: 1, interval: soon}\n",
            "line 4: interval: 'soon' is not a duration like 5s, 100ms or 2m",
            id="bad interval",
        ),
        pytest.param(
            "services:\n  api:\n    checks:\n      - {type: tcp, port: 1, interval: true}\n",
            "line 4: interval: True is not a duration",
            id="bool interval",
        ),
        pytest.param(
            "services:\n  api:\n    checks:\n      - {type: tcp, port: 1, interval: 1500ms}\n",
            "line 4: interval: whole seconds only",
            id="fractional interval",
        ),
        pytest.param(
            "services:\n  api:\n    checks:\n      - {type: tcp, port: 1, timeout: 9s, interval: 5s}\n",
            "line 4: api tcp: timeout_s: 9 s is longer than the interval (5 s)",
            id="timeout over interval",
        ),
        pytest.param(
            "services:\n  api:\n    endpoint: http://127.0.0.1:1/\n    checks:\n      - {type: http}\n      - {type: response_time, threshold: fast}\n",
            "line 6: threshold: 'fast' is not a duration like 5s, 100ms or 2m",
            id="bad threshold",
        ),
        pytest.param(
            "services:\n  api:\n    checks:\n      - {type: ping, command: 'redis-cli ping', expected: PANG}\n",
            "line 4: a redis ping can only expect PONG",
            id="redis ping not PONG",
        ),
        pytest.param(
            "checks:\n  - {type: ping, command: 'redis-cli -n 2 ping'}\n",
            "line 2: command: redis-cli option -n is not understood",
            id="redis-cli option",
        ),
        pytest.param(
            "checks:\n  - {type: command, command: 'echo \"unclosed'}\n",
            "line 2: command: No closing quotation",
            id="unclosed quote",
        ),
        pytest.param(
            "checks:\n  - {type: command, command: []}\n",
            "line 2: command: a command line or a list of arguments",
            id="empty command",
        ),
        pytest.param(
            "checks:\n  - {type: command, argv: [echo, 1]}\n",
            "line 2: command: a command line or a list of arguments",
            id="argv with a number",
        ),
        pytest.param(
            "checks:\n  - {type: tcp, port: 1, name: '${PORTSIDE_X}'}\n",
            "line 2: checks.0.name: ${...} is only expanded in secret fields (passwords, keys, header values, DSNs, webhook URLs)",
            id="placeholder in a name",
        ),
        pytest.param(
            "alerts: [1]\n",
            "line 1: 'alerts' must be a mapping",
            id="alerts not a mapping",
        ),
        pytest.param(
            "alerts:\n  hook: [1]\n",
            "line 2: alert channel 'hook' must be a mapping",
            id="channel not a mapping",
        ),
        pytest.param(
            "alerts:\n  teams: {url: 'http://x'}\n",
            "line 2: alerts.teams: unknown kind 'teams'; one of webhook, slack, email, pagerduty",
            id="unknown kind",
        ),
        pytest.param(
            "alerts:\n  hook:\n    kind: webhook\n    url: http://127.0.0.1:9/\n    zeta: 1\n    colour: red\n",
            "line 6: unknown key 'colour' for webhook",
            id="unknown channel key",
        ),
        pytest.param(
            "alerts:\n  hook:\n    kind: webhook\n    url: http://127.0.0.1:9/\n    remind_every: often\n",
            "line 5: remind_every: 'often' is not a duration like 5s, 100ms or 2m",
            id="bad remind_every",
        ),
        pytest.param(
            "alerts:\n  hook: {kind: webhook, url: 'not a url'}\n",
            "line 2: alerts.hook: config.url: an http:// or https:// URL",
            id="bad channel url",
        ),
        pytest.param(
            "alerts:\n  slack: {webhook_url: '${PORTSIDE_NOPE}'}\n",
            "line 2: alerts.slack: config.webhook_url: environment variable PORTSIDE_NOPE is not set",
            id="unset placeholder",
        ),
        pytest.param(
            "services: {}\nalerts: {}\n",
            "line 1: the file has no checks and no alert channels: nothing to import (it needs 'services:' with checks, or 'alerts:')",
            id="empty",
        ),
        pytest.param(
            "services:\n  a: [1, 2\n",
            "line 3: not valid YAML: did not find expected ',' or ']'",
            id="bad yaml",
        ),
        pytest.param(
            "base: &b {type: tcp}\nservices: *b\n",
            "line 1: anchors and aliases (& and *) are not allowed",
            id="alias",
        ),
        pytest.param(
            "checks:\n  - type: ping\n    name: c\n",
            "line 2: command: a command line or a list of arguments",
            id="ping without a command, at its check",
        ),
        pytest.param(
            "services:\n  api:\n    checks: 5\n",
            "line 3: 'checks' must be a list",
            id="checks on its line",
        ),
        pytest.param(
            "checks:\n  - type: tcp\n    name: c\n    interval: 1500ms\n",
            "line 4: interval: whole seconds only",
            id="whole seconds on its line",
        ),
        # The same in block style, each key on a line of its own: the line named is the key's.
        pytest.param(
            "checks:\n  - type: tcp\n    name: c\n    interval: soon\n",
            "line 4: interval: 'soon' is not a duration like 5s, 100ms or 2m",
            id="interval on its line",
        ),
        pytest.param(
            "checks:\n  - type: tcp\n    name: c\n    timeout: soon\n",
            "line 4: timeout: 'soon' is not a duration like 5s, 100ms or 2m",
            id="timeout on its line",
        ),
        pytest.param(
            "services:\n  api:\n    endpoint: http://127.0.0.1:1/\n    checks:\n      - type: http\n      - type: response_time\n        threshold: fast\n",
            "line 7: threshold: 'fast' is not a duration like 5s, 100ms or 2m",
            id="threshold on its line",
        ),
        pytest.param(
            "services:\n  api:\n    endpoint: http://127.0.0.1:1/\n    checks:\n      - type: http\n        warning_threshold: fast\n",
            "line 6: warning_threshold: 'fast' is not a duration like 5s, 100ms or 2m",
            id="warning_threshold on its line",
        ),
        pytest.param(
            "checks:\n  - type: command\n    name: c\n    command: 'echo \"unclosed'\n",
            "line 4: command: No closing quotation",
            id="command on its line",
        ),
        pytest.param(
            "checks:\n  - type: command\n    name: c\n    argv: []\n",
            "line 4: command: a command line or a list of arguments",
            id="argv on its line",
        ),
        pytest.param(
            "checks:\n  - type: ping\n    name: c\n    command: 'redis-cli -n 2 ping'\n",
            "line 4: command: redis-cli option -n is not understood",
            id="redis-cli option on its line",
        ),
        pytest.param(
            "checks:\n  - type: ping\n    name: c\n    command: ''\n",
            "line 4: command: a command line or a list of arguments",
            id="empty ping command on its line",
        ),
        pytest.param(
            "checks:\n  - type: ping\n    command: redis-cli ping\n    expected: PANG\n",
            "line 4: a redis ping can only expect PONG",
            id="expected on its line",
        ),
        pytest.param(
            "checks:\n  - type: tcp\n    name: c\n    colour: red\n",
            "line 4: unknown key 'colour' for a tcp check",
            id="unknown key on its line",
        ),
        pytest.param(
            "checks:\n  - name: c\n    type: smtp\n",
            "line 3: type: unknown check type 'smtp'; one of http, tcp, redis, query, command, ping, response_time",
            id="type on its line",
        ),
        pytest.param(
            "checks:\n  - name: c\n    type: http\n",
            "line 3: an http check needs a 'url' or the service's endpoint",
            id="http without url at its type line",
        ),
        pytest.param(
            "alerts:\n  hook:\n    kind: webhook\n    url: http://127.0.0.1:9/\n    remind_every: often\n",
            "line 5: remind_every: 'often' is not a duration like 5s, 100ms or 2m",
            id="remind_every on its line",
        ),
        pytest.param(
            "alerts:\n  hook:\n    kind: teams\n",
            "line 3: alerts.hook: unknown kind 'teams'; one of webhook, slack, email, pagerduty",
            id="kind: at the channel line",
        ),
    ],
)
def test_a_refused_file_says_where_and_what_in_one_sentence(admin_user, text, refusal):
    with pytest.raises(config.ConfigError) as raised:
        config.import_yaml(text, admin_user, environ=ENV)
    assert str(raised.value) == refusal
    assert refusal.startswith(f"line {raised.value.line}: {raised.value.message}")
    assert not Check.objects.exists() and not AlertChannel.objects.exists()


def test_a_refusal_without_a_line_is_the_message_alone(admin_user, settings):
    settings.HEALTH_IMPORT_MAX_BYTES = 10
    with pytest.raises(config.ConfigError) as raised:
        config.import_yaml("services: {}\nalerts: {}\n", admin_user, environ=ENV)
    assert raised.value.line is None
    assert str(raised.value) == raised.value.message
    assert not str(raised.value).startswith("line")
