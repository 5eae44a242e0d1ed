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
