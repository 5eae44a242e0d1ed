"""The network allowlist and the audit of every refused request."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from console.foundation import audit, runtime_settings
from console.foundation.secret_paths import redact_path


class AllowedNetworksMiddleware:
    """403 for a client outside the allowlist (CONSOLE_ALLOWED_NETWORKS or the Security page).

    Loopback always passes, so a bad allowlist can be repaired from the machine itself.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if not runtime_settings.address_allowed(audit.client_address(request)):
            # A flag of this project's on the request, which HttpRequest does not declare.
            request.authorization_reason = "network not allowed"  # type: ignore[attr-defined]
            return JsonResponse(
                {"detail": "Your network is not allowed to reach this console"}, status=403
            )
        return self.get_response(request)


class AuthorizationAuditMiddleware:
    """An audit entry for every 401 and 403 that no role check has recorded already.

    Outside the CSRF, login and allowlist middleware, so their refusals are recorded too. An
    anonymous client's refusals are folded into one row per address, path and minute.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        response = self.get_response(request)
        if response.status_code in (401, 403) and not getattr(
            request, "authorization_audited", False
        ):
            action = "authz.denied" if response.status_code == 403 else "authz.unauthenticated"
            target = f"{request.method} {redact_path(request.path)}"
            reason = getattr(request, "authorization_reason", "")
            user = _signed_in(request)
            if user is None:
                # Nobody to blame but an address: counted per address, path and minute.
                audit.record_refusal_folded(
                    action,
                    request=request,
                    target=target,
                    outcome=str(response.status_code),
                    reason=reason,
                )
            else:
                audit.record(
                    action,
                    request=request,
                    user=user,
                    target=target,
                    outcome=str(response.status_code),
                    reason=reason,
                )
        return response


def _signed_in(request: HttpRequest):
    """The session's user or the API's bearer (`request.auth`), if either is signed in."""
    for user in (getattr(request, "auth", None), getattr(request, "user", None)):
        if user is not None and getattr(user, "is_authenticated", False):
            return user
    return None
