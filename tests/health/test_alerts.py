"""Alerts against a local receiver: webhook, Slack, PagerDuty, e-mail; retries, log, reminders."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core import mail
from django.utils import timezone

from console.foundation.models import AuditEntry
from health import alerts, storage
from health.models import Alert, AlertAttempt, AlertChannel, Check

pytestmark = pytest.mark.django_db


def _check(**fields) -> Check:
    defaults = {
        "name": "api",
        "service": "main_api",
        "type": "tcp",
        "target": {"host": "127.0.0.1", "port": 1},
        "failures_before_down": 1,
    }
    return Check.objects.create(**{**defaults, **fields})


def _observe(check: Check, ok: bool, detail: str = "") -> list[storage.Transition]:
    return storage.store([storage.Observation(check.id, timezone.now(), ok, 3.0, detail)])


def _deliver() -> int:
    return async_to_sync(alerts.deliver_due)()


def test_it_posts_json_to_a_webhook_on_down_and_on_recovery(receiver):
    AlertChannel.objects.create(name="hook", kind="webhook", config={"url": receiver.url + "/in"})
    check = _check(state="up")
    _observe(check, False, "connection refused")
    assert receiver.received == []  # storing never waits for a notifier
    assert _deliver() == 1
    path, body = receiver.received[0]
    assert path == "/in" and body["event"] == "trigger" and body["state"] == "down"
    assert body["check"] == {"id": check.id, "name": "api"}
    assert "connection refused" in body["message"]

    _observe(check, True, "ok")
    _deliver()
    assert receiver.received[1][1]["event"] == "recovery"
    assert [a.status for a in Alert.objects.order_by("id")] == ["sent", "sent"]
    assert AlertAttempt.objects.filter(ok=True, status_code=200).count() == 2


def test_it_formats_slack_messages(receiver):
    AlertChannel.objects.create(
        name="slack", kind="slack", config={"webhook_url": receiver.url, "channel": "#dev-alerts"}
    )
    _observe(_check(state="up"), False, "HTTP 503")
    _deliver()
    body = receiver.received[0][1]
    assert body["channel"] == "#dev-alerts" and body["text"].startswith(":red_circle: api is DOWN")


def test_it_triggers_and_resolves_pagerduty_with_one_dedup_key(receiver, settings):
    settings.HEALTH_PAGERDUTY_URL = receiver.url + "/v2/enqueue"
    AlertChannel.objects.create(name="pd", kind="pagerduty", config={"routing_key": "R0UT1NG"})
    check = _check(state="up")
    _observe(check, False, "timed out")
    _observe(check, True)
    _deliver()
    _deliver()
    (path, trigger), (_, resolve) = receiver.received
    assert path == "/v2/enqueue"
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["routing_key"] == "R0UT1NG"
    assert trigger["dedup_key"] == resolve["dedup_key"] == f"portside-check-{check.id}"
    assert trigger["payload"]["severity"] == "critical" and "payload" not in resolve


def test_a_resolve_waits_for_the_trigger_it_follows(receiver, settings):
    """A trigger waiting for its retry holds back the resolve raised after it."""
    settings.HEALTH_PAGERDUTY_URL = receiver.url + "/v2/enqueue"
    AlertChannel.objects.create(name="pd", kind="pagerduty", config={"routing_key": "R0UT1NG"})
    check = _check(state="up")
    _observe(check, False, "timed out")
    trigger = Alert.objects.get(event="trigger")
    trigger.next_attempt_at = timezone.now() + timedelta(minutes=5)  # as after a failed attempt
    trigger.save()
    _observe(check, True)

    assert _deliver() == 0 and receiver.received == []

    Alert.objects.filter(id=trigger.id).update(next_attempt_at=timezone.now())
    assert _deliver() == 2
    assert [body["event_action"] for _, body in receiver.received] == ["trigger", "resolve"]


def test_it_sends_email_through_the_configured_backend():
    AlertChannel.objects.create(
        name="mail", kind="email", config={"recipients": ["dev-team@example.com"]}
    )
    _observe(_check(state="up"), False, "refused")
    _deliver()
    (message,) = mail.outbox
    assert message.to == ["dev-team@example.com"] and "api is DOWN" in message.subject


def test_a_failing_notifier_is_retried_and_every_attempt_logged(receiver):
    receiver.status = 500
    AlertChannel.objects.create(name="hook", kind="webhook", config={"url": receiver.url})
    _observe(_check(state="up"), False)
    _deliver()
    alert = Alert.objects.get()
    assert alert.status == "pending" and alert.attempts == 1 and alert.last_error == "HTTP 500"
    assert alert.next_attempt_at > timezone.now()
    for _ in range(2):
        Alert.objects.update(next_attempt_at=timezone.now())
        _deliver()
    alert.refresh_from_db()
    assert alert.status == "failed" and alert.attempts == 3
    assert list(alert.attempt_log.values_list("ok", "status_code")) == [(False, 500)] * 3


def test_a_slow_notifier_times_out_without_holding_anything(receiver, settings):
    settings.HEALTH_ALERT_TIMEOUT_S = 0.3
    receiver.delay = 2
    AlertChannel.objects.create(name="hook", kind="webhook", config={"url": receiver.url})
    _observe(_check(state="up"), False)
    _deliver()
    attempt = AlertAttempt.objects.get()
    assert not attempt.ok and "Timeout" in attempt.error and attempt.duration_ms < 1500


def test_it_alerts_on_degraded_only_when_the_channel_asks(receiver):
    AlertChannel.objects.create(name="quiet", kind="webhook", config={"url": receiver.url})
    AlertChannel.objects.create(
        name="picky", kind="webhook", config={"url": receiver.url}, on_degraded=True
    )
    check = _check(state="up", warn_ms=1)
    storage.store([storage.Observation(check.id, timezone.now(), True, 50.0)])
    assert list(Alert.objects.values_list("channel__name", "event")) == [("picky", "degraded")]


def test_it_reminds_while_a_check_stays_down(receiver):
    channel = AlertChannel.objects.create(
        name="hook", kind="webhook", config={"url": receiver.url}, remind_every_s=600
    )
    check = _check(state="up")
    _observe(check, False)
    assert alerts.enqueue_reminders() == 0  # just alerted
    later = timezone.now() + timedelta(seconds=601)
    assert alerts.enqueue_reminders(later) == 1
    assert Alert.objects.filter(channel=channel, event="reminder").count() == 1
    assert alerts.enqueue_reminders(later) == 0


def test_the_send_test_button_and_api_log_the_attempt(client, admin_user, bearer, receiver):
    channel = AlertChannel.objects.create(name="hook", kind="webhook", config={"url": receiver.url})
    response = client.post(f"/api/v1/alerts/channels/{channel.id}/test", headers=bearer(admin_user))
    body = response.json()
    assert response.status_code == 200 and body["event"] == "test" and body["status"] == "sent"
    assert body["attempt_log"][0]["ok"] is True and receiver.received[0][1]["event"] == "test"

    client.force_login(admin_user)
    page = client.post(f"/checks/alerts/{channel.id}/test/", follow=True)
    assert "Test alert sent through hook" in page.content.decode()
    receiver.status = 404
    page = client.post(f"/checks/alerts/{channel.id}/test/", follow=True)
    assert "failed: HTTP 404" in page.content.decode()
    assert AuditEntry.objects.filter(action="alert_channel.test").count() == 3


def test_only_admins_manage_channels_and_viewers_see_no_secrets(
    client, admin_user, viewer_user, operator_user, bearer
):
    body = {"name": "slack", "kind": "slack", "config": {"webhook_url": "http://127.0.0.1:9/x"}}
    denied = client.post(
        "/api/v1/alerts/channels",
        json.dumps(body),
        content_type="application/json",
        headers=bearer(operator_user),
    )
    assert denied.status_code == 403
    created = client.post(
        "/api/v1/alerts/channels",
        json.dumps(body),
        content_type="application/json",
        headers=bearer(admin_user),
    )
    assert created.status_code == 201
    listed = client.get("/api/v1/alerts/channels", headers=bearer(viewer_user)).json()
    assert listed["count"] == 1 and listed["items"][0]["config"]["webhook_url"] == "***"
    bad = client.post(
        "/api/v1/alerts/channels",
        json.dumps({**body, "name": "x", "config": {"webhook_url": "nope"}}),
        content_type="application/json",
        headers=bearer(admin_user),
    )
    assert bad.status_code == 422 and "config.webhook_url" in bad.json()["detail"]
    channel_id = created.json()["id"]
    assert (
        client.delete(
            f"/api/v1/alerts/channels/{channel_id}", headers=bearer(admin_user)
        ).status_code
        == 204
    )


def test_the_alert_log_lists_attempts(client, viewer_user, bearer, receiver):
    AlertChannel.objects.create(name="hook", kind="webhook", config={"url": receiver.url})
    check = _check(state="up")
    _observe(check, False)
    _deliver()
    log = client.get(f"/api/v1/alerts?check_id={check.id}", headers=bearer(viewer_user)).json()
    assert log["count"] == 1 and log["items"][0]["attempt_log"][0]["status_code"] == 200


def test_the_alerts_page_adds_a_channel_with_validation(client, admin_user):
    client.force_login(admin_user)
    bad = client.post("/checks/alerts/", {"name": "hook", "kind": "webhook", "url": "nope"})
    assert bad.status_code == 422 and "an http:// or https:// URL" in bad.content.decode()
    good = client.post(
        "/checks/alerts/", {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}
    )
    assert good.status_code == 302 and AlertChannel.objects.get().config["url"].endswith("/hook")


@pytest.mark.django_db(transaction=True)
async def test_the_worker_delivers_when_woken_not_at_its_next_poll(receiver):
    """The scheduler wakes the worker after storing results that enqueued alerts."""
    channel = await AlertChannel.objects.acreate(
        name="hook", kind="webhook", config={"url": receiver.url + "/in"}
    )
    stop, wake = asyncio.Event(), asyncio.Event()
    worker = asyncio.create_task(alerts.worker(stop, wake=wake, idle_poll_s=60))
    try:
        await asyncio.sleep(0.3)  # its first pass found nothing: it now sleeps for a minute
        await Alert.objects.acreate(
            channel=channel, check_name="api", event="trigger", state="down", message="api down"
        )
        wake.set()
        for _ in range(100):
            if receiver.received:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=5)
    assert [body["message"] for _, body in receiver.received] == ["api down"]


@pytest.mark.django_db(transaction=True)
async def test_the_worker_delivers_while_the_shared_database_thread_is_busy(receiver):
    """asgiref's one thread for thread-sensitive work (Django's async ORM too) may be held by
    another service or a websocket consumer: the worker's database work has a thread of its own."""
    channel = await AlertChannel.objects.acreate(
        name="hook", kind="webhook", config={"url": receiver.url + "/in"}
    )
    await Alert.objects.acreate(
        channel=channel, check_name="api", event="trigger", state="down", message="api down"
    )
    release = threading.Event()
    shared_thread_busy = asyncio.ensure_future(sync_to_async(release.wait)())
    stop = asyncio.Event()
    worker = asyncio.create_task(alerts.worker(stop, idle_poll_s=60))
    try:
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.05)
        delivered = [body["message"] for _, body in receiver.received]
    finally:
        stop.set()
        release.set()
        await shared_thread_busy
        await asyncio.wait_for(worker, timeout=10)
    assert delivered == ["api down"]
    sent = await Alert.objects.aget(channel=channel)
    assert sent.status == "sent"


def test_an_exposure_alert_keeps_its_risk_and_fix_however_long_the_command():
    from console.security.exposures import Finding

    AlertChannel.objects.create(
        name="hook", kind="webhook", config={"url": "http://127.0.0.1:9/"}, on_exposure=True
    )
    script = "\n".join(f"line_{n} = {'x' * 30}" for n in range(40))
    finding = Finding(
        port=5000,
        proto="tcp",
        address="0.0.0.0",
        exposure="lan",
        pid=4242,
        process=f"/a/very/long/path/{'deep/' * 30}python -c {script}",
        kind="werkzeug-debugger",
        severity="danger",
        risk="The Werkzeug debugger is reachable.",
        fix="Stop it, or bind it to 127.0.0.1.",
        probed=True,
    )
    (alert,) = alerts.enqueue_exposures([finding])
    first_line = alert.message.split(": ", 1)[1]
    assert "\n" not in alert.message
    assert alert.message.endswith("Fix: Stop it, or bind it to 127.0.0.1.")
    assert "pid 4242" in first_line
