"""The registry through the API: CRUD, allocate, import and export as YAML."""

from __future__ import annotations

import pytest

from console.foundation.models import AuditEntry
from ports.models import Project

pytestmark = pytest.mark.django_db

YAML = "application/yaml"


def test_it_creates_reads_updates_and_deletes_a_project(client, operator_user, bearer):
    headers = bearer(operator_user)
    created = client.post(
        "/api/v1/projects",
        {"name": "api", "preferred_port": 5000, "fallback_ports": [5001], "service_type": "flask"},
        content_type="application/json",
        headers=headers,
    )
    assert created.status_code == 201, created.content
    assert created.json()["status"] in {"running", "conflict", "stopped", "on-fallback"}
    listed = client.get("/api/v1/projects", headers=headers).json()
    assert listed["count"] == 1 and listed["items"][0]["name"] == "api"
    patched = client.patch(
        "/api/v1/projects/api",
        {"fallback_ports": [5001, 5002]},
        content_type="application/json",
        headers=headers,
    )
    assert patched.json()["fallback_ports"] == [5001, 5002]
    assert client.delete("/api/v1/projects/api", headers=headers).status_code == 204
    assert client.get("/api/v1/projects/api", headers=headers).status_code == 404
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"project.create", "project.update", "project.delete"} <= actions


@pytest.mark.parametrize(
    "body",
    [
        {"name": "api", "preferred_port": 0},
        {"name": "api", "preferred_port": 5000, "fallback_ports": [5000]},
        {"name": "Not A Slug", "preferred_port": 5000},
        {"name": "api", "preferred_port": "five"},
        {"preferred_port": 5000},
    ],
)
def test_it_refuses_bad_projects_with_422(client, operator_user, bearer, body):
    response = client.post(
        "/api/v1/projects", body, content_type="application/json", headers=bearer(operator_user)
    )
    assert response.status_code == 422 and "detail" in response.json()
    assert not Project.objects.exists()


def test_it_refuses_a_duplicate_name(client, operator_user, bearer):
    headers = bearer(operator_user)
    body = {"name": "api", "preferred_port": 5000}
    client.post("/api/v1/projects", body, content_type="application/json", headers=headers)
    again = client.post("/api/v1/projects", body, content_type="application/json", headers=headers)
    assert again.status_code == 422 and "exists" in again.json()["detail"]


def test_it_forbids_a_viewer_to_change_the_registry(client, viewer_user, bearer):
    response = client.post(
        "/api/v1/projects",
        {"name": "api", "preferred_port": 5000},
        content_type="application/json",
        headers=bearer(viewer_user),
    )
    assert response.status_code == 403


def test_it_allocates_through_the_api(client, operator_user, bearer, listening_child):
    child = listening_child()
    headers = bearer(operator_user)
    client.post(
        "/api/v1/projects",
        {"name": "api", "preferred_port": child.port, "fallback_ports": [child.port + 1]},
        content_type="application/json",
        headers=headers,
    )
    body = client.post("/api/v1/projects/api/allocate", headers=headers).json()
    assert body["port"] != child.port and body["skipped"][0].startswith(f"{child.port} held by")


def test_it_imports_raw_yaml_and_a_file_field_and_exports_yaml(client, operator_user, bearer):
    headers = bearer(operator_user)
    raw = client.post(
        "/api/v1/projects/import",
        "projects:\n  api: {preferred_port: 5000}\n",
        content_type=YAML,
        headers=headers,
    )
    assert raw.status_code == 200 and raw.json()["created"] == 1
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(".devports.yml", b"projects:\n  web: {preferred_port: 3000}\n")
    form = client.post("/api/v1/projects/import?replace=true", {"file": upload}, headers=headers)
    assert form.status_code == 200 and form.json()["removed"] == ["api"]
    exported = client.get("/api/v1/projects/export", headers=headers)
    assert exported["Content-Type"] == YAML
    assert exported.content.decode() == "projects:\n  web: {preferred_port: 3000}\n"


def test_it_refuses_a_bad_import_with_the_line(client, operator_user, bearer):
    response = client.post(
        "/api/v1/projects/import",
        "projects:\n  api: {preferred_port: 99999}\n",
        content_type=YAML,
        headers=bearer(operator_user),
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("line 2: api.preferred_port")


def test_it_refuses_an_unknown_content_type(client, operator_user, bearer):
    response = client.post(
        "/api/v1/projects/import",
        "{}",
        content_type="application/json",
        headers=bearer(operator_user),
    )
    assert response.status_code == 415


def test_it_explains_a_busy_port_in_the_api(client, viewer_user, bearer, listening_child):
    child = listening_child()
    body = client.get(f"/api/v1/ports/{child.port}", headers=bearer(viewer_user)).json()
    assert body["explanation"]["kind"] == "held"
    assert f"pid {child.pid}" in body["explanation"]["summary"]
