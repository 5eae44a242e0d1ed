"""JWT access, refresh and personal tokens (PyJWT, HS256 pinned, RFC 8725's checklist).

Every token carries iss, aud, sub, iat, exp, jti and a `typ` claim, so a refresh token can never
pass as an access token. Verification answers one error for every failure: the caller says 401
and nothing more, so a client learns nothing about why.

Access tokens also carry `pwd`, a digest of the user's current password hash: a password change
ends them at once, and ends refresh families and personal tokens through their records.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.utils import timezone

from console.foundation import runtime_settings
from console.foundation.models import PersonalToken, RefreshToken
from console.foundation.roles import ROLE_SCOPE, SCOPE_ROLE, rank, role_of

if TYPE_CHECKING:  # the auth models cannot be imported before the app registry is ready
    # Tokens belong to accounts of the user model (AUTH_USER_MODEL), whose rows they point to.
    from django.contrib.auth.models import User

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
ACCESS, REFRESH, PERSONAL = "access", "refresh", "pat"
MIN_KEY_BYTES = 32
MAX_LEEWAY_SECONDS = 30
# last_used_at is a hint for people, not an audit: write it at most once a minute per token.
LAST_USED_GRANULARITY = timedelta(seconds=60)


# A token's verified claims, as PyJWT decodes them (JSON).
Claims = dict[str, Any]


class TokenPair(TypedDict):
    """What auth/token and auth/refresh answer."""

    access: str
    refresh: str
    token_type: str
    expires_in: int


class InvalidToken(Exception):
    """The token cannot be used; deliberately without detail."""


def signing_key() -> str:
    key = settings.JWT_SIGNING_KEY
    # HS256 is only as strong as its key (RFC 8725 3.5): refuse a short one rather than sign.
    if len(key.encode()) < MIN_KEY_BYTES or key == settings.SECRET_KEY:
        raise ImproperlyConfigured(
            f"CONSOLE_JWT_KEY must be at least {MIN_KEY_BYTES} random bytes and not SECRET_KEY"
        )
    return key


def _encode(claims: Claims) -> str:
    return jwt.encode(claims, signing_key(), algorithm=ALGORITHM)


def _password_stamp(user: User) -> str:
    return hmac.new(
        signing_key().encode(), (user.password or "").encode(), hashlib.sha256
    ).hexdigest()[:16]


def _claims(user: User, token_type: str, lifetime: int, **extra: object) -> Claims:
    now = int(time.time())
    return {
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "sub": str(user.pk),
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "typ": token_type,
        **extra,
    }


def _verify(token: str) -> Claims:
    try:
        return jwt.decode(
            token,
            signing_key(),
            algorithms=[ALGORITHM],  # pinned: the header's alg is never trusted
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            leeway=min(settings.JWT_LEEWAY_SECONDS, MAX_LEEWAY_SECONDS),
            options={"require": REQUIRED_CLAIMS, "strict_aud": True},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken from error


def decode(token: str, token_type: str) -> Claims:
    claims = _verify(token)
    if claims.get("typ") != token_type:
        raise InvalidToken
    return claims


def user_for(claims: Claims) -> User:
    user = get_user_model().objects.filter(pk=claims["sub"], is_active=True).first()
    if user is None:
        raise InvalidToken
    return user


def verify_bearer(token: str) -> tuple[User, Claims]:
    """(user, claims) for a live access or personal token; InvalidToken otherwise."""
    claims = _verify(token)
    if claims.get("typ") not in (ACCESS, PERSONAL):
        raise InvalidToken
    user = user_for(claims)
    if not still_live(claims, user):
        raise InvalidToken
    if claims["typ"] == PERSONAL:
        now = timezone.now()
        stale = models.Q(last_used_at__isnull=True) | models.Q(
            last_used_at__lt=now - LAST_USED_GRANULARITY
        )
        PersonalToken.objects.filter(stale, jti=claims["jti"]).update(last_used_at=now)
    return user, claims


def still_live(claims: Claims, user: User) -> bool:
    """Whether verified claims still grant anything: asked at sign-in and again at every action.

    A websocket holds its claims for as long as it stays open, so expiry is checked here too,
    not only by PyJWT at the handshake.
    """
    if claims.get("exp", 0) + min(settings.JWT_LEEWAY_SECONDS, MAX_LEEWAY_SECONDS) < time.time():
        return False
    if str(user.pk) != str(claims.get("sub")) or not user.is_active:
        return False
    if claims.get("typ") == PERSONAL:
        record = PersonalToken.objects.filter(jti=claims["jti"]).first()
        return record is not None and record.active and str(record.user_id) == claims["sub"]
    if not hmac.compare_digest(str(claims.get("pwd", "")), _password_stamp(user)):
        return False
    # An access token dies with its refresh family: revoking a session (sign-out, a stolen
    # refresh token) must not leave its last access token working for another 15 minutes.
    family = claims.get("fam")
    if family is None:
        return False
    return not RefreshToken.objects.filter(family=family, revoked_at__isnull=False).exists()


def issue_pair(user: User, family: str | None = None) -> TokenPair:
    """A fresh access token and a refresh token in `family` (a new family at sign-in)."""
    prefs = runtime_settings.current()
    access_seconds = prefs.access_token_minutes * 60
    role = role_of(user)
    if role is None:  # an inactive account: callers only pass active ones
        raise InvalidToken
    scope = ROLE_SCOPE[role]
    family = family or uuid.uuid4().hex
    access = _claims(
        user, ACCESS, access_seconds, scope=scope, pwd=_password_stamp(user), fam=family
    )
    refresh = _claims(user, REFRESH, prefs.refresh_token_days * 86400, fam=family)
    RefreshToken.objects.create(
        jti=refresh["jti"],
        family=refresh["fam"],
        user=user,
        expires_at=datetime.fromtimestamp(refresh["exp"], tz=UTC),
    )
    return {
        "access": _encode(access),
        "refresh": _encode(refresh),
        "token_type": "Bearer",
        "expires_in": access_seconds,
    }


def issue_personal(
    user: User, name: str, scopes: Sequence[str], days: int
) -> tuple[PersonalToken, str]:
    """A personal token: (its record, the JWT shown once). Scopes above the user's role fail."""
    if not scopes or any(scope not in SCOPE_ROLE for scope in scopes):
        raise ValueError("scopes: choose from read, operate, admin")
    top = max(scopes, key=lambda scope: rank(SCOPE_ROLE[scope]))
    if rank(SCOPE_ROLE[top]) > rank(role_of(user)):
        raise ValueError(f"scopes: {top!r} is above your role ({role_of(user)})")
    most = runtime_settings.current().personal_token_max_days
    if not 1 <= days <= most:
        raise ValueError(f"expires_in_days: from 1 to {most}")
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("name: 1-100 characters")
    claims = _claims(user, PERSONAL, days * 86400, scope=top)
    record = PersonalToken.objects.create(
        jti=claims["jti"],
        user=user,
        name=name,
        scopes=sorted(set(scopes), key=lambda scope: rank(SCOPE_ROLE[scope])),
        expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
    )
    return record, _encode(claims)


def revoke_personal(record: PersonalToken) -> bool:
    return (
        PersonalToken.objects.filter(pk=record.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        == 1
    )


def rotate(raw_refresh: str) -> tuple[User, TokenPair]:
    """Exchange a refresh token for a new pair; reuse of a rotated one kills its family."""
    claims = decode(raw_refresh, REFRESH)
    record = RefreshToken.objects.filter(jti=claims["jti"]).first()
    if record is None or record.revoked_at is not None:
        raise InvalidToken
    with transaction.atomic():
        claimed = RefreshToken.objects.filter(pk=record.pk, used_at__isnull=True).update(
            used_at=timezone.now()
        )
        if claimed == 1:
            user = user_for(claims)
            return user, issue_pair(user, family=record.family)
    # Someone already rotated this token: one of its two holders is a thief. Revoked outside
    # the transaction above, so raising cannot roll the revocation back.
    revoke_family(record.family)
    raise InvalidToken


def revoke(raw_refresh: str) -> None:
    claims = decode(raw_refresh, REFRESH)
    record = RefreshToken.objects.filter(jti=claims["jti"]).first()
    if record is None:
        raise InvalidToken
    revoke_family(record.family)


def revoke_family(family: str) -> int:
    return RefreshToken.objects.filter(family=family, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def revoke_all_for(user: User) -> int:
    """Every refresh family and personal token of `user` (a password change, a deactivation)."""
    now = timezone.now()
    refresh = RefreshToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
    personal = PersonalToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=now
    )
    return refresh + personal


def prune_expired(now: datetime | None = None) -> int:
    """Drop records past their expiry: an expired token fails its `exp` check without them."""
    now = now or timezone.now()
    refresh, _ = RefreshToken.objects.filter(expires_at__lt=now).delete()
    personal, _ = PersonalToken.objects.filter(expires_at__lt=now).delete()
    return refresh + personal
