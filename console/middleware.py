"""Request timing and the login requirement."""

from __future__ import annotations

import logging
import time

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect

from console.foundation.secret_paths import redact_path

logger = logging.getLogger("console.requests")


class RequestTimingMiddleware:
    """Stamps every response with its server time and logs one line per request.

    Outermost, so the figure covers every other middleware too. The query string is left out
    of the log on purpose: nothing secret belongs there, but if a client puts it there anyway
    it must not end up in a log file. The sign-in link's token is in the path itself, so the
    path is logged redacted (`/login/link/…/`).
    """

    # Sync only, like the middlewares inside it: WhiteNoise and the security middlewares are
    # sync, so under ASGI Django runs the whole chain in one thread from the outer edge, and an
    # async path here would never be taken.
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        started = time.perf_counter()
        return self._finish(request, self.get_response(request), started)

    def _finish(self, request: HttpRequest, response: HttpResponse, started: float):
        elapsed_ms = (time.perf_counter() - started) * 1000
        response["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
        response["X-Response-Time"] = f"{elapsed_ms:.1f}ms"
        logger.info(
            "%s %s %s %.1fms",
            request.method,
            redact_path(request.path),
            response.status_code,
            elapsed_ms,
        )
        return response


class ConsoleLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Every page needs a signed-in user; the JSON API authenticates bearer tokens itself."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)

    def handle_no_permission(self, request, view_func):
        # An htmx swap would paste the sign-in page into a table cell: send the whole tab there.
        if request.headers.get("HX-Request"):
            return HttpResponseClientRedirect(resolve_url(self.get_login_url(view_func)))
        return super().handle_no_permission(request, view_func)
