"""The JSON API (django-ninja): bearer JWT authentication, error shapes, the auth endpoints.

Every error is {"detail": ...}. Authentication failures all look the same (401) so a client can't
tell an expired token from a forged one.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import render
from ninja import NinjaAPI, Router, Schema, Status
from ninja.errors import AuthenticationError
from ninja.openapi.docs import DocsBase

from console.foundation import audit, gate, tokens
from console.foundation.api_auth import JWTBearer, own_origin
from console.foundation.roles import OPERATOR
from console.security import sign_in
from ports.errors import ActionError


def signed_in_or_bearer(view):
    """The spec and its docs page: for a signed-in browser or a script with a valid token."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or JWTBearer().authenticate(request, token) is None:
                return JsonResponse({"detail": "Not authenticated"}, status=401)
        return view(request, *args, **kwargs)

    return guarded


class ConsoleDocs(DocsBase):
    """Swagger UI inside the console's own frame (its navigation, its light and dark), from the
    copy django-ninja ships: no CDN, and the page's CSP (scripts from this origin) holds."""

    settings = {
        "layout": "BaseLayout",
        # Deep links put a link inside each operation's toggle button (axe: nested-interactive).
        "deepLinking": False,
        "displayRequestDuration": True,
        # Its highlighter's colours fail contrast on the dark code boxes; plain text does not.
        "syntaxHighlight": {"activated": False},
        # Swagger UI would otherwise fetch a badge from validator.swagger.io.
        "validatorUrl": None,
    }

    def render_page(self, request, api, **kwargs):
        openapi_url = self.get_openapi_url(api, kwargs)
        context = {
            "api": api,
            "openapi_url": openapi_url,
            "swagger_settings": {**self.settings, "url": openapi_url, **_try_it_out_for(request)},
        }
        return render(request, "console/api_docs.html", context)


def _try_it_out_for(request) -> dict:
    """A viewer may only read: the docs offer them Try it out on reads alone, rather than
    buttons whose every answer would be a 403."""
    if gate.allows(request.user, OPERATOR, request=request):
        return {}
    return {"supportedSubmitMethods": ["get", "head"]}


BEARER_SCHEME = "JWTBearer"
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An access token from POST /api/v1/auth/token, or a personal token. Signed "
    "in to the console, you need none here: Try it out uses the browser's session.",
}


class ConsoleAPI(NinjaAPI):
    """The NinjaAPI whose spec names one bearer scheme. `Needs` is a JWTBearer that also asks
    the gate, and ninja names a scheme after its class: the docs' Authorize dialog would ask
    for the same token twice."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schemes = schema.get("components", {}).get("securitySchemes")
        if schemes:
            schemes.pop("Needs", None)
            schemes[BEARER_SCHEME] = BEARER
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if "security" in operation:
                    operation["security"] = [
                        {BEARER_SCHEME: []} if "Needs" in need else need
                        for need in operation["security"]
                    ]
        return schema


api = ConsoleAPI(
    title="Portside API",
    version="1",
    description="Everything that listens on this machine, as JSON. Scripts authenticate with "
    "`POST /api/v1/auth/token`, then send `Authorization: Bearer <access>`. A signed-in browser "
    "may use its session instead (these docs' Try it out): reads as they are, writes with the "
    "`X-CSRFToken` header; a request with an `Authorization` header is judged by it alone.",
    auth=JWTBearer(),
    urls_namespace="api",
    docs=ConsoleDocs(),
    docs_decorator=signed_in_or_bearer,
)


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    return api.create_response(request, {"detail": "Not authenticated"}, status=401)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Forbidden"}, status=403)


@api.exception_handler(ActionError)
def _action_failed(request, exc: ActionError):
    return api.create_response(request, {"detail": str(exc)}, status=exc.status)


@api.exception_handler(ValueError)
def _bad_value(request, exc: ValueError):
    return api.create_response(request, {"detail": str(exc)}, status=422)


auth_router = Router(tags=["auth"])


class Credentials(Schema):
    username: str
    password: str


class RefreshIn(Schema):
    refresh: str


class TokenPair(Schema):
    access: str
    refresh: str
    token_type: str
    expires_in: int


class Detail(Schema):
    detail: str


class UnsupportedMediaType(Exception):
    """A 415: the body is not the JSON the endpoint reads."""


@api.exception_handler(UnsupportedMediaType)
def _unsupported(request, exc):
    return api.create_response(request, {"detail": str(exc)}, status=415)


def sign_in_request_guard(request) -> bool:
    """Before the body is parsed or any failure is counted: JSON from the console's own origin.

    A page on another local port (a dev server on :5173) can post `text/plain` cross-origin
    without a preflight; counting those as failed sign-ins would let it lock anyone out. Scripts
    send no Origin and pass.
    """
    if (request.content_type or "") != "application/json":
        raise UnsupportedMediaType("send the credentials as application/json")
    origin = request.headers.get("Origin")
    if origin is not None and origin != own_origin(request):
        raise PermissionDenied("sign-in is accepted only from this console's own pages")
    return True


@auth_router.post(
    "/token",
    auth=sign_in_request_guard,
    response={200: TokenPair, 401: Detail, 403: Detail, 415: Detail, 429: Detail},
)
def obtain_token(request, credentials: Credentials):
    # The same throttle and audit as the sign-in pages (console.sign_in).
    if lock := sign_in.refused_while_locked(request, credentials.username, "auth.token"):
        response = api.create_response(request, {"detail": lock.message}, status=429)
        response["Retry-After"] = str(lock.seconds)
        return response
    user = authenticate(request, username=credentials.username, password=credentials.password)
    if user is None:
        sign_in.failed(request, credentials.username, "auth.token")
        return Status(401, {"detail": "Invalid username or password"})
    sign_in.succeeded(request, user, credentials.password, "auth.token")
    return tokens.issue_pair(user)


@auth_router.post("/refresh", auth=None, response={200: TokenPair, 401: Detail})
def refresh_token(request, body: RefreshIn):
    try:
        user, pair = tokens.rotate(body.refresh)
    except tokens.InvalidToken:
        audit.record("auth.refresh", request=request, outcome="denied")
        return Status(401, {"detail": "Not authenticated"})
    audit.record("auth.refresh", request=request, user=user, target=user.get_username())
    return pair


@auth_router.post("/revoke", auth=None, response={204: None, 401: Detail})
def revoke_token(request, body: RefreshIn):
    try:
        tokens.revoke(body.refresh)
    except tokens.InvalidToken:
        return Status(401, {"detail": "Not authenticated"})
    audit.record("auth.revoke", request=request)
    return Status(204, None)


api.add_router("/auth", auth_router)
api.add_router("/auth", "console.security.api.tokens_router")
api.add_router("/", "console.security.api.router")
api.add_router("/", "ports.api.router")
api.add_router("/", "ports.registry.api.router")
api.add_router("/", "health.api.router")
api.add_router("/", "console.metrics.router")
