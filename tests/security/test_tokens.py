"""Tokens beyond tests/console/test_api_auth.py: foreign algorithms, personal tokens and their
lifecycle, refresh misuse, revocation on password change, key strength and pruning."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.utils import timezone

from console.foundation import tokens
from console.foundation.models import AuditEntry, PersonalToken, RefreshToken
from tests.conftest import jwt_claims

pytestmark = pytest.mark.django_db

PORTS = "/api/v1/ports?port=1"


def _rs256(user) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(jwt_claims(user), pem, algorithm="RS256")


def _hs256_with_alg_header(user, alg: str) -> str:
    """A valid HS256 signature under a header that claims another algorithm."""
    good = jwt.encode(jwt_claims(user), settings.JWT_SIGNING_KEY, algorithm="HS256")
    _header, payload, signature = good.split(".")
    header = jwt.utils.base64url_encode(f'{{"alg":"{alg}","typ":"JWT"}}'.encode()).decode()
    return f"{header}.{payload}.{signature}"


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(_rs256, id="rs256"),
        pytest.param(lambda u: _hs256_with_alg_header(u, "HS512"), id="hs512-header"),
        pytest.param(lambda u: _hs256_with_alg_header(u, "RS256"), id="rs256-header"),
        pytest.param(lambda u: _hs256_with_alg_header(u, "none"), id="none-header"),
    ],
)
def test_it_refuses_tokens_with_a_foreign_algorithm(api, viewer_user, forge):
    response = api("get", PORTS, forge(viewer_user))
    assert response.status_code == 401 and response.json() == {"detail": "Not authenticated"}


def test_it_accepts_a_personal_token_and_records_its_use(api, viewer_user, personal_token):
    record, raw = personal_token(viewer_user)
    assert api("get", PORTS, raw).status_code == 200
    record.refresh_from_db()
    assert record.last_used_at is not None
    assert raw not in str(list(PersonalToken.objects.values()))  # only the jti is stored


def test_it_refuses_a_revoked_personal_token(api, viewer_user, personal_token):
    record, raw = personal_token(viewer_user)
    tokens.revoke_personal(record)
    assert api("get", PORTS, raw).status_code == 401


def test_it_refuses_an_expired_personal_token_record(api, viewer_user, personal_token):
    record, raw = personal_token(viewer_user)
    PersonalToken.objects.filter(pk=record.pk).update(expires_at=timezone.now())
    assert api("get", PORTS, raw).status_code == 401


def test_it_refuses_a_personal_token_in_the_query_string(client, viewer_user, personal_token):
    _record, raw = personal_token(viewer_user)
    assert client.get(f"{PORTS}&token={raw}").status_code == 401


def test_it_refuses_a_refresh_token_as_access_and_a_reused_one(api, viewer_user):
    pair = tokens.issue_pair(viewer_user)
    assert api("get", PORTS, pair["refresh"]).status_code == 401
    rotated = api("post", "/api/v1/auth/refresh", body={"refresh": pair["refresh"]})
    assert rotated.status_code == 200
    assert api("post", "/api/v1/auth/refresh", body={"refresh": pair["refresh"]}).status_code == 401
    # The family is dead: the newer refresh token is refused too.
    newer = rotated.json()["refresh"]
    assert api("post", "/api/v1/auth/refresh", body={"refresh": newer}).status_code == 401
    assert RefreshToken.objects.filter(revoked_at__isnull=True).count() == 0


def test_it_revokes_every_token_when_the_password_changes(api, viewer_user, personal_token):
    pair = tokens.issue_pair(viewer_user)
    _record, raw = personal_token(viewer_user)
    assert api("get", PORTS, pair["access"]).status_code == 200
    viewer_user.set_password("a-new-and-long-passphrase")
    viewer_user.save()
    assert api("get", PORTS, pair["access"]).status_code == 401
    assert api("get", PORTS, raw).status_code == 401
    assert api("post", "/api/v1/auth/refresh", body={"refresh": pair["refresh"]}).status_code == 401
    assert AuditEntry.objects.filter(action="token.revoke", detail__reason="password changed")


def test_it_manages_personal_tokens_through_the_api(api, operator_user, bearer):
    access = bearer(operator_user)["Authorization"].split()[1]
    created = api(
        "post",
        "/api/v1/auth/tokens",
        access,
        {"name": "deploy script", "scopes": ["read", "operate"], "expires_in_days": 7},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["scopes"] == ["read", "operate"] and body["token"]
    assert api("get", PORTS, body["token"]).status_code == 200
    listed = api("get", "/api/v1/auth/tokens", access).json()
    assert listed["count"] == 1 and "token" not in listed["items"][0]
    assert api("delete", f"/api/v1/auth/tokens/{body['id']}", access).status_code == 204
    assert api("get", PORTS, body["token"]).status_code == 401


def test_it_never_grants_a_scope_above_the_role(api, operator_user, bearer):
    access = bearer(operator_user)["Authorization"].split()[1]
    response = api(
        "post",
        "/api/v1/auth/tokens",
        access,
        {"name": "x", "scopes": ["admin"], "expires_in_days": 1},
    )
    assert response.status_code == 403 and "admin" in response.json()["detail"]
    with pytest.raises(ValueError, match="above your role"):
        tokens.issue_personal(operator_user, "x", ["admin"], 1)


@pytest.mark.parametrize(
    ("name", "scopes", "days", "message"),
    [
        ("ci", [], 30, "scopes: choose from read, operate, admin"),
        ("ci", ["read", "write"], 30, "scopes: choose from read, operate, admin"),
        ("ci", ["read", "admin"], 30, "scopes: 'admin' is above your role (operator)"),
        ("ci", ["read"], 0, "expires_in_days: from 1 to 90"),
        ("ci", ["read"], 91, "expires_in_days: from 1 to 90"),
        ("  ", ["read"], 30, "name: 1-100 characters"),
        ("x" * 101, ["read"], 30, "name: 1-100 characters"),
    ],
)
def test_a_personal_token_request_is_refused_with_its_reason(
    operator_user, name, scopes, days, message
):
    with pytest.raises(ValueError) as raised:
        tokens.issue_personal(operator_user, name, scopes, days)
    assert str(raised.value) == message
    assert not PersonalToken.objects.exists()


def test_a_personal_token_carries_its_highest_scope_and_lives_its_days(operator_user):
    record, raw = tokens.issue_personal(
        operator_user, " " + "n" * 100 + " ", ["operate", "read"], 90
    )
    assert record.name == "n" * 100  # the longest name allowed, trimmed
    assert record.scopes == ["read", "operate"]  # lowest first, as the tokens page lists them
    claims = tokens.decode(raw, tokens.PERSONAL)
    assert claims["scope"] == "operate"
    assert claims["exp"] - claims["iat"] == 90 * 86400
    assert record.expires_at.timestamp() == claims["exp"]
    _user, verified = tokens.verify_bearer(raw)
    assert verified["scope"] == "operate"


def test_it_prints_a_token_from_the_command_line(admin_user, capsys, api):
    call_command("token", "create", "--user", "ada", "--scope", "read", "--days", "30")
    out = capsys.readouterr()
    raw = out.out.strip()
    assert "shown only now" in out.err and raw.count(".") == 2
    assert api("get", PORTS, raw).status_code == 200
    record = PersonalToken.objects.get()
    assert record.scopes == ["read"] and (record.expires_at - timezone.now()).days in (29, 30)


def test_it_prunes_expired_token_records(viewer_user, personal_token):
    tokens.issue_pair(viewer_user)
    record, _raw = personal_token(viewer_user)
    later = timezone.now() + timedelta(days=400)
    assert tokens.prune_expired(later) == 2
    assert not PersonalToken.objects.filter(pk=record.pk).exists()


def test_it_refuses_to_sign_with_a_short_key(settings, viewer_user):
    settings.JWT_SIGNING_KEY = "short"
    with pytest.raises(ImproperlyConfigured):
        tokens.issue_pair(viewer_user)
    from console.security.checks import jwt_key_strength

    assert [error.id for error in jwt_key_strength(None)] == ["console.E001"]


def test_it_keeps_leeway_within_thirty_seconds(settings, api, viewer_user):
    settings.JWT_LEEWAY_SECONDS = 3600  # a misconfiguration is capped, not obeyed
    stale = jwt.encode(
        jwt_claims(viewer_user, exp=int(time.time()) - 45),
        settings.JWT_SIGNING_KEY,
        algorithm="HS256",
    )
    assert api("get", PORTS, stale).status_code == 401


def test_it_keeps_tokens_out_of_the_request_log(client, viewer_user, personal_token, caplog):
    _record, raw = personal_token(viewer_user)
    with caplog.at_level("INFO"):
        client.get(f"{PORTS}&token={raw}", headers={"Authorization": f"Bearer {raw}"})
    assert raw not in caplog.text


def test_a_personal_tokens_scopes_are_kept_lowest_first_and_once(admin_user):
    record, _raw = tokens.issue_personal(admin_user, "all", ["admin", "read", "operate", "read"], 1)
    record.refresh_from_db()
    assert record.scopes == ["read", "operate", "admin"]


def test_revoking_a_family_again_keeps_the_first_revocation_and_counts_nothing(admin_user):
    tokens.issue_pair(admin_user)
    family = RefreshToken.objects.get().family
    assert tokens.revoke_family(family) == 1
    first = RefreshToken.objects.get().revoked_at
    assert tokens.revoke_family(family) == 0
    assert RefreshToken.objects.get().revoked_at == first
