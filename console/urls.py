from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path
from django.views.generic import RedirectView

from console import views
from console.api import api
from console.security import sign_in_views
from console.security import views as security_views

console_patterns = (
    [
        path("login/", sign_in_views.ConsoleLoginView.as_view(), name="login"),
        path("login/link/<str:token>/", sign_in_views.sign_in_with_link, name="sign-in-link"),
        path("logout/", LogoutView.as_view(), name="logout"),
        path("account/password/", sign_in_views.set_password, name="password"),
        path("account/tokens/", security_views.personal_tokens, name="tokens"),
        path(
            "account/tokens/<int:token_id>/revoke/",
            security_views.revoke_personal_token,
            name="token-revoke",
        ),
        path("security/", security_views.security, name="security"),
        path("security/exposure-badge/", security_views.exposure_badge, name="exposure-badge"),
        path("audit/", security_views.audit_log, name="audit"),
        path("users/", security_views.users, name="users"),
        path("users/<int:user_id>/", security_views.change_user, name="user-change"),
    ],
    "console",
)

# Error pages in the console's frame (JSON under /api/); a 405 goes through
# error_pages.MethodNotAllowedPageMiddleware, as Django has no handler405.
handler403 = "console.error_pages.forbidden"
handler404 = "console.error_pages.not_found"
handler500 = "console.error_pages.server_error"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="ports:list"), name="home"),
    path("health", views.health, name="health"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("", include(console_patterns)),
    path("ports/", include("ports.urls")),
    path("projects/", include("ports.registry.urls")),
    path("checks/", include("health.urls")),
    path("api/v1/", api.urls),
    # Ahead of admin.site.urls: the admin login goes through the console's sign-in throttle.
    path("admin/login/", sign_in_views.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
]
