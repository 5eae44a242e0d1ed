"""The Projects pages: the registry against the live sockets, with one-click fixes."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.foundation import safe_yaml
from console.foundation.htmx import HtmxHttpRequest
from console.foundation.roles import OPERATOR, has_role
from ports.models import Project
from ports.registry import devports
from ports.registry import operations as registry
from ports.registry.forms import ImportForm, ProjectForm


def _forbidden(request: HtmxHttpRequest, error: PermissionDenied) -> HttpResponse:
    messages.error(request, str(error))
    return redirect("projects:list")


@require_GET
def project_list(request: HtmxHttpRequest) -> HttpResponse:
    rows = registry.statuses()
    return render(
        request,
        "ports/projects.html",
        {
            "rows": rows,
            "can_edit": has_role(request.user, OPERATOR),
            "import_form": ImportForm(),
            "warnings": devports.shared_port_warnings(registry.spec_of(p) for p, _ in rows),
            "counts": {
                state.replace("-", "_"): sum(1 for _, status in rows if status.status == state)
                for state in (
                    registry.RUNNING,
                    registry.ON_FALLBACK,
                    registry.CONFLICT,
                    registry.STOPPED,
                )
            },
        },
    )


@require_GET
def project_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    project = get_object_or_404(Project, name=name)
    ((_, status),) = registry.statuses([project])
    return render(
        request,
        "ports/project_detail.html",
        {
            "project": project,
            "status": status,
            "can_edit": has_role(request.user, OPERATOR),
            "warnings": registry.warnings_for(registry.spec_of(project)),
        },
    )


@require_POST
def allocate(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """Which port should this project use now? Shown in place on the list and detail pages."""
    project = get_object_or_404(Project, name=name)
    allocation = registry.allocate(project)
    context = {"project": project, "allocation": allocation}
    if request.htmx:
        return render(request, "ports/project_detail.html#allocation", context)
    messages.info(request, f"{project.name}: use port {allocation.port}. {allocation.reason}")
    return redirect("projects:detail", name=project.name)


@require_http_methods(["GET", "POST"])
def project_edit(request: HtmxHttpRequest, name: str | None = None) -> HttpResponse:
    project = get_object_or_404(Project, name=name) if name else None
    # Bound on every POST, an empty one too: it gets its errors, not a blank form.
    data = request.POST if request.method == "POST" else None
    if project is not None:
        form = ProjectForm.for_project(project, data)
    else:
        form = ProjectForm(data, initial=_initial_from_query(request))
    if request.method == "POST" and form.is_valid():
        try:
            saved, warnings = registry.save_project(
                request.user, form.spec(), existing=project, request=request
            )
        except PermissionDenied as error:
            return _forbidden(request, error)
        except devports.RegistryError as error:
            form.add_problems(error.problems)
        else:
            messages.success(request, f"Saved {saved.name}.")
            for warning in warnings:
                messages.warning(request, f"Note: {warning}.")
            return redirect("projects:detail", name=saved.name)
    status = 422 if request.method == "POST" else 200
    context = {"form": form, "project": project, "can_edit": has_role(request.user, OPERATOR)}
    return render(request, "ports/project_form.html", context, status=status)


def _initial_from_query(request: HtmxHttpRequest) -> dict:
    # "Register this port" from a port's page arrives with ?preferred_port=5000.
    port = request.GET.get("preferred_port", "")
    return {"preferred_port": int(port)} if port.isdigit() and 0 < int(port) < 65536 else {}


@require_POST
def project_delete(request: HtmxHttpRequest, name: str) -> HttpResponse:
    project = get_object_or_404(Project, name=name)
    try:
        registry.delete_project(request.user, project, request=request)
    except PermissionDenied as error:
        return _forbidden(request, error)
    messages.success(request, f"Removed {name} from the registry.")
    return redirect("projects:list")


@require_GET
def export(request: HtmxHttpRequest) -> HttpResponse:
    response = HttpResponse(registry.export_registry(), content_type="application/yaml")
    response["Content-Disposition"] = 'attachment; filename=".devports.yml"'
    return response


@require_http_methods(["GET", "POST"])
def import_file(request: HtmxHttpRequest) -> HttpResponse:
    """GET: the import form. POST: import, or the form again (422) with every reason."""
    form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
    context: dict = {"form": form, "can_edit": has_role(request.user, OPERATOR), "problems": []}
    if request.method == "GET" or not form.is_valid():
        status = 422 if request.method == "POST" else 200
        return render(request, "ports/project_import.html", context, status=status)
    upload = form.cleaned_data["file"]
    too_large = upload is not None and safe_yaml.size_refusal(upload.size, devports.MAX_BYTES)
    if too_large:
        context["problems"] = [too_large]
        return render(request, "ports/project_import.html", context, status=413)
    text = upload.read() if upload is not None else form.cleaned_data["text"]
    try:
        result = registry.import_registry(
            request.user, text, replace=form.cleaned_data["replace"], request=request
        )
    except PermissionDenied as error:
        return _forbidden(request, error)
    except devports.RegistryError as error:
        context["problems"] = [str(problem) for problem in error.problems]
        return render(request, "ports/project_import.html", context, status=422)
    messages.success(request, _imported_sentence(result))
    for warning in result["warnings"]:
        messages.warning(request, f"Note: {warning}.")
    return redirect("projects:list")


def _imported_sentence(result: registry.ImportResult) -> str:
    parts = []
    if result["created"]:
        parts.append(f"{result['created']} new project{'s' if result['created'] != 1 else ''}")
    if result["updated"]:
        parts.append(f"{result['updated']} updated")
    if result["removed"]:
        parts.append(f"removed {', '.join(result['removed'])}")
    return "Imported: " + ", ".join(parts) + "."
