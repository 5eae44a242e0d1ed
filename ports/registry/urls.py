from __future__ import annotations

from django.urls import path

from ports.registry import views

app_name = "projects"
urlpatterns = [
    path("", views.project_list, name="list"),
    path("new/", views.project_edit, name="new"),
    path("export/", views.export, name="export"),
    path("import/", views.import_file, name="import"),
    path("<slug:name>/", views.project_detail, name="detail"),
    path("<slug:name>/edit/", views.project_edit, name="edit"),
    path("<slug:name>/delete/", views.project_delete, name="delete"),
    path("<slug:name>/allocate/", views.allocate, name="allocate"),
]
