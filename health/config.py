"""healthcheck.yml: import (all-or-nothing, errors name the line) and export (round-trips).

    services:
      main_api:
        endpoint: http://localhost:5000/health
        checks:
          - {type: http, method: GET, expected_status: 200, timeout: 5s, interval: 30s}
          - {type: tcp, host: localhost, port: 5000}
          - {type: response_time, threshold: 100ms, warning_threshold: 50ms}
    alerts:
      slack: {webhook_url: "${SLACK_WEBHOOK}", channel: "#dev-alerts"}

`console.safe_yaml` reads the file once (data and lines): anchors, aliases, deep nesting, `.inf`
and `.nan` are refused while parsing, so a small file cannot cost the console anything.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import yaml
from django.conf import settings
from django.db import transaction

from console.foundation import audit, gate, safe_yaml
from console.foundation.roles import ADMIN, OPERATOR
from health import operations, secrets, specs
from health.models import AlertChannel, Check

if TYPE_CHECKING:
    from django.http import HttpRequest

    from console.foundation.gate import AnyUser

DEFAULT_INTERVAL = "30s"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
COMMON_KEYS = {
    "type",
    "name",
    "interval",
    "timeout",
    "threshold",
    "warning_threshold",
    "failures_before_down",
    "successes_before_up",
    "paused",
    "channels",
}
TYPE_KEYS = {
    "http": {
        "url",
        "method",
        "headers",
        "body",
        "expected_status",
        "body_contains",
        "verify_tls",
        "follow_redirects",
        "max_bytes",
    },
    "tcp": {"host", "port", "send", "expect"},
    "redis": {"host", "port", "username", "password"},
    "query": {"query", "database", "dsn", "expect"},
    "command": {"argv", "command", "expect_exit", "expect_output"},
    "ping": {"command", "expected"},
    "response_time": set(),
}
CHANNEL_KEYS = {
    "webhook": {"url", "headers"},
    "slack": {"webhook_url", "channel"},
    "email": {"recipients"},
    "pagerduty": {"service_key", "routing_key", "events_url"},
}
CHANNEL_COMMON = {"kind", "enabled", "on_degraded", "on_exposure", "remind_every"}


class ConfigError(ValueError):
    def __init__(self, line: int | None, message: str):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


def max_bytes() -> int:
    return settings.HEALTH_IMPORT_MAX_BYTES


@dataclass
class Plan:
    checks: list[tuple[int | None, dict]] = field(default_factory=list)  # (line, definition)
    channels: list[tuple[int | None, dict]] = field(default_factory=list)


# -- reading -----------------------------------------------------------------------------------


def load(raw: bytes | str) -> tuple[object, dict[tuple, int]]:
    """The file's data and every path's line, parsed once by the loader both importers share."""
    try:
        data, lines, _key_lines = safe_yaml.load(raw, max_bytes=max_bytes())
    except safe_yaml.YamlRefused as error:
        raise ConfigError(error.line, error.message) from None
    return data, lines


def duration(value, line: int | None, what: str, unit: str = "s") -> float:
    """'5s', '100ms', '2m', '1h' or a bare number (in `unit`) -> seconds."""
    if isinstance(value, bool):
        raise ConfigError(line, f"{what}: {value!r} is not a duration")
    if isinstance(value, int | float):
        return float(value) * _UNITS[unit]
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(line, f"{what}: {value!r} is not a duration like 5s, 100ms or 2m")
    return float(match.group(1)) * _UNITS[match.group(2) or unit]


def _line(lines: dict, path: tuple) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


# Keys whose values are secrets, where a `${VAR}` placeholder may stand (headers: each value):
# the secret fields of `health.secrets`, and this file's own names for two of them (a service's
# `endpoint` is its checks' url; pagerduty's `service_key` is its routing_key).
PLACEHOLDER_KEYS = frozenset(
    {name for fields in secrets.CHECK_SECRETS.values() for name in fields}
    | set(secrets.CHANNEL_SECRETS)
    | {"endpoint", "service_key"}
)


def _refuse_stray_placeholders(value, path: tuple, lines) -> None:
    """`${...}` anywhere but a secret field is refused: a name or a host is shown to viewers."""
    if isinstance(value, str):
        secret = any(str(part) in PLACEHOLDER_KEYS for part in path[-2:])
        if "${" in value and not secret:
            raise ConfigError(
                _line(lines, path),
                f"{'.'.join(map(str, path))}: ${{...}} is only expanded in secret fields "
                "(passwords, keys, header values, DSNs, webhook URLs)",
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_stray_placeholders(item, (*path, key), lines)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_stray_placeholders(item, (*path, index), lines)


def parse(raw: bytes | str) -> Plan:
    """The checks and channels of a file, validated; `${VAR}` placeholders are left in place
    (whether they may be stored is the importer's right, decided in `import_yaml`)."""
    data, lines = load(raw)
    _refuse_stray_placeholders(data, (), lines)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            _line(lines, ()), "the file must be a mapping with 'services' and 'alerts'"
        )
    unknown = set(data) - {"services", "alerts", "checks"}
    if unknown:
        key = sorted(map(str, unknown))[0]
        raise ConfigError(_line(lines, (key,)), f"unknown top-level key {key!r}")
    plan = Plan()
    names: set[str] = set()
    services = data.get("services") or {}
    if not isinstance(services, dict):
        raise ConfigError(_line(lines, ("services",)), "'services' must be a mapping")
    for service, body in services.items():
        path = ("services", service)
        if not isinstance(body, dict):
            raise ConfigError(_line(lines, path), f"service {service!r} must be a mapping")
        extra = set(body) - {"endpoint", "checks"}
        if extra:
            key = sorted(map(str, extra))[0]
            raise ConfigError(_line(lines, (*path, key)), f"unknown key {key!r} in {service}")
        _service_checks(plan, str(service), body, path, lines, names)
    loose = data.get("checks") or []
    if loose:
        _service_checks(plan, "", {"checks": loose}, (), lines, names)
    alerts = data.get("alerts") or {}
    if not isinstance(alerts, dict):
        raise ConfigError(_line(lines, ("alerts",)), "'alerts' must be a mapping")
    for name, body in alerts.items():
        plan.channels.append(
            (_line(lines, ("alerts", name)), _channel(str(name), body, ("alerts", name), lines))
        )
    if not plan.checks and not plan.channels:
        # An empty file (or one whose sections are empty) is a mistake, not a set-up: with
        # "remove checks not in the file" it would delete every check.
        raise ConfigError(
            _line(lines, ()),
            "the file has no checks and no alert channels: nothing to import "
            "(it needs 'services:' with checks, or 'alerts:')",
        )
    return plan


def _service_checks(plan, service, body, path, lines, names) -> None:
    endpoint = body.get("endpoint")
    entries = body.get("checks") or []
    if not isinstance(entries, list):
        raise ConfigError(_line(lines, (*path, "checks")), "'checks' must be a list")
    mine: list[tuple[int | None, dict]] = []
    thresholds: list[tuple[int | None, dict, tuple]] = []
    for index, entry in enumerate(entries):
        where = (*path, "checks", index)
        line = _line(lines, where)
        if not isinstance(entry, dict):
            raise ConfigError(line, "a check must be a mapping with a 'type'")
        kind = entry.get("type")
        if kind not in TYPE_KEYS:
            raise ConfigError(
                _line(lines, (*where, "type")),
                f"type: unknown check type {kind!r}; one of {', '.join(TYPE_KEYS)}",
            )
        extra = set(entry) - COMMON_KEYS - TYPE_KEYS[kind]
        if extra:
            key = sorted(map(str, extra))[0]
            raise ConfigError(
                _line(lines, (*where, key)), f"unknown key {key!r} for a {kind} check"
            )
        if kind == "response_time":
            thresholds.append((line, entry, where))
            continue
        definition = _definition(service, endpoint, entry, where, lines)
        definition["name"] = _unique(definition["name"], names)
        mine.append((line, definition))
    for line, entry, where in thresholds:
        targets = [definition for _, definition in mine if definition["type"] == "http"]
        if not targets:
            raise ConfigError(line, f"response_time needs an http check in service {service!r}")
        for definition in targets:
            _apply_thresholds(definition, entry, where, lines)
    for line, definition in mine:
        try:
            definition.update(specs.validate(definition))
        except specs.InvalidCheck as error:
            raise ConfigError(line, f"{definition['name']}: {error}") from None
        plan.checks.append((line, definition))


def _unique(name: str, names: set[str]) -> str:
    """The name, or "name 2", "name 3", ... when the file already has a check of that name."""
    candidate, number = name, 2
    while candidate in names:
        candidate, number = f"{name} {number}", number + 1
    names.add(candidate)
    return candidate


def _apply_thresholds(definition: dict, entry: dict, where: tuple, lines) -> None:
    for key, target in (("threshold", "crit_ms"), ("warning_threshold", "warn_ms")):
        if entry.get(key) is not None:
            seconds = duration(entry[key], _line(lines, (*where, key)), key, unit="ms")
            definition[target] = round(seconds * 1000)


def _definition(service: str, endpoint, entry: dict, where: tuple, lines) -> dict:
    kind = entry["type"]

    def at(key: str) -> int | None:
        return _line(lines, (*where, key))

    interval = duration(entry.get("interval", DEFAULT_INTERVAL), at("interval"), "interval")
    # No timeout given: the validator's default, which fits the interval.
    timeout = duration(entry["timeout"], at("timeout"), "timeout") if "timeout" in entry else None
    target: dict = {}
    if kind == "http":
        target = {key: entry[key] for key in TYPE_KEYS["http"] if key in entry}
        target.setdefault("url", endpoint or "")
        if not target["url"]:
            raise ConfigError(at("type"), "an http check needs a 'url' or the service's endpoint")
    elif kind in {"tcp", "redis", "query"}:
        target = {key: entry[key] for key in TYPE_KEYS[kind] if key in entry}
    elif kind == "command":
        target = {key: entry[key] for key in ("expect_exit", "expect_output") if key in entry}
        key = "argv" if "argv" in entry else "command"
        target["argv"] = _argv(entry.get(key), at(key))
    elif kind == "ping":
        argv = _argv(entry.get("command"), at("command"))
        expected = str(entry.get("expected", "PONG"))
        if argv[0].rsplit("/", 1)[-1] == "redis-cli" and argv[-1].lower() == "ping":
            # No redis-cli needed: the same question asked over RESP.
            kind, target = "redis", _redis_cli(argv, at("command"))
            if expected.upper() != "PONG":
                raise ConfigError(at("expected"), "a redis ping can only expect PONG")
        else:
            kind, target = "command", {"argv": argv, "expect_output": expected}
    name = entry.get("name") or (f"{service} {kind}" if service else kind)
    if interval != int(interval):
        raise ConfigError(at("interval"), "interval: whole seconds only")
    definition = {
        "name": str(name),
        "service": service,
        "type": kind,
        "target": target,
        "interval_s": int(interval),
        "timeout_s": timeout,
        "enabled": not entry.get("paused", False),
    }
    for key in ("failures_before_down", "successes_before_up"):
        if key in entry:
            definition[key] = entry[key]
    if "channels" in entry:
        channels = entry["channels"]
        definition["channels"] = [channels] if isinstance(channels, str) else channels
    _apply_thresholds(definition, entry, where, lines)
    return definition


def _argv(value, line) -> list[str]:
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError as error:
            raise ConfigError(line, f"command: {error}") from None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(line, "command: a command line or a list of arguments")
    return value


def _redis_cli(argv: list[str], line) -> dict:
    target: dict = {}  # no -h or -p: the validator's defaults, redis-cli's own (127.0.0.1:6379)
    options = {"-h": "host", "-p": "port", "-a": "password", "--user": "username"}
    args = iter(argv[1:-1])
    for arg in args:
        if arg in options:
            target[options[arg]] = next(args, "")
        elif arg not in {"--no-auth-warning"}:
            raise ConfigError(line, f"command: redis-cli option {arg} is not understood")
    return target


def _channel(name: str, body, path: tuple, lines) -> dict:
    line = _line(lines, path)
    if not isinstance(body, dict):
        raise ConfigError(line, f"alert channel {name!r} must be a mapping")
    kind = body.get("kind", name)
    if kind not in CHANNEL_KEYS:
        raise ConfigError(
            line, f"alerts.{name}: unknown kind {kind!r}; one of {', '.join(CHANNEL_KEYS)}"
        )
    extra = set(body) - CHANNEL_COMMON - CHANNEL_KEYS[kind]
    if extra:
        key = sorted(map(str, extra))[0]
        raise ConfigError(_line(lines, (*path, key)), f"unknown key {key!r} for {kind}")
    config = {key: body[key] for key in CHANNEL_KEYS[kind] if key in body}
    if kind == "pagerduty" and "service_key" in config:
        config["routing_key"] = config.pop("service_key")
    remind = body.get("remind_every", 0)
    remind_s = duration(remind, _line(lines, (*path, "remind_every")), "remind_every")
    definition = {
        "name": name,
        "kind": kind,
        "config": config,
        "enabled": bool(body.get("enabled", True)),
        "on_degraded": bool(body.get("on_degraded", False)),
        "on_exposure": bool(body.get("on_exposure", False)),
        "remind_every_s": int(remind_s),
    }
    try:
        return operations.validate_channel(definition)
    except specs.InvalidCheck as error:
        raise ConfigError(line, f"alerts.{name}: {error}") from None


# -- applying ----------------------------------------------------------------------------------


def import_yaml(
    raw: bytes | str,
    user: AnyUser,
    *,
    scope: str | None = None,
    request: HttpRequest | None = None,
    replace: bool = False,
    environ: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """Create or update every check and channel of the file, or nothing at all.

    Only an admin's import may store `${VAR}` placeholders (in secret fields, for variables of
    the allowed prefix, set in `environ`); they are stored as written and resolved at use.
    """
    # The least right an import needs, decided before the file is read at all.
    gate.authorize(user, OPERATOR, "health.import", scope=scope, request=request)
    admin = gate.allows(user, ADMIN, scope=scope, request=request)
    env = (os.environ if environ is None else environ) if admin else None
    summary: dict[str, list[str]] = {"created": [], "updated": [], "removed": [], "channels": []}
    try:
        # A file refused while it is read is audited as one refused while it is applied.
        plan = parse(raw)
        with transaction.atomic():
            # Channels first: a check of the same file may name them.
            for line, definition in plan.channels:
                channel = AlertChannel.objects.filter(name=definition["name"]).first()
                try:
                    if channel is None:
                        operations.create_channel(
                            user, definition, scope=scope, request=request, placeholder_env=env
                        )
                    else:
                        operations.update_channel(
                            user,
                            channel,
                            definition,
                            scope=scope,
                            request=request,
                            placeholder_env=env,
                            keep_absent=False,
                        )
                except specs.InvalidCheck as error:
                    raise ConfigError(line, f"alerts.{definition['name']}: {error}") from None
                summary["channels"].append(definition["name"])
            for line, definition in plan.checks:
                existing = Check.objects.filter(name=definition["name"]).first()
                try:
                    if existing is None:
                        operations.create_check(
                            user, definition, scope=scope, request=request, placeholder_env=env
                        )
                        summary["created"].append(definition["name"])
                    else:
                        operations.update_check(
                            user,
                            existing,
                            definition,
                            scope=scope,
                            request=request,
                            placeholder_env=env,
                        )
                        summary["updated"].append(definition["name"])
                except specs.InvalidCheck as error:
                    raise ConfigError(line, f"{definition['name']}: {error}") from None
            if replace:
                keep = {definition["name"] for _, definition in plan.checks}
                for check in Check.objects.exclude(name__in=keep):
                    operations.delete_check(user, check, scope=scope, request=request)
                    summary["removed"].append(check.name)
    except ConfigError as error:
        audit.record(
            "health.import", request=request, user=user, outcome="invalid", error=str(error)
        )
        raise
    audit.record(
        "health.import",
        request=request,
        user=user,
        created=len(summary["created"]),
        updated=len(summary["updated"]),
        removed=len(summary["removed"]),
        channels=len(summary["channels"]),
    )
    return summary


# -- writing -----------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{int(value)}s" if value == int(value) else f"{round(value * 1000)}ms"


def check_entry(check: Check, *, reveal: bool) -> dict:
    target = check.target if reveal else secrets.redact_target(check.type, check.target)
    entry: dict = {"type": check.type, "name": check.name}
    if check.type == "http":
        entry["method"] = target.get("method", "GET")
        entry["url"] = target["url"]
        statuses = target.get("expected_status") or [200]
        entry["expected_status"] = statuses[0] if len(statuses) == 1 else statuses
        for key in ("headers", "body", "body_contains"):
            if target.get(key):
                entry[key] = target[key]
        if not target.get("verify_tls", True):
            entry["verify_tls"] = False
        if target.get("follow_redirects"):
            entry["follow_redirects"] = True
        if target.get("max_bytes", 1024 * 1024) != 1024 * 1024:
            entry["max_bytes"] = target["max_bytes"]
    else:
        keys = sorted(TYPE_KEYS[check.type] - {"command"})
        # A command check's expect_exit of 0 is kept: 0 is neither None nor "".
        entry.update({key: target[key] for key in keys if target.get(key) not in (None, "")})
    entry["interval"] = f"{check.interval_s}s"
    entry["timeout"] = _seconds(check.timeout_s)
    if check.crit_ms:
        entry["threshold"] = f"{check.crit_ms}ms"
    if check.warn_ms:
        entry["warning_threshold"] = f"{check.warn_ms}ms"
    entry["failures_before_down"] = check.failures_before_down
    entry["successes_before_up"] = check.successes_before_up
    if not check.enabled:
        entry["paused"] = True
    if names := sorted(channel.name for channel in check.channels.all()):
        entry["channels"] = names
    return entry


def export_data(*, reveal: bool) -> dict:
    """The whole configuration; secrets as stored (values or placeholders) only if `reveal`."""
    services: dict[str, dict] = {}
    loose: list[dict] = []
    for check in Check.objects.order_by("service", "name").prefetch_related("channels"):
        entry = check_entry(check, reveal=reveal)
        if check.service:
            services.setdefault(check.service, {"checks": []})["checks"].append(entry)
        else:
            loose.append(entry)
    data: dict = {"services": services}
    if loose:
        data["checks"] = loose
    channels = {}
    for channel in AlertChannel.objects.order_by("name"):
        body = dict(channel.config if reveal else secrets.redact_channel_config(channel.config))
        if channel.name != channel.kind:
            body = {"kind": channel.kind, **body}
        if channel.kind == "pagerduty" and "routing_key" in body:
            body["service_key"] = body.pop("routing_key")
        if not channel.enabled:
            body["enabled"] = False
        if channel.on_degraded:
            body["on_degraded"] = True
        if channel.on_exposure:
            body["on_exposure"] = True
        if channel.remind_every_s:
            body["remind_every"] = f"{channel.remind_every_s}s"
        channels[channel.name] = body
    if channels:
        data["alerts"] = channels
    return data


def export_yaml(*, reveal: bool) -> str:
    note = "" if reveal else "# Secrets are shown as *** (only an admin's export carries them).\n"
    return (
        "# Portside health checks: `manage.py health import healthcheck.yml`\n"
        + note
        + yaml.safe_dump(
            export_data(reveal=reveal),
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
        )
    )


def export_for(
    user: AnyUser, *, scope: str | None = None, request: HttpRequest | None = None
) -> str:
    """The export a user may have: operators get secrets redacted, admins get them as stored.

    Audited, since the file can carry every credential the checks use.
    """
    gate.authorize(user, OPERATOR, "health.export", scope=scope, request=request)
    reveal = gate.allows(user, ADMIN, scope=scope, request=request)
    audit.record(
        "health.export",
        request=request,
        user=user,
        target="healthcheck.yml",
        secrets="included" if reveal else "redacted",
    )
    return export_yaml(reveal=reveal)
