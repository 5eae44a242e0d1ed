"""Filters for the port page's plain text: an explanation's `command` reads as code, not as
literal backticks, and a start time says how long ago it was."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def code_spans(text: str) -> SafeString:
    """Escape `text` and show each `quoted` part as <code>: the diagnosis writes commands
    between backticks (`systemctl stop nginx`) for the API and the terminal alike."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: nothing to pair it with, keep it as text
        return conditional_escape(text)
    pieces = [
        format_html("<code>{}</code>", part) if index % 2 else conditional_escape(part)
        for index, part in enumerate(parts)
    ]
    return format_html_join("", "{}", ((piece,) for piece in pieces))


@register.filter
def ago(epoch: float | None) -> str:
    """How long ago a process started, as people say it: "just now", "5 minutes ago"."""
    if not epoch:
        return ""
    started = datetime.fromtimestamp(epoch, tz=UTC)
    if (timezone.now() - started).total_seconds() < 60:
        return "just now"
    return f"{timesince(started, depth=1)} ago"
