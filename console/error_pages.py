"""Error pages in the console's own frame (404, 403, 405, 500), and JSON ones under /api/.

Django's handlers render a bare template; these render the page template with the request, so
the navigation, the user menu and dark mode are there and a person has a way back. An htmx
request (a table refresh, a form post) gets only the error's card, which its target can hold.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

logger = logging.getLogger("console.errors")

API_PREFIX = "/api/"
# What a script reads in `detail`, with the status the API contract promises.
API_DETAIL = {
    403: "You do not have the rights for this",
    404: "Not found",
    405: "Method not allowed",
    500: "Internal error: the console's log has the details",
}


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _render(request: HttpRequest, template: str, context: dict, status: int) -> HttpResponse:
    htmx = getattr(request, "htmx", None)
    name = f"{template}#error-card" if htmx and not htmx.boosted else template
    return HttpResponse(loader.render_to_string(name, context, request=request), status=status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": API_DETAIL[404]}, status=404)
    return _render(request, "404.html", {"request_path": request.path}, 404)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # The gate's refusals are written for people ("your role is viewer; this needs operator").
    reason = str(exception) if exception is not None and str(exception) else ""
    if _is_api(request):
        return JsonResponse({"detail": reason or API_DETAIL[403]}, status=403)
    return _render(request, "403.html", {"exception": _sentence(reason)}, 403)


def _sentence(reason: str) -> str:
    """The gate's "this needs the admin role" as a sentence: "This needs the admin role." """
    if not reason:
        return ""
    reason = reason[0].upper() + reason[1:]
    return reason if reason.endswith((".", "!", "?")) else f"{reason}."


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": API_DETAIL[500]}, status=500)
    try:
        return _render(request, "500.html", {}, 500)
    except Exception:
        # Whatever broke the page may break the frame too (the database, a context processor):
        # then the same words without it.
        logger.exception("the 500 page could not be rendered in the frame")
    try:
        return HttpResponse(loader.render_to_string("500.html", {"bare": True}), status=500)
    except Exception:
        logger.exception("the 500 page could not be rendered at all")
        return HttpResponse(BARE_500, status=500)


BARE_500 = (
    "<!doctype html><title>Server error · Portside</title><h1>Something went wrong</h1>"
    "<p>The console hit an error it did not expect. Its log has the details.</p>"
    '<p><a href="/ports/">Back to Ports</a></p>'
)


class MethodNotAllowedPageMiddleware:
    """A 405 in words: `require_http_methods` answers an empty HttpResponseNotAllowed, ninja a
    plain-text one. Pages get the frame, the API JSON; the Allow header stays either way."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or response.streaming:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response  # an answer that already says why
        allowed = response.get("Allow", "")
        if _is_api(request):
            replacement: HttpResponse = JsonResponse({"detail": API_DETAIL[405]}, status=405)
        else:
            # OPTIONS and HEAD come with every view: a person is told the ones that do something.
            methods = [
                method.strip()
                for method in allowed.split(",")
                if method.strip() and method.strip() not in ("OPTIONS", "HEAD")
            ]
            replacement = _render(
                request, "405.html", {"method": request.method, "allowed": methods}, 405
            )
        if allowed:
            replacement["Allow"] = allowed
        return replacement
