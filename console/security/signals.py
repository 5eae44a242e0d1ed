"""Reactions to account changes that must hold however the change was made (console, admin
site, `manage.py changepassword`)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save


def _revoke_tokens_on_password_change(sender, instance, created: bool, **kwargs) -> None:
    # AbstractBaseUser.save() clears _password only after post_save has run, so a set password
    # is still visible here, whichever form or command set it.
    raw = getattr(instance, "_password", None)
    if raw is None:
        return
    from console.foundation import audit, tokens

    judge_password(instance, raw)
    if created:
        return

    revoked = tokens.revoke_all_for(instance)
    audit.record(
        "token.revoke",
        user=instance,
        target=f"all tokens of {instance.get_username()}",
        reason="password changed",
        revoked=revoked,
    )


def judge_password(user, raw: str) -> None:
    """Record whether `raw` passes the validators (at set time, and at each password sign-in,
    which catches accounts made by createsuperuser)."""
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    from console.security.models import PasswordCheck

    try:
        validate_password(raw, user)
        reasons: list[str] = []
    except ValidationError as error:
        reasons = list(error.messages)
    PasswordCheck.objects.update_or_create(
        user=user, defaults={"weak": bool(reasons), "reasons": reasons}
    )


def connect() -> None:
    post_save.connect(
        _revoke_tokens_on_password_change,
        sender=get_user_model(),
        dispatch_uid="console.revoke_tokens_on_password_change",
    )
