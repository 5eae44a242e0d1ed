"""The open liveness probe (`GET /health`) and `/favicon.ico`."""

from __future__ import annotations

from functools import cache

from django.contrib.auth.decorators import login_not_required
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET


@login_not_required
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@cache
def _favicon() -> bytes:
    path = finders.find("favicon.svg")
    with open(str(path), "rb") as file:
        return file.read()


@login_not_required
@require_GET
@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page names: the console's SVG, not a 404."""
    return HttpResponse(_favicon(), content_type="image/svg+xml")
