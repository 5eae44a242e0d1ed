"""The Health pages. One URL per screen: htmx requests get the partial, others the page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from console.foundation.access import require_role
from console.foundation.htmx import HtmxHttpRequest, render_partial_or_page
from console.foundation.roles import ADMIN, OPERATOR, has_role
from health import config, dashboard, operations, presenters, specs
from health.forms import ChannelForm, CheckForm, ImportForm, initial_for_port
from health.models import ADMIN_CHECK_TYPES, Alert, AlertChannel, AlertStatus, Check
from health.states import CheckState


def list_context(request: HtmxHttpRequest) -> dict:
    q = (request.GET.get("q") or "").strip()[:100]
    state = request.GET.get("state") or ""
    rows = dashboard.rows_for(list(dashboard.filtered(q, state)))
    return {
        "nav": "health",
        # Rows link to checks_url + id: reversing 500 URLs per render costs more than the rows.
        "checks_url": reverse("health:list"),
        "groups": dashboard.grouped(rows),
        "summary": dashboard.summary(),
        "q": q,
        "state": state if state in CheckState.values else "",
        "states": CheckState.values,
        "can_operate": has_role(request.user, OPERATOR),
        "can_admin": has_role(request.user, ADMIN),
    }


@require_GET
def check_list(request: HtmxHttpRequest) -> HttpResponse:
    return render_partial_or_page(
        request, "health/list.html", "check-groups", list_context(request)
    )


def _detail_context(request: HtmxHttpRequest, check: Check) -> dict:
    return dashboard.detail_context(request.user, check)


@require_GET
def check_detail(request: HtmxHttpRequest, check_id: int) -> HttpResponse:
    check = get_object_or_404(Check, id=check_id)
    return render(request, "health/detail.html", _detail_context(request, check))


def _act(request: HtmxHttpRequest, check_id: int, action, done: str) -> HttpResponse:
    check = get_object_or_404(Check, id=check_id)
    try:
        action(request.user, check, request=request)
    except PermissionDenied as error:
        if request.htmx:
            context = _detail_context(request, check) | {"error": str(error)}
            return render(request, "health/detail.html#check-detail", context, status=403)
        messages.error(request, str(error))
        return redirect("health:detail", check_id=check.id)
    check.refresh_from_db()
    if request.htmx:
        context = _detail_context(request, check) | {"notice": done}
        return render(request, "health/detail.html#check-detail", context)
    messages.success(request, done)
    return redirect("health:detail", check_id=check.id)


@require_POST
def run_now(request: HtmxHttpRequest, check_id: int) -> HttpResponse:
    return _act(request, check_id, operations.run_check, "Ran the check.")


@require_POST
def pause(request: HtmxHttpRequest, check_id: int) -> HttpResponse:
    return _act(request, check_id, operations.pause_check, "Paused: no runs until resumed.")


@require_POST
def resume(request: HtmxHttpRequest, check_id: int) -> HttpResponse:
    return _act(request, check_id, operations.resume_check, "Resumed.")


@require_POST
def delete(request: HtmxHttpRequest, check_id: int) -> HttpResponse:
    check = get_object_or_404(Check, id=check_id)
    try:
        operations.delete_check(request.user, check, request=request)
    except PermissionDenied as error:
        messages.error(request, str(error))
        return redirect("health:detail", check_id=check.id)
    messages.success(request, f"Deleted {check.name}.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("health:list"))
    return redirect("health:list")


def _form_page(request: HtmxHttpRequest, form: CheckForm, check: Check | None, status: int = 200):
    is_admin = has_role(request.user, ADMIN)
    can_operate = has_role(request.user, OPERATOR)
    context = {
        "nav": "health",
        "form": form,
        "check": check,
        "can_operate": can_operate,
        # A button the user cannot use is shown disabled, with the reason beside it.
        "can_save": can_operate
        and (check is None or check.type not in ADMIN_CHECK_TYPES or is_admin),
        "is_admin": is_admin,
        "commands_allowed": specs.command_checks_allowed(),
        "has_channels": AlertChannel.objects.exists(),
    }
    return render_partial_or_page(request, "health/form.html", "check-form", context, status)


@require_http_methods(["GET", "POST"])
def create(request: HtmxHttpRequest) -> HttpResponse:
    """The new-check form; `?port=&host=&service=&proto=` pre-fills it ("Monitor this port")."""
    if request.method == "GET":
        return _form_page(request, CheckForm(initial=initial_for_port(request.GET)), None)
    form = CheckForm(request.POST)
    if form.is_valid():
        try:
            check = operations.create_check(request.user, form.definition, request=request)
        except specs.InvalidCheck as error:
            form.mark_all(error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
            return _form_page(request, form, None, 403)
        else:
            messages.success(request, f"Created {check.name}; its first run starts within seconds.")
            return redirect("health:detail", check_id=check.id)
    return _form_page(request, form, None, 422)


def _reveal(request: HtmxHttpRequest) -> bool:
    return has_role(request.user, ADMIN)


@require_http_methods(["GET", "POST"])
def edit(request: HtmxHttpRequest, check_id: int) -> HttpResponse:
    check = get_object_or_404(Check, id=check_id)
    if request.method == "GET":
        return _form_page(request, CheckForm(instance=check, reveal=_reveal(request)), check)
    form = CheckForm(request.POST, instance=check, reveal=_reveal(request))
    if form.is_valid():
        definition = {k: v for k, v in form.definition.items() if k != "enabled"}
        try:
            operations.update_check(request.user, check, definition, request=request)
        except specs.InvalidCheck as error:
            form.mark_all(error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
            return _form_page(request, form, check, 403)
        else:
            messages.success(request, f"Saved {check.name}.")
            return redirect("health:detail", check_id=check.id)
    return _form_page(request, form, check, 422)


@require_http_methods(["GET", "POST"])
def import_file(request: HtmxHttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    context: dict = {"nav": "health", "form": form, "can_operate": has_role(request.user, OPERATOR)}
    status = 200
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload is not None and upload.size > config.max_bytes():
            raw: bytes | str = b"x" * (config.max_bytes() + 1)  # reported as too large below
        else:
            raw = upload.read() if upload is not None else form.cleaned_data["text"]
        try:
            summary = config.import_yaml(
                raw, request.user, request=request, replace=form.cleaned_data["replace"]
            )
        except config.ConfigError as error:
            context["error"], status = str(error), 422
        except PermissionDenied as error:
            context["error"], status = str(error), 403
        else:
            messages.success(
                request,
                f"Imported: {len(summary['created'])} created, {len(summary['updated'])} updated, "
                f"{len(summary['removed'])} removed, {len(summary['channels'])} alert channel(s).",
            )
            return redirect("health:list")
    return render_partial_or_page(request, "health/import.html", "import-result", context, status)


@require_GET
def export_file(request: HtmxHttpRequest) -> HttpResponse:
    text = config.export_for(request.user, request=request)
    response = HttpResponse(text, content_type="application/yaml")
    response["Content-Disposition"] = 'attachment; filename="healthcheck.yml"'
    # It can hold credentials: no browser or proxy cache keeps a copy.
    response["Cache-Control"] = "no-store"
    return response


def _alerts_context(request: HtmxHttpRequest, form: ChannelForm | None = None) -> dict:
    alerts = Alert.objects.select_related("channel").prefetch_related("attempt_log")
    check = None
    if (wanted := request.GET.get("check") or "").isdigit():
        check = Check.objects.filter(id=int(wanted)).first()
        alerts = alerts.filter(check_ref_id=int(wanted))
    can_admin = has_role(request.user, ADMIN)
    channels = AlertChannel.objects.annotate(named_by=Count("checks"))
    return {
        "nav": "health",
        "channels": [(channel, destination(channel, can_admin)) for channel in channels],
        "alerts": alerts[:50],
        "for_check": check,
        "form": form or ChannelForm(),
        "can_admin": can_admin,
    }


def destination(channel: AlertChannel, reveal: bool) -> str:
    """Where a channel sends, in a line; secrets (webhook URLs, keys) for admins only."""
    config = channel.config if reveal else presenters.redact_channel_config(channel.config)
    if channel.kind == "webhook":
        return str(config.get("url", ""))
    if channel.kind == "slack":
        where = config.get("channel") or "the webhook's own channel"
        return f"{where} via {config.get('webhook_url', '')}"
    if channel.kind == "email":
        recipients = config.get("recipients") or []
        return ", ".join(recipients) if isinstance(recipients, list) else str(recipients)
    return f"routing key {config.get('routing_key', '')}"


@require_http_methods(["GET", "POST"])
def alert_channels(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render_partial_or_page(
            request, "health/alerts.html", "alert-channels", _alerts_context(request)
        )
    form = ChannelForm(request.POST)
    status = 422
    if form.is_valid():
        try:
            channel = operations.create_channel(request.user, form.definition(), request=request)
        except specs.InvalidCheck as error:
            form.mark(error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
            status = 403
        else:
            messages.success(request, f"Added the {channel.kind} channel {channel.name}.")
            return redirect("health:alerts")
    return render_partial_or_page(
        request, "health/alerts.html", "alert-channels", _alerts_context(request, form), status
    )


@require_http_methods(["GET", "POST"])
@require_role(ADMIN, "alert_channel.update")
def alert_channel_edit(request: HtmxHttpRequest, channel_id: int) -> HttpResponse:
    channel = get_object_or_404(AlertChannel, id=channel_id)
    form = ChannelForm(request.POST or None, instance=channel)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                operations.update_channel(request.user, channel, form.definition(), request=request)
            except specs.InvalidCheck as error:
                form.mark(error)
            except PermissionDenied as error:
                form.add_error(None, str(error))
                status = 403
            else:
                messages.success(request, f"Saved the channel {channel.name}.")
                return redirect("health:alerts")
    context = {"nav": "health", "form": form, "channel": channel}
    return render(request, "health/channel_form.html", context, status=status)


@require_POST
def alert_channel_test(request: HtmxHttpRequest, channel_id: int) -> HttpResponse:
    channel = get_object_or_404(AlertChannel, id=channel_id)
    try:
        alert = operations.send_test_alert(request.user, channel, request=request)
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        if alert.status == AlertStatus.SENT:
            messages.success(request, f"Test alert sent through {channel.name}.")
        else:
            messages.error(request, f"Test alert through {channel.name} failed: {alert.last_error}")
    return redirect("health:alerts")


@require_POST
def alert_channel_delete(request: HtmxHttpRequest, channel_id: int) -> HttpResponse:
    channel = get_object_or_404(AlertChannel, id=channel_id)
    try:
        operations.delete_channel(request.user, channel, request=request)
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Deleted the channel {channel.name}.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("health:alerts"))
    return redirect("health:alerts")
