"""The console's own records: one-time sign-in links and the audit log."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class SignInLink(models.Model):
    """A single-use link that signs its user in; only the hash is stored, like a password."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sign-in link for {self.user} (expires {self.expires_at:%Y-%m-%d %H:%M})"

    @classmethod
    def issue(cls, user) -> str:
        """Create a link for `user` and return the raw token (shown once, never stored)."""
        raw = secrets.token_urlsafe(32)
        cls.objects.create(
            user=user,
            token_hash=_digest(raw),
            expires_at=timezone.now() + timedelta(seconds=settings.SIGN_IN_LINK_SECONDS),
        )
        return raw

    @classmethod
    def find_usable(cls, raw: str) -> SignInLink | None:
        return (
            cls.objects.filter(
                token_hash=_digest(raw), used_at__isnull=True, expires_at__gt=timezone.now()
            )
            .select_related("user")
            .first()
        )

    def consume(self) -> bool:
        """Mark the link used; False when another request used it first."""
        claimed = SignInLink.objects.filter(pk=self.pk, used_at__isnull=True).update(
            used_at=timezone.now()
        )
        return claimed == 1


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
