"""The security app's API: personal tokens, security posture, exposures, settings, the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status

from console.foundation import audit, gate, runtime_settings, tokens
from console.foundation.api_auth import Needs
from console.foundation.models import AuditEntry, PersonalToken
from console.foundation.roles import ADMIN, OPERATOR
from console.security import exposures, posture

tokens_router = Router(tags=["auth"])
router = Router(tags=["security"])


class Detail(Schema):
    detail: str


class Invalid(Schema):
    """422: our own checks say why in words; ninja's validation lists the fields."""

    detail: str | list[dict]


class PersonalTokenIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    scopes: list[Literal["read", "operate", "admin"]] = Field(..., min_length=1, max_length=3)
    expires_in_days: int = Field(30, ge=1, le=365)


class PersonalTokenOut(Schema):
    id: int
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool


class PersonalTokenCreated(PersonalTokenOut):
    token: str


class PersonalTokensOut(Schema):
    count: int
    items: list[PersonalTokenOut]


def _token_payload(record: PersonalToken) -> dict:
    return {
        "id": record.id,
        "name": record.name,
        "scopes": record.scopes,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used_at": record.last_used_at,
        "revoked_at": record.revoked_at,
        "active": record.active,
    }


class Page(Schema):
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=1_000_000)  # SQLite overflows on huge offsets: a 500


# Reading or managing tokens is for their owner, and a viewer's session cannot: a viewer who
# could mint tokens could hand its access to a script nobody reviewed.
@tokens_router.get("/tokens", response=PersonalTokensOut, auth=Needs(OPERATOR, "token.list"))
def list_tokens(request, page: Query[Page]):
    records = PersonalToken.objects.filter(user=request.auth)
    chosen = records[page.offset : page.offset + page.limit]
    return {"count": records.count(), "items": [_token_payload(record) for record in chosen]}


@tokens_router.post(
    "/tokens",
    response={201: PersonalTokenCreated, 422: Invalid},
    auth=Needs(OPERATOR, "token.create"),
)
def create_token(request, body: PersonalTokenIn):
    # A token never carries more than the request that made it.
    scope_cap = getattr(request, "token_scope", None)
    if scope_cap and scope_cap != "admin" and "admin" in body.scopes:
        gate.authorize(request.auth, ADMIN, "token.create", request=request)
    record, raw = tokens.issue_personal(request.auth, body.name, body.scopes, body.expires_in_days)
    audit.record(
        "token.create",
        request=request,
        target=f"personal token {record.id} {record.name!r}",
        scopes=record.scopes,
        days=body.expires_in_days,
    )
    return Status(201, {**_token_payload(record), "token": raw})


@tokens_router.delete(
    "/tokens/{token_id}", response={204: None, 404: Detail}, auth=Needs(OPERATOR, "token.revoke")
)
def delete_token(request, token_id: int):
    query = PersonalToken.objects.all()
    full_scope = getattr(request, "token_scope", None) in (None, "admin")  # None: a session
    if not posture._is_admin(request.auth) or not full_scope:
        query = query.filter(user=request.auth)  # an admin may revoke anyone's
    record = get_object_or_404(query, pk=token_id)
    tokens.revoke_personal(record)
    audit.record(
        "token.revoke", request=request, target=f"personal token {record.id} {record.name!r}"
    )
    return Status(204, None)


class PostureItemOut(Schema):
    key: str
    status: Literal["pass", "warn", "fail"]
    title: str
    detail: str
    fix: str


class PostureOut(Schema):
    summary: dict[str, int]
    items: list[PostureItemOut]


@router.get("/security/posture", response=PostureOut, auth=Needs(ADMIN, "security.posture"))
def security_posture(request):
    items = [item.as_dict() for item in posture.assess()]
    summary = {
        status: sum(1 for i in items if i["status"] == status)
        for status in ("pass", "warn", "fail")
    }
    return {"summary": summary, "items": items}


class FindingOut(Schema):
    port: int
    proto: str
    address: str
    exposure: str
    pid: int | None
    process: str
    kind: str
    severity: Literal["danger", "warn"]
    risk: str
    fix: str
    probed: bool


class ExposuresOut(Schema):
    checked_at: float
    duration_ms: float
    probed: int
    count: int
    items: list[FindingOut]


class ExposureQuery(Schema):
    refresh: bool = False


@router.get("/security/exposures", response=ExposuresOut, auth=Needs(ADMIN, "security.exposures"))
def security_exposures(request, query: Query[ExposureQuery]):
    result = exposures.latest(refresh=query.refresh)
    return {
        "checked_at": result.checked_at,
        "duration_ms": result.duration_ms,
        "probed": result.probed,
        "count": len(result.findings),
        "items": [finding.as_dict() for finding in result.findings],
    }


class SettingsOut(Schema):
    access_token_minutes: int
    refresh_token_days: int
    personal_token_max_days: int
    allowed_networks: str
    check_networks: str
    command_checks: bool
    lockout_failures: int
    lockout_username_failures: int
    lockout_minutes: int
    fixed: dict[str, str]


class SettingsPatch(Schema):
    access_token_minutes: int | None = Field(None, ge=1, le=60)
    refresh_token_days: int | None = Field(None, ge=1, le=90)
    personal_token_max_days: int | None = Field(None, ge=1, le=365)
    allowed_networks: str | None = Field(None, max_length=4000)
    # Where checks may connect besides this machine; see health.outbound.
    check_networks: str | None = Field(None, max_length=4000)
    command_checks: bool | None = None
    lockout_failures: int | None = Field(None, ge=3, le=100)
    lockout_username_failures: int | None = Field(None, ge=5, le=1000)
    lockout_minutes: int | None = Field(None, ge=1, le=1440)


def _settings_payload() -> dict:
    row = runtime_settings.current()
    return {
        **{field: getattr(row, field) for field in runtime_settings.EDITABLE},
        "fixed": dict(posture.fixed_settings()),
    }


@router.get("/security/settings", response=SettingsOut, auth=Needs(ADMIN, "security.settings"))
def get_security_settings(request):
    return _settings_payload()


@router.patch(
    "/security/settings",
    response={200: SettingsOut, 422: Invalid},
    auth=Needs(ADMIN, "security.settings"),
)
def patch_security_settings(request, body: SettingsPatch):
    values = body.dict(exclude_unset=True)
    try:
        _row, changes = runtime_settings.update(values)
    except ValueError as error:
        return Status(422, {"detail": str(error)})
    if changes:
        audit.record(
            "security.settings",
            request=request,
            target=", ".join(changes),
            changes={field: [str(old), str(new)] for field, (old, new) in changes.items()},
        )
    return _settings_payload()


class AuditQuery(Page):
    action: str | None = Field(None, max_length=64)
    user: str | None = Field(None, max_length=150)
    outcome: str | None = Field(None, max_length=32)
    q: str | None = Field(None, max_length=200)
    since: datetime | None = None
    until: datetime | None = None


class AuditEntryOut(Schema):
    id: int
    at: datetime
    username: str
    address: str | None
    action: str
    target: str
    outcome: str
    detail: dict
    count: int  # refusals of one anonymous address, path and minute share a row


class AuditOut(Schema):
    count: int
    items: list[AuditEntryOut]


def filter_audit(params: Mapping[str, str]) -> QuerySet[AuditEntry]:
    """The audit entries matching the page's or the API's filters (same names in both)."""
    entries = AuditEntry.objects.all()
    if params.get("action"):
        entries = entries.filter(action__startswith=params["action"])
    if params.get("user"):
        entries = entries.filter(username=params["user"])
    if params.get("outcome"):
        entries = entries.filter(outcome=params["outcome"])
    if params.get("q"):
        entries = entries.filter(target__icontains=params["q"])
    if params.get("since"):
        entries = entries.filter(at__gte=params["since"])
    if params.get("until"):
        entries = entries.filter(at__lte=params["until"])
    return entries


@router.get("/audit", response=AuditOut, auth=Needs(ADMIN, "audit.read"))
def list_audit(request, query: Query[AuditQuery]):
    entries = filter_audit(query.dict())
    page = entries[query.offset : query.offset + query.limit]
    return {
        "count": entries.count(),
        "items": [
            {
                "id": entry.id,
                "at": entry.at,
                "username": entry.username,
                "address": entry.address,
                "action": entry.action,
                "target": entry.target,
                "outcome": entry.outcome,
                "detail": entry.detail if isinstance(entry.detail, dict) else {},
                "count": entry.count,
            }
            for entry in page
        ],
    }
