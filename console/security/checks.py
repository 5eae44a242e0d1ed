"""System checks for the console's own secrets (`manage.py check`, and the posture page)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from console.foundation.tokens import MIN_KEY_BYTES


@register("security")
def jwt_key_strength(app_configs, **kwargs) -> list[Error]:
    key = settings.JWT_SIGNING_KEY
    if len(key.encode()) < MIN_KEY_BYTES:
        return [
            Error(
                f"CONSOLE_JWT_KEY is shorter than {MIN_KEY_BYTES} bytes.",
                hint="Unset it to have one generated into var/jwt_key, or give a longer one.",
                id="console.E001",
            )
        ]
    if key == settings.SECRET_KEY:
        return [
            Error(
                "CONSOLE_JWT_KEY equals SECRET_KEY.",
                hint="Tokens need a key of their own.",
                id="console.E002",
            )
        ]
    return []
