"""The project port registry as users change it, and each project against the live sockets.

Pages, API and the `devports` command call these functions: roles and the audit log are
enforced here once. The file format lives in ports.devports, the bind tests in ports.free_ports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from django.db import transaction

from console.foundation import audit, gate
from console.foundation.roles import OPERATOR
from ports import free_ports, inventory
from ports.inventory.diagnosis import ProjectOf
from ports.inventory.records import Listener, Snapshot
from ports.models import Project
from ports.registry import devports

if TYPE_CHECKING:
    from django.http import HttpRequest

    from console.foundation.gate import AnyUser

RUNNING, ON_FALLBACK, CONFLICT, STOPPED = "running", "on-fallback", "conflict", "stopped"


class ImportResult(TypedDict):
    """What an import changed, and the shared ports the registry now has."""

    created: int
    updated: int
    removed: list[str]
    warnings: list[str]


@dataclass
class ProjectStatus:
    status: str
    port: int | None  # where it runs, or the contested preferred port
    holder: Listener | None  # who holds that port
    message: str


def spec_of(project: Project) -> devports.ProjectSpec:
    return devports.ProjectSpec(
        name=project.name,
        preferred_port=project.preferred_port,
        fallback_ports=list(project.fallback_ports),
        service_type=project.service_type,
        working_directory=project.working_directory,
        notes=project.notes,
    )


def _tcp_holder(snapshot: Snapshot, port: int) -> Listener | None:
    return next((each for each in snapshot.on_port(port) if each.proto == "tcp"), None)


def is_own_process(project: Project, listener: Listener) -> bool:
    """Is this the project's process? By its working directory when the project names one."""
    process = listener.process
    if process is None:
        return False
    directory = project.working_directory.rstrip("/")
    if not directory:
        return True  # nothing to tell them apart: whoever holds the project's port is it
    cwd = (process.cwd or "").rstrip("/")
    return cwd == directory or cwd.startswith(directory + "/") or directory in process.cmdline


def status_of(project: Project, snapshot: Snapshot) -> ProjectStatus:
    preferred = _tcp_holder(snapshot, project.preferred_port)
    if preferred is not None and is_own_process(project, preferred):
        return ProjectStatus(
            RUNNING,
            project.preferred_port,
            preferred,
            f"running on its preferred port {project.preferred_port}",
        )
    for port in project.fallback_ports:
        holder = _tcp_holder(snapshot, port)
        if (
            holder is not None
            and holder.process
            and project.working_directory
            and is_own_process(project, holder)
        ):
            return ProjectStatus(ON_FALLBACK, port, holder, f"running on fallback port {port}")
    if preferred is not None:
        who = (
            f"{preferred.process.name} (pid {preferred.pid})"
            if preferred.process
            else f"a process of uid {preferred.uid}"
        )
        return ProjectStatus(
            CONFLICT,
            project.preferred_port,
            preferred,
            f"port {project.preferred_port} is held by {who}",
        )
    return ProjectStatus(STOPPED, None, None, "not running")


def statuses(
    projects: Iterable[Project] | None = None, snapshot: Snapshot | None = None
) -> list[tuple[Project, ProjectStatus]]:
    """[(project, its status)] against one snapshot."""
    snapshot = snapshot or inventory.snapshot()
    projects = list(projects if projects is not None else Project.objects.all())
    return [(project, status_of(project, snapshot)) for project in projects]


def project_matcher(projects: Iterable[Project] | None = None) -> ProjectOf:
    """listener -> the name of the project whose process it is (for the ports list and API)."""
    projects = list(projects if projects is not None else Project.objects.all())
    by_port: dict[int, list[Project]] = {}
    for project in projects:
        for port in project.ports:
            by_port.setdefault(port, []).append(project)

    def project_of(listener: Listener) -> str | None:
        for project in by_port.get(listener.port, ()):
            if is_own_process(project, listener):
                return project.name
        return None

    return project_of


def reserved_ports(excluding: str | None = None) -> dict[int, str]:
    """port -> project name, for every port a project lists (its own ports left out)."""
    reserved: dict[int, str] = {}
    for project in Project.objects.exclude(name=excluding or ""):
        for port in project.ports:
            reserved.setdefault(port, project.name)
    return reserved


def allocate(project: Project, snapshot: Snapshot | None = None) -> free_ports.Allocation:
    return free_ports.allocate(
        project.name,
        project.ports,
        reserved_by_others=reserved_ports(excluding=project.name),
        snapshot=snapshot,
    )


def warnings_for(spec: devports.ProjectSpec) -> list[str]:
    others = [spec_of(p) for p in Project.objects.exclude(name=spec.name)]
    return [w for w in devports.shared_port_warnings([spec, *others]) if spec.name in w]


def _with_spec(project: Project, spec: devports.ProjectSpec) -> Project:
    """The project's fields set from a validated spec (not saved)."""
    for name in devports.SPEC_FIELDS:
        setattr(project, name, getattr(spec, name))
    return project


def _require_operator(
    user: AnyUser,
    scope: str | None,
    request: HttpRequest | None,
    action: str,
    target: str,
) -> None:
    gate.authorize(user, OPERATOR, action, target=target, scope=scope, request=request)


def save_project(
    user: AnyUser,
    spec: devports.ProjectSpec,
    *,
    existing: Project | None = None,
    scope: str | None = None,
    request: HttpRequest | None = None,
) -> tuple[Project, list[str]]:
    """Create or update one project; returns it with any shared-port warnings."""
    action = "project.update" if existing else "project.create"
    _require_operator(user, scope, request, action, spec.name)
    if problems := devports.validate_spec(spec):
        raise devports.RegistryError(problems)
    clash = Project.objects.filter(name=spec.name)
    if existing is not None:
        clash = clash.exclude(pk=existing.pk)
    if clash.exists():
        raise devports.RegistryError(
            [devports.Problem("a project with this name exists", spec.name, "name")]
        )
    project = _with_spec(existing or Project(), spec)
    project.save()
    audit.record(action, request=request, user=user, target=spec.name, ports=spec.ports)
    return project, warnings_for(spec)


def delete_project(
    user: AnyUser,
    project: Project,
    *,
    scope: str | None = None,
    request: HttpRequest | None = None,
) -> None:
    _require_operator(user, scope, request, "project.delete", project.name)
    project.delete()
    audit.record("project.delete", request=request, user=user, target=project.name)


def import_registry(
    user: AnyUser,
    text: str | bytes,
    *,
    replace: bool = False,
    scope: str | None = None,
    request: HttpRequest | None = None,
) -> ImportResult:
    """All or nothing: every project is valid or none is written. Merges by name unless
    `replace`, which also removes projects the file does not list. A file that lists no
    project is refused: it would import nothing, or with `replace` remove every project."""
    _require_operator(user, scope, request, "project.import", ".devports.yml")
    specs = devports.parse(text)
    if not specs:
        raise devports.RegistryError([devports.Problem(devports.NO_PROJECTS)])
    names = [spec.name for spec in specs]
    with transaction.atomic():
        existing = {p.name: p for p in Project.objects.select_for_update()}
        removed = sorted(set(existing) - set(names)) if replace else []
        Project.objects.filter(name__in=removed).delete()
        created = updated = 0
        for spec in specs:
            project = existing.get(spec.name) or Project(name=spec.name)
            created += project.pk is None
            updated += project.pk is not None
            _with_spec(project, spec).save()
    kept = [spec_of(p) for p in Project.objects.all()]
    result = ImportResult(
        created=created,
        updated=updated,
        removed=removed,
        warnings=devports.shared_port_warnings(kept),
    )
    audit.record(
        "project.import",
        request=request,
        user=user,
        target=".devports.yml",
        replace=replace,
        created=created,
        updated=updated,
        removed=removed,
    )
    return result


def export_registry() -> str:
    return devports.dump(spec_of(p) for p in Project.objects.all())
