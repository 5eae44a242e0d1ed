"""The security app's records: one-time sign-in links, failed sign-ins (the lockout) and the
weak-password marks. They belong to the `console` app (its migrations), which imports them.
"""

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


class SignInFailure(models.Model):
    """One failed sign-in, kept for the cool-off window of the lockout."""

    username = models.CharField(max_length=150, db_index=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"failed sign-in {self.username} from {self.address}"


class PasswordCheck(models.Model):
    """Whether a user's password passed the validators when it was last set.

    The raw password exists only at that moment, so this is the one chance to judge it; the
    posture page reads the verdict (a password set by createsuperuser skips the forms).
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    weak = models.BooleanField(default=False)
    reasons = models.JSONField(default=list, blank=True)
    checked_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"password of {self.user}: {'weak' if self.weak else 'ok'}"
