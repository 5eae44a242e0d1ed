"""The network allowlist and the audit of every refused request."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from console import audit
from console.security import runtime_settings


class AllowedNetworksMiddleware:
    """403 for a client outside the allowlist (CONSOLE_ALLOWED_NETWORKS or the Security page).

    Loopback always passes, so a bad allowlist can be repaired from the machine itself.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if not runtime_settings.address_allowed(audit.client_address(request)):
            request.authorization_reason = "network not allowed"
            return JsonResponse(
                {"detail": "Your network is not allowed to reach this console"}, status=403
            )
        return self.get_response(request)


class AuthorizationAuditMiddleware:
    """One audit entry for every 401 and 403 that no role check has recorded already.

    Outside the CSRF, login and allowlist middleware, so their refusals are recorded too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        response = self.get_response(request)
        if response.status_code in (401, 403) and not getattr(
            request, "authorization_audited", False
        ):
            user = getattr(request, "user", None)
            audit.record(
                "authz.denied" if response.status_code == 403 else "authz.unauthenticated",
                request=request,
                user=user if user is not None and user.is_authenticated else None,
                target=f"{request.method} {request.path}"[:255],
                outcome=str(response.status_code),
                reason=getattr(request, "authorization_reason", ""),
            )
        return response
