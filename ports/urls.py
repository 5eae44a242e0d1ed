from __future__ import annotations

from django.urls import path

from ports import views

app_name = "ports"
urlpatterns = [
    path("", views.port_list, name="list"),
    path("free/", views.free_port, name="free"),
    path("<int:port>/", views.port_detail, name="detail"),
    path("<int:port>/terminate/", views.terminate, name="terminate"),
    path("<int:port>/stop/", views.stop, name="stop"),
]
