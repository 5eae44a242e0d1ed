"""One URL per screen: an htmx request gets the screen's partial, anything else the whole page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it: what a view that reads `htmx` takes.

    Only a type: HttpRequest does not declare the attribute the middleware sets."""

    htmx: HtmxDetails


def render_partial_or_page(
    request: HtmxHttpRequest, template: str, partial: str, context: dict, status: int = 200
) -> HttpResponse:
    # A boosted request navigates like a link: it wants the whole page.
    if request.htmx and not request.htmx.boosted:
        template = f"{template}#{partial}"
    return render(request, template, context, status=status)
