"""The records the gate decides from and writes: refresh and personal tokens, the runtime
security settings, and the audit log.

They belong to the `console` app (its migrations), which imports them from here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """Who did what to what, from where, and how it ended. Never edited through the console."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150, blank=True)  # kept when the user is deleted
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=32)
    detail = models.JSONField(default=dict, blank=True)
    # Refused anonymous requests are folded into one row per address, path and minute (a
    # scanner must not be able to grow the log by a row a request); `count` says how many.
    count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action} {self.target}"


class RefreshToken(models.Model):
    """One issued refresh token. Rotation marks it used; a second use revokes its whole family."""

    jti = models.CharField(max_length=64, unique=True)
    family = models.CharField(max_length=64, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refresh token {self.jti[:8]} of {self.user}"


class PersonalToken(models.Model):
    """A script's long-lived access token. The JWT itself is shown once; this record is its jti,
    so it can be listed, revoked and its last use seen."""

    jti = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"token {self.name!r} of {self.user}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class SecuritySettings(models.Model):
    """The settings an admin changes at run time (one row). The fixed ones live in settings.py."""

    access_token_minutes = models.PositiveIntegerField(default=15)
    refresh_token_days = models.PositiveIntegerField(default=7)
    personal_token_max_days = models.PositiveIntegerField(default=90)
    allowed_networks = models.TextField(blank=True, default="")
    # Where health checks may connect beyond loopback and this machine's own addresses (CIDRs).
    check_networks = models.TextField(blank=True, default="")
    command_checks = models.BooleanField(default=False)
    lockout_failures = models.PositiveIntegerField(default=5)
    lockout_username_failures = models.PositiveIntegerField(default=20)
    lockout_minutes = models.PositiveIntegerField(default=15)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "security settings"

    def __str__(self) -> str:
        return "security settings"
