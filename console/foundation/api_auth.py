"""Who calls the JSON API: a bearer token, or the signed-in browser; and `Needs`, an endpoint's
least role, at the gate.

A request that carries an `Authorization` header is judged by it alone: a bad token is a 401
even when a session cookie rides along. Without that header the browser's session counts, so
the API docs' "Try it out" works for whoever is signed in: reads (GET, HEAD) from this console's
own pages, writes only with the CSRF header as well (Django's own check: the Origin, then the
`X-CSRFToken` header against the CSRF cookie). A session has its role's full scope; the gate
decides every right exactly as for a bearer.

Its own module so that every app's API can import it without importing the API that mounts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseForbidden
from django.middleware.csrf import CsrfViewMiddleware
from ninja.security import HttpBearer

from console.foundation import gate, tokens

if TYPE_CHECKING:
    from django.http import HttpRequest

# What a session may do without the CSRF header. OPTIONS and TRACE are safe to Django, but no
# endpoint answers them and a browser's preflight carries no cookie.
SESSION_READS = frozenset({"GET", "HEAD"})
# What a browser says about where a request comes from (Fetch Metadata): "none" is a person
# typing the address, "same-origin" this console's own pages. Another local port
# (a dev server on :5173) is "same-site", and SameSite=Strict cookies still ride on it.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})


class JWTBearer(HttpBearer):
    """Access tokens from the Authorization header only (`?token=` is never read); without the
    header, the signed-in browser's session (`browser_session`)."""

    def __call__(self, request: HttpRequest):
        if "Authorization" in request.headers:
            return super().__call__(request)
        return browser_session(request)

    def authenticate(self, request, token: str):
        try:
            user, claims = tokens.verify_bearer(token)
        except tokens.InvalidToken:
            return None
        request.user = user
        request.token_claims = claims
        request.token_scope = claims.get("scope") or "read"
        return user


class Needs(JWTBearer):
    """An endpoint's least role, decided by the gate before ninja parses the body.

    `auth=Needs(OPERATOR, "check.create")`: a viewer's POST is a 403 whatever its body holds,
    never a 422 that tells them how to phrase a request they may not make. Rights that depend
    on the body (a command check needs admin) are decided again by the service function. A
    bearer and a session pass the same gate.
    """

    def __init__(self, role: str, action: str):
        super().__init__()
        self.role, self.action = role, action

    def __call__(self, request: HttpRequest):
        user = super().__call__(request)
        if user is not None:
            gate.authorize(user, self.role, self.action, request=request)
        return user


def browser_session(request: HttpRequest):
    """The session's user when this request may ride on it; None when nobody is signed in.

    Raises PermissionDenied (a 403 that the audit middleware records with its reason) for a
    signed-in browser whose request comes from another page, or writes without the CSRF header.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    reason = _foreign_page(request)
    if reason is None and request.method not in SESSION_READS:
        reason = _csrf_failure(request)
    if reason is not None:
        # Read by console.security.middleware when it audits the 403.
        request.authorization_reason = reason  # type: ignore[attr-defined]
        raise PermissionDenied(reason)
    # No token caps a session: its holder's role decides (gate.refusal reads None as no cap).
    request.token_scope = None  # type: ignore[attr-defined]
    return user


def own_origin(request: HttpRequest) -> str:
    """This console's origin as a browser spells it in an `Origin` header."""
    return f"{request.scheme}://{request.get_host()}"


def _foreign_page(request: HttpRequest) -> str | None:
    origin = request.headers.get("Origin")
    site = request.headers.get("Sec-Fetch-Site")
    if (origin is not None and origin != own_origin(request)) or (
        site is not None and site not in OWN_FETCH_SITES
    ):
        return "the API takes a browser session only from this console's own pages"
    return None


class _DjangoCsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check as the middleware makes it (the Origin, then the token against the
    cookie), keeping its reason. The API's views are CSRF-exempt because a bearer needs no
    cookie; a session's write is checked here instead."""

    failure: str  # Django's reason, set when it rejects

    def __init__(self) -> None:
        super().__init__(_session_write)

    def _reject(self, request, reason):
        self.failure = reason
        return HttpResponseForbidden()

    def reason(self, request: HttpRequest) -> str | None:
        # The middleware skipped the exempt view; whatever marked this request, check it anew.
        request.csrf_processing_done = False  # type: ignore[attr-defined]
        refused = self.process_view(request, _session_write, (), {})
        return None if refused is None else self.failure


def _session_write(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    """The view the CSRF check is told it guards: one that is not exempt."""
    raise NotImplementedError


def _csrf_failure(request: HttpRequest) -> str | None:
    # Django also takes the token from a form field; the API asks for the header, which no
    # HTML form can send and which another origin cannot add without a CORS preflight.
    if not request.META.get(settings.CSRF_HEADER_NAME):
        return "a write with the browser session needs the X-CSRFToken header"
    failure = _DjangoCsrfCheck().reason(request)
    return None if failure is None else f"CSRF check failed: {failure}"
