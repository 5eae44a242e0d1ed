"""The port pages (the list is ports/list_views.py). One URL per screen: an htmx request gets the
partial, anything else the page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import reswap, retarget

from console.foundation.htmx import HtmxHttpRequest, render_partial_or_page
from console.foundation.limits import PORT_MAX, PORT_MIN
from console.foundation.roles import OPERATOR, has_role
from ports import errors, free_ports, operations, server_stopping, stopping
from ports.forms import FreePortForm, StopForm, TerminateForm
from ports.listing import is_console
from ports.port_view import page_context
from ports.registry import operations as registry


def _detail_context(request: HtmxHttpRequest, port: int) -> dict:
    return page_context(port, can_operate=has_role(request.user, OPERATOR))


@require_GET
def port_detail(request: HtmxHttpRequest, port: int) -> HttpResponse:
    if not PORT_MIN <= port <= PORT_MAX:
        return render(request, "ports/detail.html", {"port": port, "invalid": True}, status=404)
    return render(request, "ports/detail.html", _detail_context(request, port))


@require_http_methods(["GET", "POST"])
def terminate(request: HtmxHttpRequest, port: int) -> HttpResponse:
    """GET: the confirmation, naming exactly what will be signalled. POST: do it."""
    form = TerminateForm(request.POST if request.method == "POST" else request.GET)
    context = _detail_context(request, port)
    if not form.is_valid():
        context.update(form=form, error="That request was incomplete: " + _form_errors(form))
        return render_partial_or_page(request, "ports/detail.html", "terminate-panel", context, 422)
    pid = form.cleaned_data["pid"]
    target = next((listener for listener in context["listeners"] if pid in listener.pids), None)
    server = context["servers"].get(target.inode) if target is not None else None
    context.update(
        form=form,
        target=target,
        target_holder=next((h for h in target.holders if h.pid == pid), None) if target else None,
        warnings=server_stopping.terminate_warnings(target, pid, server),
    )
    if target is None:
        context["error"] = f"pid {pid} no longer holds port {port}. The page below is current."
        return render_partial_or_page(request, "ports/detail.html", "terminate-panel", context, 409)
    if is_console(target):
        context["error"] = "That is this console's own process; stop it from its terminal."
        return render_partial_or_page(request, "ports/detail.html", "terminate-panel", context, 403)
    if request.method == "GET":
        return render_partial_or_page(request, "ports/detail.html", "terminate-panel", context)
    try:
        result = operations.terminate_for(
            request.user, port=port, request=request, **form.cleaned_data
        )
    except PermissionDenied as error:
        context["error"] = str(error)
        return render_partial_or_page(request, "ports/detail.html", "terminate-panel", context, 403)
    except errors.ActionError as error:
        context["error"] = str(error)
        return render_partial_or_page(
            request, "ports/detail.html", "terminate-panel", context, error.status
        )
    if not request.htmx:
        messages.success(request, _result_sentence(port, result))
        return redirect("ports:detail", port=port)
    # The holders changed: re-render the whole port section, not just the panel.
    context.update(
        _detail_context(request, port),
        result=result,
        result_sentence=_result_sentence(port, result),
    )
    response = render(request, "ports/detail.html#port-detail", context)
    return reswap(retarget(response, "#port-detail"), "outerHTML")


@require_http_methods(["GET", "POST"])
def stop(request: HtmxHttpRequest, port: int) -> HttpResponse:
    """GET: the plan (a dry run: each pid, its role and signal). POST: stop the server."""
    form = StopForm(request.POST if request.method == "POST" else request.GET)
    context = _detail_context(request, port)
    template = "ports/detail.html"
    if not form.is_valid():
        context.update(form=form, error="That request was incomplete: " + _form_errors(form))
        return render_partial_or_page(request, template, "terminate-panel", context, 422)
    context["stop_form"] = form
    try:
        result = operations.stop_for(
            request.user,
            port=port,
            request=request,
            dry_run=request.method == "GET",
            **form.cleaned_data,
        )
    except PermissionDenied as error:
        context["error"] = str(error)
        return render_partial_or_page(request, template, "terminate-panel", context, 403)
    except errors.ActionError as error:
        context["error"] = str(error)
        return render_partial_or_page(request, template, "terminate-panel", context, error.status)
    if request.method == "GET":
        context["stop_plan"] = result
        return render_partial_or_page(request, template, "terminate-panel", context)
    sentence = _stop_sentence(port, result)
    if not request.htmx:
        messages.success(request, sentence)
        return redirect("ports:detail", port=port)
    context.update(_detail_context(request, port), stop_result=result, result_sentence=sentence)
    response = render(request, "ports/detail.html#port-detail", context)
    return reswap(retarget(response, "#port-detail"), "outerHTML")


def _stop_sentence(port: int, result: server_stopping.StopResult) -> str:
    released = f"port {port} is free now" if result.released else f"port {port} is still held"
    pids = len(result.plan)
    return {
        "stopped": f"The server (pid {result.server_pid}, {pids} processes) exited after "
        f"SIGTERM; {released}.",
        "killed": f"The server (pid {result.server_pid}) was killed with SIGKILL; {released}.",
        "still-running": f"The server (pid {result.server_pid}) is still running; {released}.",
        "managed": "Not signalled: " + " ".join(result.warnings),
        "container-stopped": f"The container was stopped; {released}.",
        "dry-run": "Nothing was signalled.",
    }[result.outcome]


def _result_sentence(port: int, result: stopping.TerminationResult) -> str:
    released = f"port {port} is free now" if result.released else f"port {port} is still held"
    return {
        "terminated": f"pid {result.pid} exited after SIGTERM; {released}.",
        "killed": f"pid {result.pid} was killed with SIGKILL; {released}.",
        "still-running": f"pid {result.pid} is still running after SIGTERM; {released}. "
        "You can force it with SIGKILL.",
    }[result.outcome]


def _form_errors(form) -> str:
    """Every error, each after its field's label ("Pid: Enter a whole number.")."""
    return "; ".join(
        f"{form[field].label if field in form.fields else 'Form'}: {' '.join(errors)}"
        for field, errors in form.errors.items()
    )


@require_GET
def free_port(request: HtmxHttpRequest) -> HttpResponse:
    form = FreePortForm(request.GET or None)
    context: dict = {"form": form}
    status = 200
    if request.GET:
        if form.is_valid():
            try:
                scan = free_ports.scan_free_ports(
                    form.cleaned_data["near"],
                    count=form.cleaned_data["count"],
                    reserved=registry.reserved_ports(),
                )
                context.update(ports=scan.ports, skipped=scan.skipped, scan=scan)
            except (errors.ActionError, ValueError) as error:
                context["error"] = str(error)
                status = 409
        else:
            status = 422  # the form shows each error on its field
    return render_partial_or_page(request, "ports/free.html", "free-result", context, status)
