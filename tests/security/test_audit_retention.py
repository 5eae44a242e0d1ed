"""The audit log keeps CONSOLE_AUDIT_RETENTION_DAYS (365 by default); the hourly job prunes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from console import maintenance
from console.foundation import audit
from console.foundation.models import AuditEntry

pytestmark = pytest.mark.django_db


def _entry(age: timedelta, action: str) -> AuditEntry:
    entry = audit.record(action, target="t")
    AuditEntry.objects.filter(id=entry.id).update(at=timezone.now() - age)
    return entry


def test_it_defaults_to_a_year():
    assert settings.CONSOLE_AUDIT_RETENTION_DAYS == 365


def test_the_hourly_job_drops_entries_older_than_the_retention(settings):
    settings.CONSOLE_AUDIT_RETENTION_DAYS = 30
    _entry(timedelta(days=31), "old")
    _entry(timedelta(days=29, hours=23), "young")
    _entry(timedelta(0), "new")
    assert maintenance.prune_once() >= 1
    assert sorted(AuditEntry.objects.values_list("action", flat=True)) == ["new", "young"]


def test_the_default_keeps_last_months_entries_and_drops_last_years(settings):
    _entry(timedelta(days=366), "too-old")
    _entry(timedelta(days=300), "kept")
    maintenance.prune_once()
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["kept"]


def test_zero_keeps_every_entry(settings):
    settings.CONSOLE_AUDIT_RETENTION_DAYS = 0
    _entry(timedelta(days=4000), "ancient")
    maintenance.prune_once()
    assert AuditEntry.objects.filter(action="ancient").exists()
