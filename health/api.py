"""Health in the JSON API: checks, results, import/export, alert channels and log, metrics."""

from __future__ import annotations

from typing import Literal

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Field, Path, Query, Router, Schema, Status

from console.foundation import gate, safe_yaml
from console.foundation.api_auth import Needs
from console.foundation.roles import ADMIN, OPERATOR
from health import config, operations, storage
from health.models import Alert, AlertChannel, AlertStatus, Check, Result
from health.presenters import check_payload, redact_channel_config
from health.states import CheckState

router = Router(tags=["health"])

# Beyond these, SQLite's 64-bit integers overflow: a 422, not a 500.
MAX_OFFSET = 10_000_000
CheckId = Path(..., ge=1, le=2**62, description="a check's id")
ChannelId = Path(..., ge=1, le=2**62, description="an alert channel's id")

CheckType = Literal["http", "tcp", "redis", "query", "command"]


class CheckIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    service: str = Field("", max_length=100)
    type: CheckType
    target: dict = Field(default_factory=dict)
    interval_s: int = Field(30, ge=1, le=86400)
    timeout_s: float | None = Field(
        None, gt=0, le=86400, description="seconds; omitted: 5, or 80% of a shorter interval"
    )
    warn_ms: int | None = Field(None, ge=0)
    crit_ms: int | None = Field(None, ge=0)
    failures_before_down: int = Field(2, ge=1, le=100)
    successes_before_up: int = Field(1, ge=1, le=100)
    enabled: bool = True
    channels: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="alert channel names; empty: every enabled channel",
    )


class CheckPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    service: str | None = Field(None, max_length=100)
    type: CheckType | None = None
    target: dict | None = None
    interval_s: int | None = Field(None, ge=1, le=86400)
    timeout_s: float | None = Field(None, gt=0, le=86400)
    warn_ms: int | None = Field(None, ge=0)
    crit_ms: int | None = Field(None, ge=0)
    failures_before_down: int | None = Field(None, ge=1, le=100)
    successes_before_up: int | None = Field(None, ge=1, le=100)
    enabled: bool | None = None
    channels: list[str] | None = Field(
        None, max_length=100, description="alert channel names; empty: every enabled channel"
    )


class ResultOut(Schema):
    at: str
    outcome: str
    latency_ms: float
    detail: str
    answered: bool | None = Field(
        None, description="false: the run failed and latency_ms is how long failing took"
    )


class CheckOut(Schema):
    id: int
    name: str
    service: str
    type: str
    target: dict
    interval_s: int
    timeout_s: float
    warn_ms: int | None
    crit_ms: int | None
    failures_before_down: int
    successes_before_up: int
    enabled: bool
    channels: list[str]
    state: CheckState
    state_since: str
    last_result: ResultOut | None
    uptime: dict[str, float | None]


class ChecksOut(Schema):
    items: list[CheckOut]
    count: int


class CheckFilters(Schema):
    service: str | None = Field(None, max_length=100)
    state: CheckState | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class Page(Schema):
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class ResultsOut(Schema):
    items: list[ResultOut]
    count: int


class Detail(Schema):
    detail: str


class InvalidDetail(Schema):
    """A 422: our own message naming the field and line, or ninja's list of field errors."""

    detail: str | list[dict]


def _scope(request) -> str | None:
    return getattr(request, "token_scope", None)


def _one(check_id: int) -> Check:
    return get_object_or_404(Check, id=check_id)


def _reveal(request) -> bool:
    """Secrets (passwords, header values, DSNs) are for admins' eyes only."""
    return gate.allows(request.auth, ADMIN, scope=_scope(request), request=request)


def _out(request, check: Check) -> dict:
    return check_payload(check, storage.uptime([check.id])[check.id], _reveal(request))


@router.get("/checks", response=ChecksOut)
def list_checks(request, filters: Query[CheckFilters]):
    checks = Check.objects.prefetch_related("channels")
    if filters.service is not None:
        checks = checks.filter(service=filters.service)
    if filters.state:
        checks = checks.filter(state=filters.state)
    count = checks.count()
    page = list(checks[filters.offset : filters.offset + filters.limit])
    figures = storage.uptime([check.id for check in page])
    reveal = _reveal(request)
    items = [check_payload(check, figures[check.id], reveal) for check in page]
    return {"items": items, "count": count}


@router.post("/checks", response={201: CheckOut}, auth=Needs(OPERATOR, "check.create"))
def create_check(request, body: CheckIn):
    check = operations.create_check(
        request.auth, body.dict(), scope=_scope(request), request=request
    )
    return Status(201, _out(request, check))


@router.get("/checks/{check_id}", response={200: CheckOut, 404: Detail})
def get_check(request, check_id: int = CheckId):
    return _out(request, _one(check_id))


@router.patch(
    "/checks/{check_id}",
    response={200: CheckOut, 404: Detail},
    auth=Needs(OPERATOR, "check.update"),
)
def update_check(request, body: CheckPatch, check_id: int = CheckId):
    changes = body.dict(exclude_unset=True)
    check = operations.update_check(
        request.auth, _one(check_id), changes, scope=_scope(request), request=request
    )
    return _out(request, check)


@router.delete(
    "/checks/{check_id}", response={204: None, 404: Detail}, auth=Needs(OPERATOR, "check.delete")
)
def delete_check(request, check_id: int = CheckId):
    operations.delete_check(request.auth, _one(check_id), scope=_scope(request), request=request)
    return Status(204, None)


@router.post(
    "/checks/{check_id}/run",
    response={200: CheckOut, 404: Detail},
    auth=Needs(OPERATOR, "check.run"),
)
def run_check(request, check_id: int = CheckId):
    check = _one(check_id)
    operations.run_check(request.auth, check, scope=_scope(request), request=request)
    return _out(request, check)


@router.post(
    "/checks/{check_id}/pause",
    response={200: CheckOut, 404: Detail},
    auth=Needs(OPERATOR, "check.pause"),
)
def pause_check(request, check_id: int = CheckId):
    check = operations.pause_check(
        request.auth, _one(check_id), scope=_scope(request), request=request
    )
    return _out(request, check)


@router.post(
    "/checks/{check_id}/resume",
    response={200: CheckOut, 404: Detail},
    auth=Needs(OPERATOR, "check.resume"),
)
def resume_check(request, check_id: int = CheckId):
    check = operations.resume_check(
        request.auth, _one(check_id), scope=_scope(request), request=request
    )
    return _out(request, check)


@router.get("/checks/{check_id}/results", response={200: ResultsOut, 404: Detail})
def check_results(request, page: Query[Page], check_id: int = CheckId):
    results = Result.objects.filter(check_ref=_one(check_id)).order_by("-at")
    chosen = results[page.offset : page.offset + page.limit]
    return {
        "items": [
            {
                "at": result.at.isoformat(),
                "outcome": result.outcome,
                "latency_ms": result.latency_ms,
                "detail": result.detail,
                "answered": result.answered,
            }
            for result in chosen
        ],
        "count": results.count(),
    }


# -- healthcheck.yml ---------------------------------------------------------------------------


class ImportOut(Schema):
    created: list[str]
    updated: list[str]
    removed: list[str]
    channels: list[str]


@router.get("/health/export", response={200: None}, auth=Needs(OPERATOR, "health.export"))
def export_config(request):
    # Operators get secrets redacted, admins as stored; the export is audited either way.
    text = config.export_for(request.auth, scope=_scope(request), request=request)
    response = HttpResponse(text, content_type="application/yaml")
    response["Content-Disposition"] = 'attachment; filename="healthcheck.yml"'
    # It can hold credentials: no browser or proxy cache keeps a copy.
    response["Cache-Control"] = "no-store"
    return response


@router.post(
    "/health/import",
    response={200: ImportOut, 413: Detail, 415: Detail, 422: InvalidDetail},
    auth=Needs(OPERATOR, "health.import"),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            }
        }
    },
)
def import_config(request, replace: bool = False):
    """healthcheck.yml as the raw body (Content-Type: application/yaml) or a `file` form field."""
    content_type = request.content_type or ""
    if content_type.startswith("multipart/form-data"):
        upload = request.FILES.get("file")
        if upload is None:
            return Status(422, {"detail": "file: the form has no 'file' field"})
        if too_large := safe_yaml.size_refusal(upload.size, config.max_bytes()):
            return Status(413, {"detail": f"file: {too_large}"})
        raw = upload.read()
    elif content_type in {"application/yaml", "application/x-yaml", "text/yaml", "text/plain"}:
        # Content-Length first: a huge body is refused before it is read into memory.
        if too_large := safe_yaml.size_refusal(
            safe_yaml.declared_size(request.META.get("CONTENT_LENGTH")), config.max_bytes()
        ) or safe_yaml.size_refusal(len(request.body), config.max_bytes()):
            return Status(413, {"detail": str(too_large)})
        raw = request.body
    else:
        return Status(415, {"detail": "send application/yaml or a multipart 'file' field"})
    summary = config.import_yaml(
        raw, request.auth, scope=_scope(request), request=request, replace=replace
    )
    return summary


# -- alert channels and the alert log ---------------------------------------------------------


class ChannelIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    kind: Literal["webhook", "slack", "email", "pagerduty"]
    config: dict = Field(default_factory=dict)
    enabled: bool = True
    on_degraded: bool = False
    on_exposure: bool = False
    remind_every_s: int = Field(0, ge=0, le=7 * 86400)


class ChannelPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    config: dict | None = None
    enabled: bool | None = None
    on_degraded: bool | None = None
    on_exposure: bool | None = None
    remind_every_s: int | None = Field(None, ge=0, le=7 * 86400)


class ChannelOut(Schema):
    id: int
    name: str
    kind: str
    config: dict
    enabled: bool
    on_degraded: bool
    on_exposure: bool
    remind_every_s: int


class ChannelsOut(Schema):
    items: list[ChannelOut]
    count: int


class AttemptOut(Schema):
    at: str
    ok: bool
    status_code: int | None
    error: str
    duration_ms: float


class AlertOut(Schema):
    id: int
    channel: str
    check_id: int | None
    check_name: str
    event: str
    state: str
    message: str
    status: str
    attempts: int
    created_at: str
    sent_at: str | None
    last_error: str
    attempt_log: list[AttemptOut]


class AlertsOut(Schema):
    items: list[AlertOut]
    count: int


def _channel_out(request, channel: AlertChannel) -> dict:
    admin = _reveal(request)
    return {
        "id": channel.id,
        "name": channel.name,
        "kind": channel.kind,
        "config": channel.config if admin else redact_channel_config(channel.config),
        "enabled": channel.enabled,
        "on_degraded": channel.on_degraded,
        "on_exposure": channel.on_exposure,
        "remind_every_s": channel.remind_every_s,
    }


def alert_payload(alert: Alert) -> dict:
    return {
        "id": alert.id,
        "channel": alert.channel.name,
        "check_id": alert.check_ref_id,
        "check_name": alert.check_name,
        "event": alert.event,
        "state": alert.state,
        "message": alert.message,
        "status": alert.status,
        "attempts": alert.attempts,
        "created_at": alert.created_at.isoformat(),
        "sent_at": alert.sent_at.isoformat() if alert.sent_at else None,
        "last_error": alert.last_error,
        "attempt_log": [
            {
                "at": attempt.at.isoformat(),
                "ok": attempt.ok,
                "status_code": attempt.status_code,
                "error": attempt.error,
                "duration_ms": attempt.duration_ms,
            }
            for attempt in alert.attempt_log.all()
        ],
    }


@router.get("/alerts/channels", response=ChannelsOut)
def list_channels(request, page: Query[Page]):
    channels = AlertChannel.objects.all()
    chosen = channels[page.offset : page.offset + page.limit]
    return {"items": [_channel_out(request, c) for c in chosen], "count": channels.count()}


@router.post(
    "/alerts/channels", response={201: ChannelOut}, auth=Needs(ADMIN, "alert_channel.create")
)
def create_channel(request, body: ChannelIn):
    channel = operations.create_channel(
        request.auth, body.dict(), scope=_scope(request), request=request
    )
    return Status(201, _channel_out(request, channel))


@router.patch(
    "/alerts/channels/{channel_id}",
    response={200: ChannelOut, 404: Detail},
    auth=Needs(ADMIN, "alert_channel.update"),
)
def update_channel(request, body: ChannelPatch, channel_id: int = ChannelId):
    channel = operations.update_channel(
        request.auth,
        get_object_or_404(AlertChannel, id=channel_id),
        body.dict(exclude_unset=True),
        scope=_scope(request),
        request=request,
    )
    return _channel_out(request, channel)


@router.delete(
    "/alerts/channels/{channel_id}",
    response={204: None, 404: Detail},
    auth=Needs(ADMIN, "alert_channel.delete"),
)
def delete_channel(request, channel_id: int = ChannelId):
    operations.delete_channel(
        request.auth,
        get_object_or_404(AlertChannel, id=channel_id),
        scope=_scope(request),
        request=request,
    )
    return Status(204, None)


@router.post(
    "/alerts/channels/{channel_id}/test",
    response={200: AlertOut, 404: Detail},
    auth=Needs(ADMIN, "alert_channel.test"),
)
def test_channel(request, channel_id: int = ChannelId):
    alert = operations.send_test_alert(
        request.auth,
        get_object_or_404(AlertChannel, id=channel_id),
        scope=_scope(request),
        request=request,
    )
    return alert_payload(alert)


class AlertFilters(Page):
    check_id: int | None = Field(None, ge=1, le=2**62)
    status: AlertStatus | None = None


@router.get("/alerts", response=AlertsOut)
def list_alerts(request, filters: Query[AlertFilters]):
    alerts = Alert.objects.select_related("channel").prefetch_related("attempt_log")
    if filters.check_id is not None:
        alerts = alerts.filter(check_ref_id=filters.check_id)
    if filters.status:
        alerts = alerts.filter(status=filters.status)
    chosen = alerts[filters.offset : filters.offset + filters.limit]
    return {"items": [alert_payload(alert) for alert in chosen], "count": alerts.count()}
