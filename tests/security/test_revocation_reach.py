"""Revoking one right reaches exactly that right: never another token or another user's.

And the lockout forgets a failure once its cool-off is over, not before.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from console.foundation import runtime_settings, tokens
from console.foundation.models import PersonalToken, RefreshToken
from console.security import lockout
from console.security.models import SignInFailure

pytestmark = pytest.mark.django_db

PORTS = "/api/v1/ports?port=1"


def test_revoking_a_personal_token_revokes_that_one_alone(api, viewer_user, operator_user):
    mine, mine_raw = tokens.issue_personal(viewer_user, "ci", ["read"], 30)
    _other, other_raw = tokens.issue_personal(viewer_user, "laptop", ["read"], 30)
    _theirs, theirs_raw = tokens.issue_personal(operator_user, "script", ["read"], 30)
    assert tokens.revoke_personal(mine) is True
    assert tokens.revoke_personal(mine) is False  # already revoked: nothing more happens
    assert api("get", PORTS, mine_raw).status_code == 401
    assert api("get", PORTS, other_raw).status_code == 200
    assert api("get", PORTS, theirs_raw).status_code == 200
    assert PersonalToken.objects.filter(revoked_at__isnull=True).count() == 2


def test_revoking_everything_of_one_user_leaves_other_users_signed_in(
    api, viewer_user, operator_user
):
    tokens.issue_pair(viewer_user)
    tokens.issue_pair(viewer_user)
    tokens.issue_personal(viewer_user, "ci", ["read"], 30)
    kept_pair = tokens.issue_pair(operator_user)
    _kept, kept_personal = tokens.issue_personal(operator_user, "script", ["read"], 30)

    assert tokens.revoke_all_for(viewer_user) == 3  # two refresh families and one personal token
    assert tokens.revoke_all_for(viewer_user) == 0
    assert api("get", PORTS, kept_pair["access"]).status_code == 200
    assert api("get", PORTS, kept_personal).status_code == 200
    assert RefreshToken.objects.filter(user=operator_user, revoked_at__isnull=True).count() == 1


def test_the_lockout_forgets_failures_after_the_cool_off_and_keeps_newer_ones():
    cooloff = timedelta(minutes=runtime_settings.current().lockout_minutes)
    now = timezone.now()
    SignInFailure.objects.create(username="old", at=now - cooloff - timedelta(minutes=1))
    SignInFailure.objects.create(username="new", at=now - cooloff + timedelta(minutes=1))
    SignInFailure.objects.create(username="now", at=now)
    assert lockout.prune() == 1
    assert sorted(SignInFailure.objects.values_list("username", flat=True)) == ["new", "now"]


def test_a_reused_refresh_token_kills_its_own_family_and_no_other(viewer_user, operator_user):
    stolen = tokens.issue_pair(viewer_user)
    other_device = tokens.issue_pair(viewer_user)
    theirs = tokens.issue_pair(operator_user)
    earlier = timezone.now() - timedelta(days=1)
    long_revoked = tokens.issue_pair(viewer_user)
    RefreshToken.objects.filter(family=_family(long_revoked)).update(revoked_at=earlier)

    tokens.rotate(stolen["refresh"])
    with pytest.raises(tokens.InvalidToken):
        tokens.rotate(stolen["refresh"])  # the second holder of the same token: a thief

    live = set(
        RefreshToken.objects.filter(revoked_at__isnull=True).values_list("family", flat=True)
    )
    assert live == {_family(other_device), _family(theirs)}
    # A family revoked before keeps the time it was revoked at.
    assert RefreshToken.objects.get(family=_family(long_revoked)).revoked_at == earlier


def _family(pair) -> str:
    return tokens.decode(pair["refresh"], tokens.REFRESH)["fam"]


def test_a_failed_sign_in_older_than_the_cool_off_no_longer_locks():
    prefs = runtime_settings.current()
    cooloff = timedelta(minutes=prefs.lockout_minutes)
    stale = timezone.now() - cooloff - timedelta(seconds=5)
    for _ in range(prefs.lockout_failures):
        SignInFailure.objects.create(username="ada", address="10.0.0.7", at=stale)
    assert lockout.locked("ada", "10.0.0.7") is None
    for _ in range(prefs.lockout_failures):
        lockout.failed("ada", "10.0.0.7")
    assert lockout.locked("ada", "10.0.0.7") is not None


def test_a_successful_sign_in_forgets_that_name_from_that_address_only():
    for username, address in [("ada", "10.0.0.7"), ("ada", "10.0.0.8"), ("bob", "10.0.0.7")]:
        lockout.failed(username, address)
    lockout.succeeded("Ada ", "10.0.0.7")  # the name as typed: trimmed and case-folded
    assert sorted(SignInFailure.objects.values_list("username", "address")) == [
        ("ada", "10.0.0.8"),
        ("bob", "10.0.0.7"),
    ]
