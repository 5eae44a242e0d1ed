from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path
from django.views.generic import RedirectView

from console import views
from console.api import api

console_patterns = (
    [
        path("login/", views.ConsoleLoginView.as_view(), name="login"),
        path("login/link/<str:token>/", views.sign_in_with_link, name="sign-in-link"),
        path("logout/", LogoutView.as_view(), name="logout"),
        path("account/password/", views.set_password, name="password"),
    ],
    "console",
)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="ports:list"), name="home"),
    path("health", views.health, name="health"),
    path("", include(console_patterns)),
    path("ports/", include("ports.urls")),
    path("projects/", include("ports.project_urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]
