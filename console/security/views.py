"""The console's security pages: Security (posture, exposures, settings), Audit, Tokens, Users."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.foundation import audit, gate, runtime_settings, tokens
from console.foundation.access import SignedInRequest, require_role
from console.foundation.htmx import HtmxHttpRequest, render_partial_or_page
from console.foundation.models import AuditEntry, PersonalToken
from console.foundation.roles import ADMIN, OPERATOR, ROLES, role_of
from console.security import exposures, posture
from console.security.api import filter_audit
from console.security.first_run import sign_in_url
from console.security.forms import NewUserForm, PersonalTokenForm, RoleForm, SecuritySettingsForm
from console.security.signals import judge_password


@require_role(ADMIN, "security.page")
@require_http_methods(["GET", "POST"])
def security(request: HtmxHttpRequest) -> HttpResponse:
    row = runtime_settings.current()
    before = {field: getattr(row, field) for field in runtime_settings.EDITABLE}
    form = SecuritySettingsForm(request.POST or None, instance=row)
    # A refused form is marked beside its fields in the Settings card, not in a flash above.
    if request.method == "POST" and form.is_valid():
        form.save()
        changes = {
            field: [str(before[field]), str(form.cleaned_data[field])]
            for field in runtime_settings.EDITABLE
            if before[field] != form.cleaned_data[field]
        }
        if changes:
            audit.record(
                "security.settings", request=request, target=", ".join(changes), changes=changes
            )
        messages.success(request, "Security settings saved.")
        return redirect("console:security")
    audit_result = exposures.latest(refresh=request.GET.get("refresh") == "1")
    items = posture.assess()
    context = {
        "form": form,
        "items": items,
        "counts": {
            s: sum(1 for item in items if item.status == s) for s in ("pass", "warn", "fail")
        },
        "exposure_audit": audit_result,
        "fixed": posture.fixed_settings(),
    }
    return render(
        request,
        "console/security.html",
        context,
        status=200 if form.is_bound is False or form.is_valid() else 422,
    )


@require_GET
def exposure_badge(request: HtmxHttpRequest) -> HttpResponse:
    """The Ports page's badge (any signed-in user): counts and ports, the details are admin's."""
    return render(request, "console/exposure_badge.html", {"exposure_audit": exposures.latest()})


@require_role(ADMIN, "audit.page")
@require_GET
def audit_log(request: HtmxHttpRequest) -> HttpResponse:
    params = {
        key: request.GET.get(key, "").strip()
        for key in ("action", "user", "outcome", "q", "since", "until")
    }
    try:
        entries = filter_audit(params)
        entries.exists()
    except Exception:  # a malformed date from the address bar: show everything instead
        params["since"] = params["until"] = ""
        entries = filter_audit(params)
    page = Paginator(entries.select_related("user"), 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "params": params,
        "actions": AuditEntry.objects.order_by().values_list("action", flat=True).distinct()[:100],
        "query": "&".join(f"{k}={v}" for k, v in params.items() if v),
    }
    return render_partial_or_page(request, "console/audit.html", "audit-table", context)


@require_role(OPERATOR, "token.page")
@require_http_methods(["GET", "POST"])
def personal_tokens(request: SignedInRequest) -> HttpResponse:
    form = PersonalTokenForm(request.POST or None)
    created = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                record, raw = tokens.issue_personal(
                    request.user,
                    form.cleaned_data["name"],
                    form.cleaned_data["scopes"],
                    form.cleaned_data["expires_in_days"],
                )
            except ValueError as error:
                form.add_error(None, str(error))
                status = 422
            else:
                audit.record(
                    "token.create",
                    request=request,
                    target=f"personal token {record.id} {record.name!r}",
                    scopes=record.scopes,
                )
                created = {"record": record, "raw": raw}
                form = PersonalTokenForm()
        else:
            status = 422
    context = {
        "form": form,
        "created": created,
        "records": PersonalToken.objects.filter(user=request.user),
    }
    # The raw token is in this response only: never cached, never in a redirect's URL.
    response = render(request, "console/tokens.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_role(OPERATOR, "token.revoke")
@require_POST
def revoke_personal_token(request: SignedInRequest, token_id: int) -> HttpResponse:
    query = PersonalToken.objects.all()
    if not gate.allows(request.user, ADMIN, request=request):  # others' tokens are admin's
        query = query.filter(user=request.user)
    record = get_object_or_404(query, pk=token_id)
    tokens.revoke_personal(record)
    audit.record(
        "token.revoke", request=request, target=f"personal token {record.id} {record.name!r}"
    )
    messages.success(request, f"Token {record.name!r} revoked.")
    return redirect("console:tokens")


@require_role(ADMIN, "user.page")
@require_http_methods(["GET", "POST"])
def users(request: HtmxHttpRequest) -> HttpResponse:
    form = NewUserForm(request.POST or None)
    link = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            user = get_user_model().objects.create_user(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"] or None,
            )
            user.groups.set([Group.objects.get_or_create(name=form.cleaned_data["role"])[0]])
            if form.cleaned_data["password"]:
                judge_password(user, form.cleaned_data["password"])
            audit.record(
                "user.create",
                request=request,
                target=user.get_username(),
                role=form.cleaned_data["role"],
            )
            if not form.cleaned_data["password"]:
                link = sign_in_url(request.build_absolute_uri("/"), user)
            messages.success(request, f"User {user.get_username()!r} created.")
            form = NewUserForm()
        else:
            status = 422
    people = get_user_model().objects.order_by("username").prefetch_related("groups")
    context = {
        "form": form,
        "link": link,
        "people": [
            (person, role_of(person) if person.is_active else "inactive") for person in people
        ],
        "roles": ROLES,
    }
    response = render(request, "console/users.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_role(ADMIN, "user.change")
@require_POST
def change_user(request: HtmxHttpRequest, user_id: int) -> HttpResponse:
    person = get_object_or_404(get_user_model(), pk=user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role.")
        return redirect("console:users")
    if person == request.user and (
        form.cleaned_data["role"] != ADMIN or not form.cleaned_data["active"]
    ):
        messages.error(request, "You cannot demote or deactivate yourself: ask another admin.")
        return redirect("console:users")
    role = form.cleaned_data["role"]
    person.groups.set([Group.objects.get_or_create(name=role)[0]])
    if person.is_superuser and role != ADMIN:
        person.is_superuser = person.is_staff = False
    person.is_active = form.cleaned_data["active"]
    person.save()
    if not person.is_active:
        tokens.revoke_all_for(person)
    audit.record(
        "user.change",
        request=request,
        target=person.get_username(),
        role=role,
        active=person.is_active,
    )
    messages.success(
        request, f"{person.get_username()} is now {role if person.is_active else 'inactive'}."
    )
    return redirect("console:users")
