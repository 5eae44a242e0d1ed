"""Sign-in (password or one-time link) and password setting."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from console.foundation import audit
from console.foundation.access import SignedInRequest
from console.security.forms import ConsolePasswordChangeForm, ConsoleSetPasswordForm
from console.security.models import SignInLink
from console.security.sign_in import ConsoleSignInForm, with_lock_status


class ConsoleLoginView(LoginView):
    """The throttle and audit live in the form (console.sign_in), shared with the admin site."""

    template_name = "console/login.html"
    authentication_form = ConsoleSignInForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        return with_lock_status(super().form_invalid(form), form.lock)


@login_not_required
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin site's own login (its view, template and AdminSignInForm, set in console/admin.py),
    answering 429 with Retry-After while locked, as the console's page does."""
    response = admin.site.login(request)
    form = (getattr(response, "context_data", None) or {}).get("form")
    return with_lock_status(response, getattr(form, "lock", None))


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def sign_in_with_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button, POST signs in: link previewers and prefetchers must not use it up."""
    link = SignInLink.find_usable(token)
    if link is None:
        return render(request, "console/sign_in_link.html", {"invalid": True}, status=410)
    if request.method == "GET":
        return render(request, "console/sign_in_link.html", {"link_user": link.user})
    if not link.consume():
        return render(request, "console/sign_in_link.html", {"invalid": True}, status=410)
    login(request, link.user, backend="django.contrib.auth.backends.ModelBackend")
    audit.record(
        "auth.login",
        request=request,
        user=link.user,
        target=link.user.get_username(),
        via="sign-in link",
    )
    if not link.user.has_usable_password():
        messages.info(request, "Signed in. Set a password so you can sign in again later.")
        return redirect("console:password")
    return redirect("ports:list")


@require_http_methods(["GET", "POST"])
def set_password(request: SignedInRequest) -> HttpResponse:
    # An account made by the first run has no password yet, so it cannot be asked for the old one.
    form_class = (
        ConsolePasswordChangeForm if request.user.has_usable_password() else ConsoleSetPasswordForm
    )
    form = form_class(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        update_session_auth_hash(request, form.user)
        audit.record("auth.password", request=request, target=request.user.get_username())
        messages.success(request, "Password saved.")
        return redirect("ports:list")
    return render(request, "console/password.html", {"form": form})
