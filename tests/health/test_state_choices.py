"""Check states and alert statuses are TextChoices: the stored words stay what they were, and the
health code compares against the members, not against bare strings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from health.models import Alert, AlertStatus, Check
from health.states import CheckState

HEALTH = Path(__file__).resolve().parents[2] / "health"
# `status="sent"`, `status == "pending"`, `state != "down"`, `status__in=["pending", ...`
BARE_COMPARISON = re.compile(
    r"\b(status|state)(__in)?\s*(==|!=|=)\s*\[?\"(pending|sending|sent|failed|up|degraded|down|paused)\""
)


def test_it_stores_the_words_it_always_stored():
    assert CheckState.values == ["pending", "up", "degraded", "down", "paused"]
    assert AlertStatus.values == ["pending", "sending", "sent", "failed"]


def test_it_offers_the_members_as_the_fields_choices_and_defaults():
    state = Check._meta.get_field("state")
    status = Alert._meta.get_field("status")
    assert state.choices == CheckState.choices and state.default == CheckState.PENDING
    assert status.choices == AlertStatus.choices and status.default == AlertStatus.PENDING


def test_it_compares_states_and_statuses_with_the_members_only():
    bare = sorted(
        f"{path.relative_to(HEALTH)}:{number}: {line.strip()}"
        for path in HEALTH.rglob("*.py")
        if "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BARE_COMPARISON.search(line)
    )
    assert bare == []


@pytest.mark.django_db
def test_it_filters_alerts_by_a_status_member(client, admin_user, bearer):
    response = client.get("/api/v1/alerts", {"status": "sent"}, headers=bearer(admin_user))
    assert response.status_code == 200, response.content
    refused = client.get("/api/v1/alerts", {"status": "lost"}, headers=bearer(admin_user))
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][-1] == "status"
