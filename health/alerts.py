"""Alerts: an outbox written with each state change, delivered by a worker off the probe path.

`enqueue` runs inside the transaction that stores the change, so a crash can neither lose an
alert nor send one twice after a restart. The worker claims rows atomically, sends with a short
timeout, logs every attempt and retries a failed one a few times with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Max
from django.utils import timezone

from console.foundation.database_thread import DatabaseThread
from console.foundation.waiting import first_of
from health import secrets, states
from health.models import Alert, AlertAttempt, AlertChannel, AlertStatus, Check

logger = logging.getLogger("health.alerts")
MAX_ATTEMPTS = 3
# How the async code here runs its ORM work: `sync_to_async` by default (thread-sensitive: a
# request's own thread, inside its transaction); the worker passes a thread of its own.
DatabaseCall = Callable[[Callable], Callable[..., Awaitable]]


def event_for(from_state: str, to_state: str, on_degraded: bool) -> str | None:
    """Which alert a transition is worth for a channel, if any."""
    if to_state == states.DOWN and from_state != states.PAUSED:
        return "trigger"
    if from_state == states.DOWN and to_state in {states.UP, states.DEGRADED}:
        return "recovery"
    if on_degraded and to_state == states.DEGRADED and from_state in {states.UP, states.PENDING}:
        return "degraded"
    if on_degraded and from_state == states.DEGRADED and to_state == states.UP:
        return "recovery"
    return None


def message_for(event: str, name: str, state: str, detail: str) -> str:
    text = {
        "trigger": f"{name} is DOWN",
        "recovery": f"{name} recovered: {state}",
        "degraded": f"{name} is DEGRADED",
        "reminder": f"{name} is still DOWN",
        "test": f"Test alert from Portside ({name})",
        "exposure": f"Dangerous exposure: {name}",
    }[event]
    return f"{text}: {detail}"[:500] if detail else text


def channels_chosen(check_ids) -> dict[int, set[int]]:
    """The channels each check chose; a check that chose none is absent: it alerts them all."""
    chosen: dict[int, set[int]] = {}
    for check_id, channel_id in Check.channels.through.objects.filter(
        check_id__in=list(check_ids)
    ).values_list("check_id", "alertchannel_id"):
        chosen.setdefault(check_id, set()).add(channel_id)
    return chosen


def enqueue(transitions) -> list[Alert]:
    if not transitions:
        return []
    channels = list(AlertChannel.objects.filter(enabled=True))
    chosen = channels_chosen({transition.check_id for transition in transitions})
    rows = []
    for transition in transitions:
        for channel in channels:
            if channel.id not in chosen.get(transition.check_id, {channel.id}):
                continue
            event = event_for(transition.from_state, transition.to_state, channel.on_degraded)
            if event is None:
                continue
            rows.append(
                Alert(
                    channel=channel,
                    check_ref_id=transition.check_id,
                    check_name=transition.name,
                    event=event,
                    state=transition.to_state,
                    previous_state=transition.from_state,
                    message=message_for(
                        event, transition.name, transition.to_state, transition.detail
                    ),
                )
            )
    return Alert.objects.bulk_create(rows)


def _one_line(command: str, limit: int = 80) -> str:
    """A command line short enough for an alert's first line: a `python -c` script or a long
    path would otherwise push the risk and the fix past the message's 500 characters."""
    flat = " ".join(command.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def enqueue_exposures(findings) -> list[Alert]:
    """One "exposure" alert per new dangerous listener, for each channel that asked for them.

    `findings` are the exposure audit's new danger findings (port, address, process, kind, risk,
    fix). The same listener found again after a restart of the console within a day is not news:
    the message names its port, kind and pid, and a channel is told each message once a day.
    """
    channels = list(AlertChannel.objects.filter(enabled=True, on_exposure=True))
    if not channels or not findings:
        return []
    since = timezone.now() - timedelta(days=1)
    rows = []
    for finding in findings:
        process = _one_line(finding.process)
        name = f"port {finding.port} {finding.kind} ({process}, pid {finding.pid})"
        message = message_for("exposure", name, "danger", f"{finding.risk} Fix: {finding.fix}")
        for channel in channels:
            told = Alert.objects.filter(
                channel=channel, event="exposure", message=message, created_at__gte=since
            )
            if not told.exists():
                rows.append(
                    Alert(
                        channel=channel,
                        check_name=f"exposure of port {finding.port}",
                        event="exposure",
                        state="danger",
                        message=message,
                    )
                )
    created = Alert.objects.bulk_create(rows)
    if created:
        nudge()
    return created


def enqueue_reminders(now=None) -> int:
    """For channels with reminders: one more alert per down check once the interval passed."""
    now = now or timezone.now()
    created = 0
    down = {check.id: check for check in Check.objects.filter(state=states.DOWN, enabled=True)}
    if not down:
        return 0
    chosen = channels_chosen(down)
    for channel in AlertChannel.objects.filter(enabled=True, remind_every_s__gt=0):
        latest = dict(
            Alert.objects.filter(
                channel=channel, check_ref_id__in=down, event__in=["trigger", "reminder"]
            )
            .values_list("check_ref_id")
            .annotate(last=Max("created_at"))
        )
        due = timedelta(seconds=channel.remind_every_s)
        for check_id, check in down.items():
            if channel.id not in chosen.get(check_id, {channel.id}):
                continue
            last = latest.get(check_id) or check.state_since
            if now - last >= due:
                Alert.objects.create(
                    channel=channel,
                    check_ref=check,
                    check_name=check.name,
                    event="reminder",
                    state=check.state,
                    created_at=now,
                    message=message_for("reminder", check.name, check.state, check.last_detail),
                )
                Check.objects.filter(id=check_id).update(last_reminder_at=now)
                created += 1
    return created


def payload_for(alert: Alert) -> dict:
    return {
        "event": alert.event,
        "message": alert.message,
        "state": alert.state,
        "previous_state": alert.previous_state,
        "check": {"id": alert.check_ref_id, "name": alert.check_name},
        "at": alert.created_at.isoformat(),
        "source": "portside",
    }


class DeliveryFailed(Exception):
    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


async def _post(url: str, body: dict, headers: dict | None = None) -> int:
    timeout = settings.HEALTH_ALERT_TIMEOUT_S
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
        try:
            response = await client.post(url, json=body, headers=headers or {})
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}"[:300]) from error
    if response.status_code >= 300:
        raise DeliveryFailed(f"HTTP {response.status_code}", response.status_code)
    return response.status_code


async def deliver(alert: Alert, channel: AlertChannel) -> int | None:
    """Send one alert through its channel; raises DeliveryFailed. Returns the HTTP status."""
    try:
        # ${VAR} placeholders are stored; their values exist only for this one delivery.
        config = secrets.resolved_fields(channel.config, secrets.CHANNEL_SECRETS)
    except ValueError as error:
        raise DeliveryFailed(f"configuration: {error}") from None
    if channel.kind == "webhook":
        return await _post(config["url"], payload_for(alert), config.get("headers"))
    if channel.kind == "slack":
        icon = {
            "trigger": ":red_circle:",
            "exposure": ":red_circle:",
            "recovery": ":large_green_circle:",
        }.get(alert.event, ":large_yellow_circle:")
        body = {"text": f"{icon} {alert.message}"}
        if config.get("channel"):
            body["channel"] = config["channel"]
        return await _post(config["webhook_url"], body)
    if channel.kind == "pagerduty":
        url = config.get("events_url") or settings.HEALTH_PAGERDUTY_URL
        return await _post(url, _pd(alert, config))
    if channel.kind == "email":
        subject = f"[Portside] {alert.message}"[:150]
        try:
            await asyncio.wait_for(
                sync_to_async(send_mail, thread_sensitive=False)(
                    subject,
                    f"{alert.message}\n\nCheck: {alert.check_name}\nAt: {alert.created_at:%c}\n",
                    settings.DEFAULT_FROM_EMAIL,
                    list(config.get("recipients") or []),
                ),
                settings.HEALTH_ALERT_TIMEOUT_S,
            )
        except (OSError, TimeoutError) as error:
            raise DeliveryFailed(f"email failed: {error or 'timed out'}"[:300]) from error
        return None
    raise DeliveryFailed(f"unknown channel kind {channel.kind!r}")


def _pd(alert: Alert, config: dict) -> dict:
    action = "resolve" if alert.event == "recovery" else "trigger"
    body = {
        "routing_key": config.get("routing_key", ""),
        "event_action": action,
        # One incident per check: trigger and resolve meet on the same key.
        "dedup_key": f"portside-check-{alert.check_ref_id or 'test'}"
        if alert.event != "exposure"
        else f"portside-exposure-{alert.message[:200]}",
    }
    if action == "trigger":
        body["payload"] = {
            "summary": alert.message[:1024],
            "source": "portside",
            "severity": "warning" if alert.event == "degraded" else "critical",
            "custom_details": payload_for(alert),
        }
    return body


async def attempt(alert: Alert, in_database: DatabaseCall = sync_to_async) -> bool:
    """One delivery attempt, logged; the alert row is updated with the outcome."""
    started = time.perf_counter()
    status_code, error = None, ""
    try:
        status_code = await deliver(alert, alert.channel)
        ok = True
    except DeliveryFailed as failure:
        ok, error, status_code = False, str(failure), failure.status_code
    except Exception as failure:  # a bad channel config must not kill the worker
        ok, error = False, f"{type(failure).__name__}: {failure}"[:300]
    duration = (time.perf_counter() - started) * 1000
    await in_database(_log_attempt)(alert, ok, status_code, error, duration)
    return ok


def _log_attempt(alert: Alert, ok: bool, status_code, error: str, duration: float) -> None:
    AlertAttempt.objects.create(
        alert=alert, ok=ok, status_code=status_code, error=error, duration_ms=duration
    )
    alert.attempts += 1
    now = timezone.now()
    if ok:
        alert.status, alert.sent_at, alert.last_error = AlertStatus.SENT, now, ""
    elif alert.attempts >= MAX_ATTEMPTS or alert.event == "test":
        alert.status, alert.last_error = AlertStatus.FAILED, error
    else:
        alert.status, alert.last_error = AlertStatus.PENDING, error
        alert.next_attempt_at = now + timedelta(seconds=10 * 3 ** (alert.attempts - 1))
    alert.save(update_fields=["attempts", "status", "sent_at", "last_error", "next_attempt_at"])
    if not ok:
        logger.warning("alert %s via %s failed: %s", alert.id, alert.channel.name, error)


def _claim_due(limit: int = 50) -> list[Alert]:
    due = list(
        Alert.objects.filter(status=AlertStatus.PENDING, next_attempt_at__lte=timezone.now())
        .select_related("channel")
        .order_by("id")[:limit]
    )
    if not due:
        return []
    # Alerts of one check on one channel go out in the order they were raised: PagerDuty must
    # see the trigger before the resolve. One waits while an older one is still undelivered
    # (its retry not due yet, or being sent right now).
    first_undelivered: dict[tuple, int] = {}
    for channel_id, check_id, alert_id in (
        Alert.objects.filter(status__in=[AlertStatus.PENDING, AlertStatus.SENDING])
        .exclude(id__in=[alert.id for alert in due])
        .values_list("channel_id", "check_ref_id", "id")
    ):
        key = (channel_id, check_id)
        first_undelivered[key] = min(alert_id, first_undelivered.get(key, alert_id))
    due = [
        alert
        for alert in due
        if first_undelivered.get((alert.channel_id, alert.check_ref_id), alert.id) >= alert.id
    ]
    # Claimed one by one: another worker (a second `monitor`) may race for the same rows.
    return [
        alert
        for alert in due
        if Alert.objects.filter(id=alert.id, status=AlertStatus.PENDING).update(
            status=AlertStatus.SENDING
        )
        == 1
    ]


def release_stuck() -> int:
    """Rows left "sending" by a crash go back to pending at start-up."""
    return Alert.objects.filter(status=AlertStatus.SENDING).update(status=AlertStatus.PENDING)


async def deliver_due(in_database: DatabaseCall = sync_to_async) -> int:
    claimed = await in_database(_claim_due)()
    in_order: dict[tuple, list[Alert]] = {}
    for alert in claimed:  # oldest first
        in_order.setdefault((alert.channel_id, alert.check_ref_id), []).append(alert)
    if in_order:
        # Different checks and channels at once; one check's alerts on a channel one by one.
        attempts = (_attempt_each(alerts, in_database) for alerts in in_order.values())
        await asyncio.gather(*attempts)
    return len(claimed)


async def _attempt_each(alerts: list[Alert], in_database: DatabaseCall) -> None:
    for alert in alerts:
        await attempt(alert, in_database)


def seconds_to_next_attempt() -> float | None:
    """Seconds until the earliest pending alert is due (0 if one is), None when none waits."""
    due = (
        Alert.objects.filter(status=AlertStatus.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if due is None:
        return None
    return max(0.0, (due - timezone.now()).total_seconds())


async def worker(
    stop: asyncio.Event,
    wake: asyncio.Event | None = None,
    idle_poll_s: float = 10.0,
    reminders_every_s: float = 30.0,
) -> None:
    """Deliver pending alerts: when `wake` is set (the scheduler enqueued some), when a retry is
    due, and every `idle_poll_s` for alerts another process enqueued. Polling every second
    instead was a sizeable part of an idle console's CPU.

    Its database work runs on a thread of its own: on asgiref's shared thread (Django's async
    ORM) a slow step here would hold up the other services and the websocket consumers, or
    they it.
    """
    wake = wake or asyncio.Event()
    loop = asyncio.get_running_loop()
    waker = (loop, wake)
    with _wakers_lock:
        _wakers.add(waker)
    database = DatabaseThread("alert-worker-db")
    in_database = database.wrap
    try:
        await _work(stop, wake, idle_poll_s, reminders_every_s, in_database)
    finally:
        with _wakers_lock:
            _wakers.discard(waker)
        await database.close()


# The running workers' wake events, so that alerts enqueued outside the scheduler (the exposure
# audit) are delivered now rather than at the next idle poll. Workers add and remove theirs on
# their loops while `nudge` reads them from any thread: under the lock.
_wakers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
_wakers_lock = threading.Lock()


def nudge() -> None:
    """Wake every alert worker of this process (safe from any thread)."""
    with _wakers_lock:
        wakers = list(_wakers)
    for loop, event in wakers:
        with contextlib.suppress(RuntimeError):  # that loop has closed
            loop.call_soon_threadsafe(event.set)


async def _work(
    stop: asyncio.Event,
    wake: asyncio.Event,
    idle_poll_s: float,
    reminders_every_s: float,
    in_database: DatabaseCall,
) -> None:
    await in_database(release_stuck)()
    last_reminders = float("-inf")
    while not stop.is_set():
        wake.clear()
        wait = idle_poll_s
        try:
            if time.monotonic() - last_reminders >= reminders_every_s:
                last_reminders = time.monotonic()
                await in_database(enqueue_reminders)()
            await deliver_due(in_database)
            next_attempt = await in_database(seconds_to_next_attempt)()
            if next_attempt is not None:
                wait = min(wait, next_attempt)
        except Exception:
            logger.exception("alert worker pass failed")
        wait = min(wait, max(0.0, last_reminders + reminders_every_s - time.monotonic()))
        await first_of(stop, wake, timeout=wait)


def send_test(channel: AlertChannel) -> Alert:
    """Send a test alert now (the "send test" button) and return the logged row."""
    from asgiref.sync import async_to_sync

    alert = Alert.objects.create(
        channel=channel,
        check_name="test",
        event="test",
        state=states.UP,
        message=message_for("test", channel.name, states.UP, ""),
        status=AlertStatus.SENDING,
    )
    async_to_sync(attempt)(alert)
    alert.refresh_from_db()
    return alert
