from __future__ import annotations

from django.urls import path

from health import views

app_name = "health"
urlpatterns = [
    path("", views.check_list, name="list"),
    path("new/", views.create, name="create"),
    path("import/", views.import_file, name="import"),
    path("export/", views.export_file, name="export"),
    path("alerts/", views.alert_channels, name="alerts"),
    path("alerts/<int:channel_id>/edit/", views.alert_channel_edit, name="alert-edit"),
    path("alerts/<int:channel_id>/test/", views.alert_channel_test, name="alert-test"),
    path("alerts/<int:channel_id>/delete/", views.alert_channel_delete, name="alert-delete"),
    path("<int:check_id>/", views.check_detail, name="detail"),
    path("<int:check_id>/edit/", views.edit, name="edit"),
    path("<int:check_id>/run/", views.run_now, name="run"),
    path("<int:check_id>/pause/", views.pause, name="pause"),
    path("<int:check_id>/resume/", views.resume, name="resume"),
    path("<int:check_id>/delete/", views.delete, name="delete"),
]
