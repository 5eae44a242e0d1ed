"""Filters for the port page's plain text: an explanation's `command` reads as code, not as
literal backticks."""

from __future__ import annotations

from django import template
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString

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
