"""Checks, their results, hourly rollups, state history, alert channels and the alert log.

Raw results are kept for hours, rollups for months: the pages and uptime figures read rollups so
their cost does not grow with how long a check has existed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from health.states import CheckState

CHECK_TYPES = ("http", "tcp", "redis", "query", "command")
# Checks that execute code or SQL on this machine are an admin's (DESIGN.md, trust boundaries).
ADMIN_CHECK_TYPES = frozenset({"command", "query"})


class Check(models.Model):
    name = models.CharField(max_length=200, unique=True)
    service = models.CharField(max_length=100, blank=True, default="")
    type = models.CharField(max_length=10, choices=[(t, t) for t in CHECK_TYPES])
    target = models.JSONField(default=dict)
    interval_s = models.PositiveIntegerField(default=30)
    timeout_s = models.FloatField(default=5.0)
    warn_ms = models.PositiveIntegerField(null=True, blank=True)
    crit_ms = models.PositiveIntegerField(null=True, blank=True)
    failures_before_down = models.PositiveSmallIntegerField(default=2)
    successes_before_up = models.PositiveSmallIntegerField(default=1)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The scheduler compares the newest updated_at to notice edits without a restart.
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    # Live state, written by the scheduler (or a manual run) after each result.
    state = models.CharField(max_length=10, default=CheckState.PENDING, choices=CheckState.choices)
    state_since = models.DateTimeField(default=timezone.now)
    fail_streak = models.PositiveIntegerField(default=0)
    success_streak = models.PositiveIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=10, blank=True, default="")
    last_latency_ms = models.FloatField(null=True, blank=True)
    last_detail = models.CharField(max_length=300, blank=True, default="")
    # Whether the last run answered (a slow answer can still be "down" by a threshold); None:
    # stored before this was recorded.
    last_answered = models.BooleanField(null=True, blank=True)
    last_reminder_at = models.DateTimeField(null=True, blank=True)
    # The channels this check's alerts go to; none chosen means every enabled channel, as it
    # was before checks could choose (so existing set-ups keep their meaning).
    channels: models.ManyToManyField[AlertChannel, Any] = models.ManyToManyField(
        "AlertChannel", blank=True, related_name="checks"
    )

    class Meta:
        ordering = ["service", "name"]

    def __str__(self) -> str:
        return self.name


class Result(models.Model):
    check_ref = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="results")
    at = models.DateTimeField()
    outcome = models.CharField(max_length=10)
    latency_ms = models.FloatField()
    detail = models.CharField(max_length=300, blank=True, default="")
    # False: the run failed, and latency_ms is only how long failing took (up to the timeout);
    # None: stored before this was recorded (then a "down" outcome is read as a failure).
    answered = models.BooleanField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["check_ref", "-at"], name="health_result_check_at"),
            models.Index(fields=["at"], name="health_result_at"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.latency_ms:.0f} ms"

    @property
    def failed(self) -> bool:
        """No answer: its latency is not one to draw or show."""
        return run_failed(self.answered, self.outcome)


def run_failed(answered: bool | None, outcome: str) -> bool:
    return answered is False or (answered is None and outcome == CheckState.DOWN)


class Rollup(models.Model):
    """One check's hour: counts per outcome and latency figures (p95 from a log histogram)."""

    check_ref = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="rollups")
    hour = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    up = models.PositiveIntegerField(default=0)
    degraded = models.PositiveIntegerField(default=0)
    down = models.PositiveIntegerField(default=0)
    min_ms = models.FloatField(default=0)
    max_ms = models.FloatField(default=0)
    sum_ms = models.FloatField(default=0)
    p95_ms = models.FloatField(default=0)
    histogram = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["check_ref", "hour"], name="health_rollup_check_hour")
        ]
        indexes = [models.Index(fields=["hour"], name="health_rollup_hour")]

    def __str__(self) -> str:
        return f"{self.check_ref_id} @ {self.hour:%Y-%m-%d %H}:00"

    @property
    def mean_ms(self) -> float:
        return self.sum_ms / self.count if self.count else 0.0


class StateChange(models.Model):
    check_ref = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="state_changes")
    at = models.DateTimeField(default=timezone.now)
    from_state = models.CharField(max_length=10)
    to_state = models.CharField(max_length=10)
    reason = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["check_ref", "-at"], name="health_change_check_at")]

    def __str__(self) -> str:
        return f"{self.from_state} -> {self.to_state}"


CHANNEL_KINDS = ("webhook", "slack", "email", "pagerduty")


class AlertChannel(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=[(k, k) for k in CHANNEL_KINDS])
    config = models.JSONField(default=dict)
    enabled = models.BooleanField(default=True)
    on_degraded = models.BooleanField(default=False)
    remind_every_s = models.PositiveIntegerField(default=0)
    # Also told when the exposure audit finds a dangerous listener (a debugger on 0.0.0.0).
    on_exposure = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class AlertStatus(models.TextChoices):
    """Where an alert is in the outbox. A worker claims a pending row (-> sending) before it
    sends, so two workers never send the same alert."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Alert(models.Model):
    """An outbox row: written with the state change, sent later by the alert worker."""

    EVENTS = ("trigger", "recovery", "degraded", "reminder", "test", "exposure")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="alerts")
    check_ref = models.ForeignKey(
        Check, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    check_name = models.CharField(max_length=200, blank=True, default="")
    event = models.CharField(max_length=10)
    state = models.CharField(max_length=10, blank=True, default="")
    previous_state = models.CharField(max_length=10, blank=True, default="")
    message = models.CharField(max_length=500)
    status = models.CharField(
        max_length=10, default=AlertStatus.PENDING, choices=AlertStatus.choices
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="health_alert_due"),
            models.Index(fields=["-created_at"], name="health_alert_created"),
        ]

    def __str__(self) -> str:
        return self.message


class AlertAttempt(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    duration_ms = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"attempt {'ok' if self.ok else 'failed'} at {self.at:%H:%M:%S}"
