"""Alert channels chosen per check, and channels that can be edited."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from health import alerts, config, operations, storage
from health.models import Alert, AlertChannel, Check

pytestmark = pytest.mark.django_db

SLACK = "https://hooks.slack.com/services/T0/B0/secret"


def _channel(name: str, kind: str = "webhook", **fields) -> AlertChannel:
    config = {"url": f"http://127.0.0.1:9/{name}"} if kind == "webhook" else {"webhook_url": SLACK}
    return AlertChannel.objects.create(name=name, kind=kind, config=config, **fields)


def _check(name: str = "api", channels=(), **fields) -> Check:
    defaults = {"type": "tcp", "target": {"host": "127.0.0.1", "port": 1}}
    check = Check.objects.create(
        name=name, failures_before_down=1, state="up", **{**defaults, **fields}
    )
    check.channels.set(channels)
    return check


def _fail(check: Check) -> None:
    storage.store([storage.Observation(check.id, timezone.now(), False, 3.0, "refused")])


def _told(check: Check) -> set[str]:
    return set(Alert.objects.filter(check_ref=check).values_list("channel__name", flat=True))


def test_a_check_that_chose_channels_alerts_only_those():
    _ops, team, _off = _channel("ops"), _channel("team"), _channel("off", enabled=False)
    chosen = _check("chosen", channels=[team])
    _fail(chosen)
    assert _told(chosen) == {"team"}


def test_a_check_that_chose_none_alerts_every_enabled_channel_as_before():
    _channel("ops"), _channel("team"), _channel("off", enabled=False)
    unchosen = _check("unchosen")
    _fail(unchosen)
    assert _told(unchosen) == {"ops", "team"}


def test_a_chosen_channel_that_is_off_sends_nothing():
    off = _channel("off", enabled=False)
    _channel("ops")
    check = _check(channels=[off])
    _fail(check)
    assert _told(check) == set()


def test_reminders_go_only_to_the_channels_a_check_chose():
    ops = _channel("ops", remind_every_s=60)
    team = _channel("team", remind_every_s=60)
    chosen, unchosen = _check("chosen", channels=[team]), _check("unchosen")
    Check.objects.update(state="down", state_since=timezone.now() - timedelta(minutes=5))
    assert alerts.enqueue_reminders() == 3
    reminded = Alert.objects.filter(event="reminder")
    assert set(reminded.filter(check_ref=chosen).values_list("channel", flat=True)) == {team.id}
    assert set(reminded.filter(check_ref=unchosen).values_list("channel", flat=True)) == {
        ops.id,
        team.id,
    }


def test_channels_chosen_maps_checks_to_their_channels():
    ops, team = _channel("ops"), _channel("team")
    both, none = _check("both", channels=[ops, team]), _check("none")
    assert alerts.channels_chosen([both.id, none.id]) == {both.id: {ops.id, team.id}}


def test_the_api_takes_and_shows_a_checks_channels_by_name(client, operator_user, bearer):
    _channel("ops"), _channel("team")
    headers = bearer(operator_user)
    body = {"name": "db", "type": "tcp", "target": {"port": 5432}, "channels": ["team"]}
    created = client.post("/api/v1/checks", json.dumps(body), "application/json", headers=headers)
    assert created.status_code == 201, created.content
    assert created.json()["channels"] == ["team"]
    check_id = created.json()["id"]
    patched = client.patch(
        f"/api/v1/checks/{check_id}",
        {"channels": ["ops", "team"]},
        "application/json",
        headers=headers,
    )
    assert patched.json()["channels"] == ["ops", "team"]
    untouched = client.patch(
        f"/api/v1/checks/{check_id}", {"interval_s": 60}, "application/json", headers=headers
    )
    assert untouched.json()["channels"] == ["ops", "team"]  # not sent: kept
    cleared = client.patch(
        f"/api/v1/checks/{check_id}", {"channels": []}, "application/json", headers=headers
    )
    assert cleared.json()["channels"] == []
    listed = client.get("/api/v1/checks", headers=headers).json()["items"]
    assert listed[0]["channels"] == []


def test_the_api_refuses_an_unknown_channel_naming_the_field(client, operator_user, bearer):
    _channel("ops")
    body = {"name": "db", "type": "tcp", "target": {"port": 5432}, "channels": ["pager"]}
    answer = client.post(
        "/api/v1/checks", json.dumps(body), "application/json", headers=bearer(operator_user)
    )
    assert answer.status_code == 422
    assert answer.json()["detail"] == "channels: no alert channel named 'pager' (known: ops)"
    assert not Check.objects.exists()


def test_the_form_chooses_channels_and_shows_the_choice(client, operator_user):
    _channel("ops"), _channel("team")
    client.force_login(operator_user)
    page = client.get("/checks/new/").content.decode()
    assert 'name="channels"' in page and "every enabled channel" in page
    response = client.post(
        "/checks/new/",
        {
            "name": "db",
            "type": "tcp",
            "interval_s": 30,
            "failures_before_down": 2,
            "successes_before_up": 1,
            "host": "127.0.0.1",
            "port": 5432,
            "method": "GET",
            "channels": ["team"],
        },
    )
    check = Check.objects.get(name="db")
    assert response.status_code == 302
    assert [channel.name for channel in check.channels.all()] == ["team"]
    detail = client.get(f"/checks/{check.id}/").content.decode()
    assert "to team" in detail and f"/checks/alerts/?check={check.id}" in detail
    edit = client.get(f"/checks/{check.id}/edit/").content.decode()
    assert re.search(r'value="team"[^>]*checked', edit)
    assert not re.search(r'value="ops"[^>]*checked', edit)


def test_yaml_names_a_checks_channels_and_round_trips(admin_user):
    text = (
        "services:\n  web:\n    checks:\n"
        "      - {type: tcp, name: web tcp, port: 80, channels: [team]}\n"
        "      - {type: tcp, name: web any, port: 81}\n"
        "alerts:\n"
        f"  team: {{kind: slack, webhook_url: '{SLACK}'}}\n"
    )
    # The channel is defined below the check that names it, in the same file.
    config.import_yaml(text, admin_user)
    named, unnamed = Check.objects.get(name="web tcp"), Check.objects.get(name="web any")
    assert [c.name for c in named.channels.all()] == ["team"]
    assert not unnamed.channels.exists()
    exported = config.export_yaml(reveal=True)
    assert "channels:\n      - team" in exported
    Check.objects.all().delete()
    config.import_yaml(exported, admin_user)
    assert [c.name for c in Check.objects.get(name="web tcp").channels.all()] == ["team"]


def test_yaml_naming_an_unknown_channel_is_refused_with_its_line(admin_user):
    text = "services:\n  web:\n    checks:\n      - {type: tcp, port: 80, channels: [nope]}\n"
    with pytest.raises(config.ConfigError) as raised:
        config.import_yaml(text, admin_user)
    assert raised.value.line == 4 and "no alert channel named 'nope'" in str(raised.value)
    assert not Check.objects.exists()


def test_an_admin_edits_a_channel_on_its_page(client, admin_user):
    channel = AlertChannel.objects.create(
        name="team",
        kind="slack",
        config={"webhook_url": SLACK, "channel": "#dev"},
        remind_every_s=0,
    )
    client.force_login(admin_user)
    page = client.get(f"/checks/alerts/{channel.id}/edit/").content.decode()
    assert SLACK in page and 'value="#dev"' in page  # an admin sees the settings
    response = client.post(
        f"/checks/alerts/{channel.id}/edit/",
        {
            "name": "team-slack",
            "slack_url": SLACK,
            "slack_channel": "",
            "enabled": "on",
            "on_degraded": "on",
            "remind_every_s": 600,
        },
    )
    assert response.status_code == 302, response.content.decode()
    channel.refresh_from_db()
    assert channel.name == "team-slack" and channel.kind == "slack"
    assert channel.config == {"webhook_url": SLACK}  # emptied: removed
    assert (channel.on_degraded, channel.remind_every_s) == (True, 600)


def test_the_edit_page_marks_every_bad_field(client, admin_user):
    channel = _channel("hook")
    client.force_login(admin_user)
    response = client.post(
        f"/checks/alerts/{channel.id}/edit/",
        {"name": "hook", "url": "ftp://x", "remind_every_s": 5},
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert "Webhook URL: an http:// or https:// URL" in html
    assert "Remind every: 0 (off) or at least 60 seconds" in html


def test_only_admins_open_the_edit_page(client, operator_user):
    channel = _channel("hook")
    client.force_login(operator_user)
    assert client.get(f"/checks/alerts/{channel.id}/edit/").status_code == 403
    page = client.get("/checks/alerts/").content.decode()
    assert f"/checks/alerts/{channel.id}/edit/" not in page and "Send test" not in page


def test_a_patch_keeps_settings_it_does_not_send_and_a_redacted_secret(client, admin_user, bearer):
    channel = AlertChannel.objects.create(
        name="team", kind="slack", config={"webhook_url": SLACK, "channel": "#dev"}
    )
    answer = client.patch(
        f"/api/v1/alerts/channels/{channel.id}",
        {"config": {"webhook_url": "***", "channel": "#ops"}},
        "application/json",
        headers=bearer(admin_user),
    )
    assert answer.status_code == 200, answer.content
    channel.refresh_from_db()
    assert channel.config == {"webhook_url": SLACK, "channel": "#ops"}
    client.patch(
        f"/api/v1/alerts/channels/{channel.id}",
        {"config": {"channel": None}},
        "application/json",
        headers=bearer(admin_user),
    )
    channel.refresh_from_db()
    assert channel.config == {"webhook_url": SLACK}


def test_a_redacted_header_value_keeps_the_stored_one():
    merged = operations.merged_channel_config(
        {"url": "http://127.0.0.1:9/", "headers": {"X-Key": "k1", "X-Other": "k2"}},
        {"headers": {"X-Key": "***", "X-Other": "new"}},
    )
    assert merged["headers"] == {"X-Key": "k1", "X-Other": "new"}


def test_an_import_says_the_whole_of_a_channel(admin_user):
    AlertChannel.objects.create(
        name="slack", kind="slack", config={"webhook_url": SLACK, "channel": "#dev"}
    )
    config.import_yaml(
        f"services:\n  w:\n    checks:\n      - {{type: tcp, port: 1}}\nalerts:\n"
        f"  slack: {{webhook_url: '{SLACK}'}}\n",
        admin_user,
    )
    assert AlertChannel.objects.get(name="slack").config == {"webhook_url": SLACK}


def test_viewers_see_where_a_channel_sends_without_its_secrets(client, viewer_user, admin_user):
    AlertChannel.objects.create(
        name="team", kind="slack", config={"webhook_url": SLACK, "channel": "#dev"}
    )
    client.force_login(viewer_user)
    page = client.get("/checks/alerts/").content.decode()
    assert "#dev via ***" in page and "secret" not in page
    client.force_login(admin_user)
    assert SLACK in client.get("/checks/alerts/").content.decode()


def test_the_alert_log_links_to_its_check_and_filters_by_check(client, viewer_user):
    hook = _channel("hook")
    api, db = _check("api"), _check("db", target={"host": "127.0.0.1", "port": 2})
    _fail(api), _fail(db)
    client.force_login(viewer_user)
    page = client.get(f"/checks/alerts/?check={api.id}").content.decode()
    assert f'href="/checks/{api.id}/"' in page and "Alert log of" in page
    assert page.count('<td data-label="Channel">hook</td>') == 1
    everything = client.get("/checks/alerts/").content.decode()
    assert everything.count(f'<td data-label="Channel">{hook.name}</td>') == 2
