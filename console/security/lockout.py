"""Failed sign-in limits, for the sign-in page and `auth/token` alike.

Keyed on username AND address: on a laptop everyone arrives from 127.0.0.1, so an address alone
would lock every user out together. A second, higher bar counts a username's failures from
anywhere, which slows a guesser who spreads over many addresses. The wait runs from the last
failure (as django-axes' cool-off does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from console.foundation import runtime_settings
from console.security.models import SignInFailure


@dataclass(frozen=True)
class Lock:
    seconds: int

    @property
    def message(self) -> str:
        minutes = math.ceil(self.seconds / 60)
        wait = f"{self.seconds} seconds" if self.seconds < 120 else f"{minutes} minutes"
        return f"Too many failed sign-ins. Try again in {wait}."


def _key(username: str) -> str:
    return (username or "").strip().lower()[:150]


def locked(username: str, address: str | None) -> Lock | None:
    prefs = runtime_settings.current()
    cooloff = timedelta(minutes=prefs.lockout_minutes)
    now = timezone.now()
    recent = SignInFailure.objects.filter(username=_key(username), at__gt=now - cooloff)
    for failures, limit in (
        (recent.filter(address=address), prefs.lockout_failures),
        (recent, prefs.lockout_username_failures),
    ):
        if failures.count() >= limit:
            last = failures.order_by("-at").values_list("at", flat=True).first()
            assert last is not None  # `limit` rows or more, and a limit is at least 3
            return Lock(max(1, math.ceil((last + cooloff - now).total_seconds())))
    return None


def failed(username: str, address: str | None) -> None:
    SignInFailure.objects.create(username=_key(username), address=address)


def succeeded(username: str, address: str | None) -> None:
    SignInFailure.objects.filter(username=_key(username), address=address).delete()


def prune() -> int:
    cooloff = timedelta(minutes=runtime_settings.current().lockout_minutes)
    deleted, _ = SignInFailure.objects.filter(at__lt=timezone.now() - cooloff).delete()
    return deleted
