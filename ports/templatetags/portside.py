from __future__ import annotations

from datetime import UTC, datetime

from django import template

register = template.Library()


@register.filter
def epoch_dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


@register.filter
def epoch_iso(value: float | None) -> str:
    return datetime.fromtimestamp(value, tz=UTC).isoformat() if value else ""
