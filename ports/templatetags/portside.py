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


@register.filter
def sort_token(listener, sort: str) -> str:
    """The row's place in the current sort as one string, so the page can slot pushed rows in."""
    from ports.listing import SORT_KEYS

    parts = SORT_KEYS.get(sort, SORT_KEYS["port"])(listener)
    # A space sorts below every printable character, so prefixes order like tuples do.
    return " ".join(f"{part:010d}" if isinstance(part, int) else str(part) for part in parts)


@register.filter
def duration_text(value) -> str:
    """A timedelta as people say it: 850 ms, 42 s, 3 min 5 s, 2 h 4 min, 3 d 1 h."""
    seconds = value.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key) if mapping else None


@register.simple_tag
def monitor_query(listener) -> str:
    """Query string for "Monitor this port": the health check form fills itself from it."""
    from urllib.parse import urlencode

    return urlencode(
        {
            "port": listener.port,
            "host": listener.address,
            "service": listener.service or "",
            "proto": listener.proto,
        }
    )
