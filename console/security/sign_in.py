"""Every password sign-in through one throttle and one audit.

Three doors take a password: the console's sign-in page, the admin site's login page and
`POST auth/token`. Each asks `lockout` first (a locked pair is refused without trying the
password, which is what is locked), counts a wrong password, forgets the failures on success and
writes the audit entry. Before this, the admin site's login had neither: 40 wrong passwords passed
unnoticed.

The two pages share `ThrottledSignIn`, a mixin for Django's authentication forms, so the admin
site keeps its own view and template (`AdminSite.login_form` is Django's hook for this).
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpResponse

from console.foundation import audit
from console.security import lockout
from console.security.signals import judge_password


def _username(raw) -> str:
    return (raw or "")[:150]


def refused_while_locked(request, username: str, action: str, **detail) -> lockout.Lock | None:
    """The lock on this username and address, audited, or None when a password may be tried."""
    username = _username(username)
    lock = lockout.locked(username, audit.client_address(request))
    if lock is not None:
        audit.record(
            action, request=request, target=username, outcome="locked", username=username, **detail
        )
    return lock


def failed(request, username: str, action: str, **detail) -> None:
    """A wrong password: counted against this username and address, and audited."""
    username = _username(username)
    lockout.failed(username, audit.client_address(request))
    audit.record(
        action, request=request, target=username, outcome="denied", username=username, **detail
    )


def succeeded(request, user, password: str, action: str, **detail) -> None:
    lockout.succeeded(user.get_username(), audit.client_address(request))
    judge_password(user, password)
    audit.record(action, request=request, user=user, target=user.get_username(), **detail)


def with_lock_status(response: HttpResponse, lock: lockout.Lock | None) -> HttpResponse:
    """429 with Retry-After when the page was refused by a lock (the page shows the wait)."""
    if lock is not None:
        response.status_code = 429
        response["Retry-After"] = str(lock.seconds)
    return response


class ThrottledSignIn:
    """For an AuthenticationForm: the lock is checked, and the outcome counted, in `clean()`."""

    audit_action = "auth.login"
    audit_detail: dict = {}
    lock: lockout.Lock | None = None

    def clean(self) -> dict[str, Any]:
        request = self.request  # type: ignore[attr-defined]
        username = _username(self.data.get("username"))  # type: ignore[attr-defined]
        self.lock = refused_while_locked(request, username, self.audit_action, **self.audit_detail)
        if self.lock is not None:
            raise ValidationError(self.lock.message, code="locked")
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except ValidationError:
            if self.user_cache is None:  # type: ignore[attr-defined]
                failed(request, username, self.audit_action, **self.audit_detail)
            else:
                # The right password for an account this page does not admit (the admin site
                # takes staff only): refused, but not a guess to count against the account.
                audit.record(
                    self.audit_action,
                    request=request,
                    target=username,
                    outcome="denied",
                    username=username,
                    reason="account not admitted here",
                    **self.audit_detail,
                )
            raise
        user = self.user_cache  # type: ignore[attr-defined]
        if user is not None:  # None when a field was missing: no password was tried
            password = self.cleaned_data["password"]  # type: ignore[attr-defined]
            succeeded(request, user, password, self.audit_action, **self.audit_detail)
        return cleaned


class ConsoleSignInForm(ThrottledSignIn, AuthenticationForm):
    pass


class AdminSignInForm(ThrottledSignIn, AdminAuthenticationForm):
    audit_detail = {"via": "admin site"}
