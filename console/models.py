"""The console app's models, defined beside the code that uses them and imported here so that
Django registers them under the `console` label (their migrations stay in console/migrations).
"""

from __future__ import annotations

from console.foundation.models import AuditEntry, PersonalToken, RefreshToken, SecuritySettings
from console.security.models import PasswordCheck, SignInFailure, SignInLink

__all__ = [
    "AuditEntry",
    "PasswordCheck",
    "PersonalToken",
    "RefreshToken",
    "SecuritySettings",
    "SignInFailure",
    "SignInLink",
]
