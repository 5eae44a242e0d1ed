"""Health actions as a signed-in user performs them: rights, then the change, then the audit entry.

The pages, the API, the command line and the YAML import all call these, so a rule written here
(who may create a command check, what a valid interval is) holds everywhere.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from console.foundation import audit, gate
from console.foundation.roles import ADMIN, OPERATOR
from health import alerts, live, secrets, specs, states, storage
from health.models import (
    ADMIN_CHECK_TYPES,
    CHANNEL_KINDS,
    AlertChannel,
    AlertStatus,
    Check,
    StateChange,
)
from health.runner import CheckSpec, execute

if TYPE_CHECKING:
    from django.http import HttpRequest

    from console.foundation.gate import AnyUser, Who
    from health.models import Alert

# A check's or a channel's fields as a form, the API or a YAML import gives them (JSON values).
Definition = dict[str, Any]
# The environment an admin's import may name variables of (`${VAR}`); None everywhere else.
PlaceholderEnv = Mapping[str, str] | None

CHECK_FIELDS = (
    "name",
    "service",
    "type",
    "target",
    "interval_s",
    "timeout_s",
    "warn_ms",
    "crit_ms",
    "failures_before_down",
    "successes_before_up",
)


# Checks that execute code or SQL on this machine are an admin's (DESIGN.md, trust boundaries):
# creating, editing, running, pausing, resuming and deleting them alike.
ADMIN_TYPES = ADMIN_CHECK_TYPES


def role_for(kind: str) -> str:
    return ADMIN if kind in ADMIN_TYPES else OPERATOR


def _require(
    who: Who,
    role: str,
    scope: str | None,
    action: str,
    target: str,
    request: HttpRequest | None,
) -> gate.Actor:
    return gate.authorize(who, role, action, target=target, scope=scope, request=request)


def _check_role(
    who: Who,
    kinds: Collection[str | None],
    scope: str | None,
    action: str,
    name: str,
    request: HttpRequest | None,
) -> gate.Actor:
    """The gate for a check of these types (an edit that changes the type names both)."""
    needed = ADMIN if any(kind in ADMIN_TYPES for kind in kinds) else OPERATOR
    actor = _require(who, needed, scope, action, name, request)
    if "command" in kinds and not specs.command_checks_allowed():
        raise specs.InvalidCheck("type", specs.COMMAND_CHECKS_OFF)
    return actor


def _refuse_placeholders(
    root: str,
    values: Definition,
    stored: Definition | None,
    secret_fields: tuple[str, ...],
    env: PlaceholderEnv,
) -> None:
    """`${VAR}` only in secret fields of an admin's import; an unchanged stored one is kept.

    `env` is the environment an admin's import may name variables of; None everywhere else.
    """
    try:
        secrets.check_placeholders(
            {root: values},
            root=root,
            secret_fields=secret_fields,
            admin_import=env is not None,
            environ=env,
            unchanged=secrets.stored_unchanged(stored, root),
        )
    except secrets.PlaceholderError as error:
        raise specs.InvalidCheck(error.field, error.message) from None


def _placeholders(
    kind: str, target: Definition, stored: Definition | None, env: PlaceholderEnv
) -> None:
    _refuse_placeholders("target", target, stored, secrets.CHECK_SECRETS.get(kind, ()), env)


def _unique_name(name: str, exclude: int | None = None) -> None:
    same_name = Check.objects.filter(name=name)
    if exclude is not None:
        same_name = same_name.exclude(id=exclude)
    if same_name.exists():
        raise specs.InvalidCheck("name", f"a check named {name!r} already exists")


def _chosen_channels(names: list[str]) -> list[AlertChannel]:
    """The alert channels a check names, or InvalidCheck naming the unknown ones."""
    found = {channel.name: channel for channel in AlertChannel.objects.filter(name__in=names)}
    if unknown := [name for name in names if name not in found]:
        known = ", ".join(AlertChannel.objects.values_list("name", flat=True)) or "none yet"
        raise specs.InvalidCheck(
            "channels", f"no alert channel named {', '.join(map(repr, unknown))} (known: {known})"
        )
    return [found[name] for name in names]


def channel_names(check: Check) -> list[str]:
    return sorted(channel.name for channel in check.channels.all())


def create_check(
    user: AnyUser,
    data: Definition,
    *,
    scope: str | None = None,
    request: HttpRequest | None = None,
    placeholder_env: PlaceholderEnv = None,
) -> Check:
    _check_role(user, [data.get("type")], scope, "check.create", str(data.get("name", "")), request)
    definition = specs.validate(data)
    channels = _chosen_channels(definition.pop("channels", []))
    _placeholders(definition["type"], definition["target"], None, placeholder_env)
    _unique_name(definition["name"])
    try:
        with transaction.atomic():
            check = Check.objects.create(
                **definition,
                created_by=user if isinstance(user, get_user_model()) else None,
                state=states.PENDING if definition["enabled"] else states.PAUSED,
            )
            check.channels.set(channels)
    except IntegrityError:
        raise specs.InvalidCheck("name", "a check with that name already exists") from None
    audit.record("check.create", request=request, user=user, target=check.name, type=check.type)
    return check


def update_check(
    user: AnyUser,
    check: Check,
    changes: Definition,
    *,
    scope: str | None = None,
    request: HttpRequest | None = None,
    placeholder_env: PlaceholderEnv = None,
) -> Check:
    kind = changes.get("type") or check.type
    # Before anything is parsed: touching a query or command check, or making one, is an admin's.
    _check_role(user, {check.type, kind}, scope, "check.update", check.name, request)
    current = {field: getattr(check, field) for field in CHECK_FIELDS}
    current["enabled"] = check.enabled
    if "target" in changes and changes["target"] is not None:
        # A partial target (PATCH {"target": {"url": ...}}) keeps the other target fields.
        same_type = kind == check.type
        base = dict(check.target) if same_type else {}
        incoming = dict(changes["target"])
        if same_type:
            # A redacted value sent back unchanged ("***" from a GET) keeps the stored secret.
            incoming = secrets.keep_unchanged_secrets(kind, base, incoming)
        changes = {**changes, "target": {**base, **incoming}}
    changes = _refit_default_timeout(check, changes)
    definition = specs.validate({**current, **{k: v for k, v in changes.items() if v is not None}})
    stored = check.target if definition["type"] == check.type else None
    _placeholders(definition["type"], definition["target"], stored, placeholder_env)
    _unique_name(definition["name"], exclude=check.id)
    chosen = definition.pop("channels", None)
    channels = None if chosen is None else _chosen_channels(chosen)
    changed = sorted(field for field in CHECK_FIELDS if definition[field] != current[field])
    if channels is not None and chosen != channel_names(check):
        changed.append("channels")
    enabled = definition.pop("enabled")
    for field, value in definition.items():
        setattr(check, field, value)
    with transaction.atomic():
        check.save()
        if channels is not None:
            check.channels.set(channels)
    if enabled != check.enabled:
        (resume_check if enabled else pause_check)(user, check, scope=scope, request=request)
    audit.record("check.update", request=request, user=user, target=check.name, fields=changed)
    live.announce([check.id])
    return check


def _refit_default_timeout(check: Check, changes: Definition) -> Definition:
    """A shorter interval without a timeout: a timeout nobody chose (the default for the old
    interval) follows the new interval; one somebody chose is kept, and judged against it."""
    interval = changes.get("interval_s")
    if changes.get("timeout_s") is not None or not isinstance(interval, int | float):
        return changes
    if interval <= 0 or check.timeout_s != specs.default_timeout(check.interval_s):
        return changes
    return {**changes, "timeout_s": specs.default_timeout(interval)}


def delete_check(
    user: AnyUser, check: Check, *, scope: str | None = None, request: HttpRequest | None = None
) -> None:
    _check_role(user, {check.type}, scope, "check.delete", check.name, request)
    name = check.name
    check.delete()
    audit.record("check.delete", request=request, user=user, target=name)


def _set_state(check: Check, state: str, reason: str) -> None:
    with transaction.atomic():
        StateChange.objects.create(
            check_ref=check, from_state=check.state, to_state=state, reason=reason
        )
        check.state, check.state_since = state, timezone.now()
        check.fail_streak = check.success_streak = 0
        check.enabled = state != states.PAUSED
        check.save()


def pause_check(
    user: AnyUser, check: Check, *, scope: str | None = None, request: HttpRequest | None = None
) -> Check:
    _require(user, role_for(check.type), scope, "check.pause", check.name, request)
    if check.state != states.PAUSED:
        _set_state(check, states.PAUSED, f"paused by {user.get_username()}")
        live.announce([check.id])
    audit.record("check.pause", request=request, user=user, target=check.name)
    return check


def resume_check(
    user: AnyUser, check: Check, *, scope: str | None = None, request: HttpRequest | None = None
) -> Check:
    _require(user, role_for(check.type), scope, "check.resume", check.name, request)
    if check.state == states.PAUSED:
        _set_state(check, states.PENDING, f"resumed by {user.get_username()}")
        live.announce([check.id])
    audit.record("check.resume", request=request, user=user, target=check.name)
    return check


def run_check(
    user: AnyUser, check: Check, *, scope: str | None = None, request: HttpRequest | None = None
) -> storage.Observation:
    """Run now: the same probe and the same storing as the scheduler, answered at once."""
    _require(user, role_for(check.type), scope, "check.run", check.name, request)
    observation = async_to_sync(execute)(CheckSpec.of(check))
    if check.enabled:
        storage.store([observation])
        check.refresh_from_db()
        live.announce([check.id])
    audit.record(
        "check.run",
        request=request,
        user=user,
        target=check.name,
        outcome="ok" if observation.ok else "failed",
        latency_ms=round(observation.latency_ms, 1),
    )
    return observation


# -- alert channels (admin) ------------------------------------------------------------------

REQUIRED_CONFIG = {
    "webhook": ("url",),
    "slack": ("webhook_url",),
    "email": ("recipients",),
    "pagerduty": ("routing_key",),
}


def validate_channel(data: Definition) -> Definition:
    """A normalised copy of a channel definition, or InvalidCheck naming every bad field."""
    problems = specs.Problems()
    kind = data.get("kind")
    if kind not in CHANNEL_KINDS:
        problems.add("kind", f"one of {', '.join(CHANNEL_KINDS)}")
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 100:
        problems.add("name", "a name of 1-100 characters is required")
    given = data.get("config") or {}
    if not isinstance(given, dict):
        problems.add("config", "must be an object")
        given = {}
    # An empty setting is no setting (a form sends every field of the kind).
    config = {key: value for key, value in given.items() if value not in (None, "")}
    for key in REQUIRED_CONFIG.get(str(kind), ()):
        if not config.get(key):
            problems.add(f"config.{key}", "is required")
    for key in ("url", "webhook_url", "events_url"):
        # A ${VAR} placeholder is checked when it is resolved, at send time.
        if config.get(key) and "${" not in str(config[key]):
            parsed = urlparse(str(config[key]))
            if parsed.scheme not in {"http", "https"} or not parsed.hostname:
                problems.add(f"config.{key}", "an http:// or https:// URL")
    if kind == "email" and config.get("recipients"):
        recipients = problems.take(_recipients, config["recipients"])
        if recipients is not None:
            config["recipients"] = recipients
    if config.get("headers") is not None and not (
        isinstance(config["headers"], dict)
        and all(isinstance(v, str) for v in config["headers"].values())
    ):
        problems.add("config.headers", "an object of header names to text values")
    remind = problems.take(_remind_every, data, default=0)
    problems.raise_any()
    return {
        "name": name,
        "kind": kind,
        "config": config,
        "enabled": bool(data.get("enabled", True)),
        "on_degraded": bool(data.get("on_degraded", False)),
        "on_exposure": bool(data.get("on_exposure", False)),
        "remind_every_s": remind,
    }


def _recipients(value: object) -> list[str]:
    recipients = value
    if isinstance(recipients, str):
        recipients = [part.strip() for part in recipients.split(",") if part.strip()]
    if not isinstance(recipients, list) or not all(
        isinstance(address, str) and "@" in address for address in recipients
    ):
        raise specs.InvalidCheck("config.recipients", "e-mail addresses, separated by commas")
    return list(recipients)


def _remind_every(data: Definition) -> int:
    try:
        remind = int(data.get("remind_every_s") or 0)
    except (TypeError, ValueError):
        raise specs.InvalidCheck("remind_every_s", "a number of seconds") from None
    if remind and remind < 60:
        raise specs.InvalidCheck("remind_every_s", "0 (off) or at least 60 seconds")
    return remind


def _channel_placeholders(
    config: Definition, stored: Definition | None, env: PlaceholderEnv
) -> None:
    _refuse_placeholders("config", config, stored, secrets.CHANNEL_SECRETS, env)


def create_channel(
    user: AnyUser,
    data: Definition,
    *,
    scope: str | None = None,
    request: HttpRequest | None = None,
    placeholder_env: PlaceholderEnv = None,
) -> AlertChannel:
    _require(user, ADMIN, scope, "alert_channel.create", str(data.get("name", "")), request)
    definition = validate_channel(data)
    _channel_placeholders(definition["config"], None, placeholder_env)
    if AlertChannel.objects.filter(name=definition["name"]).exists():
        raise specs.InvalidCheck("name", f"a channel named {definition['name']!r} already exists")
    channel = AlertChannel.objects.create(**definition)
    audit.record(
        "alert_channel.create", request=request, user=user, target=channel.name, kind=channel.kind
    )
    return channel


def update_channel(
    user: AnyUser,
    channel: AlertChannel,
    data: Definition,
    *,
    scope: str | None = None,
    request: HttpRequest | None = None,
    placeholder_env: PlaceholderEnv = None,
    keep_absent: bool = True,
) -> AlertChannel:
    """`keep_absent`: settings the edit does not mention keep their value (an API PATCH);
    False for an import, where the file says the whole of it."""
    _require(user, ADMIN, scope, "alert_channel.update", channel.name, request)
    current = {
        "name": channel.name,
        "kind": channel.kind,
        "config": channel.config,
        "enabled": channel.enabled,
        "on_degraded": channel.on_degraded,
        "on_exposure": channel.on_exposure,
        "remind_every_s": channel.remind_every_s,
    }
    if data.get("config") is not None:
        config = merged_channel_config(channel.config, data["config"], keep_absent)
        data = {**data, "config": config}
    definition = validate_channel({**current, **{k: v for k, v in data.items() if v is not None}})
    _channel_placeholders(definition["config"], channel.config, placeholder_env)
    if AlertChannel.objects.filter(name=definition["name"]).exclude(id=channel.id).exists():
        raise specs.InvalidCheck("name", f"a channel named {definition['name']!r} already exists")
    for field, value in definition.items():
        setattr(channel, field, value)
    channel.save()
    audit.record("alert_channel.update", request=request, user=user, target=channel.name)
    return channel


def merged_channel_config(
    stored: Definition, incoming: Definition, keep_absent: bool = True
) -> Definition:
    """A channel's settings after an edit: keys not sent keep their value (unless not
    `keep_absent`), an empty one (or null) removes it, and a redacted value sent back unchanged
    (`***`, what a reader without the admin role is shown) keeps the stored secret rather than
    becoming asterisks.

    The channel's form of `secrets.keep_unchanged_secrets` (that one knows check types): a
    channel's secret fields are redacted whole, so `***` is the only redacted form."""
    merged = dict(stored) if keep_absent else {}
    for key, value in incoming.items():
        old = stored.get(key)
        if key in secrets.CHANNEL_SECRETS and value == secrets.REDACTED and old:
            merged[key] = old
            continue
        if key in secrets.CHANNEL_SECRETS and isinstance(value, dict) and isinstance(old, dict):
            value = {
                name: old.get(name, item) if item == secrets.REDACTED else item
                for name, item in value.items()
            }
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def delete_channel(
    user: AnyUser,
    channel: AlertChannel,
    *,
    scope: str | None = None,
    request: HttpRequest | None = None,
) -> None:
    _require(user, ADMIN, scope, "alert_channel.delete", channel.name, request)
    name = channel.name
    channel.delete()
    audit.record("alert_channel.delete", request=request, user=user, target=name)


def send_test_alert(
    user: AnyUser,
    channel: AlertChannel,
    *,
    scope: str | None = None,
    request: HttpRequest | None = None,
) -> Alert:
    _require(user, ADMIN, scope, "alert_channel.test", channel.name, request)
    alert = alerts.send_test(channel)
    audit.record(
        "alert_channel.test",
        request=request,
        user=user,
        target=channel.name,
        outcome="ok" if alert.status == AlertStatus.SENT else "failed",
        error=alert.last_error,
    )
    return alert
