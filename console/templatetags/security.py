"""`{% load security %}{% exposure_badge %}`: the exposure audit's badge for any page.

It renders a placeholder that htmx fills from `console:exposure-badge` after the page has loaded,
so a page never waits for the probes.
"""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string

register = template.Library()


@register.simple_tag(takes_context=True)
def exposure_badge(context) -> str:
    from console.security import exposures

    return render_to_string(
        "console/exposure_badge.html",
        {"exposure_audit": exposures.cached(), "placeholder": True},
        request=context.get("request"),
    )
