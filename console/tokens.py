"""JWT access and refresh tokens (PyJWT, HS256 pinned, RFC 8725's checklist).

Every token carries iss, aud, sub, iat, exp, jti and a `typ` claim, so a refresh token can never
pass as an access token. Verification answers one error for every failure: the caller says 401
and nothing more, so a client learns nothing about why.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from console.models import RefreshToken
from console.security.roles import ROLE_SCOPE, role_of

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
ACCESS, REFRESH = "access", "refresh"


class InvalidToken(Exception):
    """The token cannot be used; deliberately without detail."""


def _encode(claims: dict) -> str:
    return jwt.encode(claims, settings.JWT_SIGNING_KEY, algorithm=ALGORITHM)


def _claims(user, token_type: str, lifetime: int, **extra) -> dict:
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


def decode(token: str, token_type: str) -> dict:
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=[ALGORITHM],  # pinned: the header's alg is never trusted
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            leeway=settings.JWT_LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS, "strict_aud": True},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken from error
    if claims.get("typ") != token_type:
        raise InvalidToken
    return claims


def user_for(claims: dict):
    user = get_user_model().objects.filter(pk=claims["sub"], is_active=True).first()
    if user is None:
        raise InvalidToken
    return user


def issue_pair(user, family: str | None = None) -> dict:
    """A fresh access token and a refresh token in `family` (a new family at sign-in)."""
    scope = ROLE_SCOPE[role_of(user)]
    access = _claims(user, ACCESS, settings.JWT_ACCESS_SECONDS, scope=scope)
    refresh = _claims(user, REFRESH, settings.JWT_REFRESH_SECONDS, fam=family or uuid.uuid4().hex)
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
        "expires_in": settings.JWT_ACCESS_SECONDS,
    }


def rotate(raw_refresh: str) -> tuple[object, dict]:
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
