from __future__ import annotations

from django.urls import path

from ports import list_views, views

app_name = "ports"
urlpatterns = [
    path("", list_views.port_list, name="list"),
    path("list-preferences/", list_views.list_preferences, name="list-preferences"),
    path("free/", views.free_port, name="free"),
    path("<int:port>/", views.port_detail, name="detail"),
    path("<int:port>/terminate/", views.terminate, name="terminate"),
    path("<int:port>/stop/", views.stop, name="stop"),
]
