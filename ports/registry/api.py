"""The port registry in the JSON API: projects CRUD, allocate, .devports.yml import and export."""

from __future__ import annotations

from typing import Literal

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from console.foundation import safe_yaml
from console.foundation.api_auth import Needs
from console.foundation.limits import PORT_MAX, PORT_MIN
from console.foundation.roles import OPERATOR
from ports.listing import listener_payload
from ports.models import Project
from ports.registry import devports
from ports.registry import operations as registry

# Deeper than any real list; a larger offset overflows SQLite's integer and would be a 500.
MAX_OFFSET = 1_000_000

router = Router(tags=["projects"])


class ProjectIn(Schema):
    name: str = Field(..., max_length=100)
    preferred_port: int = Field(..., ge=PORT_MIN, le=PORT_MAX)
    fallback_ports: list[int] = Field(default_factory=list, max_length=devports.MAX_FALLBACKS)
    service_type: str = Field("", max_length=50)
    working_directory: str = Field("", max_length=500)
    notes: str = Field("", max_length=5000)


class ProjectPatch(Schema):
    name: str | None = Field(None, max_length=100)
    preferred_port: int | None = Field(None, ge=PORT_MIN, le=PORT_MAX)
    fallback_ports: list[int] | None = Field(None, max_length=devports.MAX_FALLBACKS)
    service_type: str | None = Field(None, max_length=50)
    working_directory: str | None = Field(None, max_length=500)
    notes: str | None = Field(None, max_length=5000)


class ProjectOut(Schema):
    name: str
    preferred_port: int
    fallback_ports: list[int]
    service_type: str
    working_directory: str
    notes: str
    status: Literal["running", "on-fallback", "conflict", "stopped"]
    status_detail: str
    port: int | None
    holder: dict | None
    warnings: list[str] = []


class ProjectsOut(Schema):
    count: int
    items: list[ProjectOut]


class AllocationOut(Schema):
    port: int
    reason: str
    skipped: list[str]
    outside_registry: bool


class ImportOut(Schema):
    created: int
    updated: int
    removed: list[str]
    warnings: list[str]


def _out(project: Project, status: registry.ProjectStatus, warnings=()) -> dict:
    return {
        **registry.spec_of(project).__dict__,
        "status": status.status,
        "status_detail": status.message,
        "port": status.port,
        "holder": listener_payload(status.holder) if status.holder else None,
        "warnings": list(warnings),
    }


def _refused(error: devports.RegistryError) -> HttpError:
    return HttpError(422, str(error))


class Page(Schema):
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


@router.get("/projects", response=ProjectsOut)
def list_projects(request, page: Query[Page]):
    projects = list(Project.objects.all()[page.offset : page.offset + page.limit])
    return {
        "count": Project.objects.count(),
        "items": [_out(p, s) for p, s in registry.statuses(projects)],
    }


@router.post("/projects", response={201: ProjectOut}, auth=Needs(OPERATOR, "project.create"))
def create_project(request, body: ProjectIn):
    try:
        project, warnings = registry.save_project(
            request.auth,
            devports.ProjectSpec(**body.dict()),
            scope=request.token_scope,
            request=request,
        )
    except devports.RegistryError as error:
        raise _refused(error) from None
    return Status(201, _out(project, registry.statuses([project])[0][1], warnings))


# Declared before /projects/{name}: "export" is not a project name.
@router.get("/projects/export", response={200: None})
def export_projects(request):
    return HttpResponse(registry.export_registry(), content_type="application/yaml")


@router.post("/projects/import", response=ImportOut, auth=Needs(OPERATOR, "project.import"))
def import_projects(request, replace: bool = False):
    text = _uploaded_yaml(request)
    try:
        return registry.import_registry(
            request.auth, text, replace=replace, scope=request.token_scope, request=request
        )
    except devports.RegistryError as error:
        raise _refused(error) from None


def _uploaded_yaml(request) -> bytes:
    """The YAML as the raw body (application/yaml) or as a `file` form field."""
    if request.content_type.startswith("multipart/form-data"):
        upload = request.FILES.get("file")
        if upload is None:
            raise HttpError(422, "send the YAML as a 'file' form field")
        if too_large := safe_yaml.size_refusal(upload.size, devports.MAX_BYTES):
            raise HttpError(413, str(too_large))
        return upload.read()
    if request.content_type not in {
        "application/yaml",
        "application/x-yaml",
        "text/yaml",
        "text/plain",
    }:
        raise HttpError(415, "send Content-Type: application/yaml, or a multipart 'file' field")
    # Content-Length first: a huge body is refused before it is read into memory.
    declared = safe_yaml.declared_size(request.META.get("CONTENT_LENGTH"))
    if too_large := safe_yaml.size_refusal(declared, devports.MAX_BYTES) or (
        safe_yaml.size_refusal(len(request.body), devports.MAX_BYTES)
    ):
        raise HttpError(413, str(too_large))
    return request.body


@router.get("/projects/{name}", response=ProjectOut)
def get_project(request, name: str):
    project = get_object_or_404(Project, name=name)
    return _out(project, registry.statuses([project])[0][1])


@router.patch("/projects/{name}", response=ProjectOut, auth=Needs(OPERATOR, "project.update"))
def patch_project(request, name: str, body: ProjectPatch):
    project = get_object_or_404(Project, name=name)
    spec = registry.spec_of(project)
    for key, value in body.dict(exclude_unset=True).items():
        if value is None:
            raise HttpError(422, f"{key} cannot be null")
        setattr(spec, key, value)
    try:
        project, warnings = registry.save_project(
            request.auth, spec, existing=project, scope=request.token_scope, request=request
        )
    except devports.RegistryError as error:
        raise _refused(error) from None
    return _out(project, registry.statuses([project])[0][1], warnings)


@router.delete("/projects/{name}", response={204: None}, auth=Needs(OPERATOR, "project.delete"))
def delete_project(request, name: str):
    project = get_object_or_404(Project, name=name)
    registry.delete_project(request.auth, project, scope=request.token_scope, request=request)
    return Status(204, None)


@router.post("/projects/{name}/allocate", response=AllocationOut)
def allocate(request, name: str):
    project = get_object_or_404(Project, name=name)
    allocation = registry.allocate(project)
    return {
        "port": allocation.port,
        "reason": allocation.reason,
        "skipped": list(allocation.skipped),
        "outside_registry": allocation.outside_registry,
    }
