"""The check and channel forms. Validation is `health.specs`, shared with the API and YAML."""

from __future__ import annotations

import re
import shlex

from django import forms
from django.forms.utils import pretty_name

from console.foundation.limits import PORT_MAX, PORT_MIN
from health import specs
from health.models import CHANNEL_KINDS, CHECK_TYPES, AlertChannel, Check
from health.secrets import redact_target

TYPE_LABELS = {
    "http": "HTTP(S) request",
    "tcp": "TCP connect",
    "redis": "Redis PING",
    "query": "Database query (admins)",
    "command": "Command (admins)",
}
# Which form field shows an error about which part of the definition.
FIELD_FOR = {
    "target.url": "url",
    "target.method": "method",
    "target.expected_status": "expected_status",
    "target.headers": "headers",
    "target.body": "body",
    "target.body_contains": "body_contains",
    "target.max_bytes": None,
    "target.host": "host",
    "target.port": "port",
    "target.send": "send",
    "target.expect": "expect",
    "target.password": "password",
    "target.username": None,
    "target.database": "dsn",
    "target.dsn": "dsn",
    "target.query": "query",
    "target.argv": "argv",
    "target.expect_exit": "expect_exit",
    "target.expect_output": "expect_output",
}
WEB_SERVICES = re.compile(
    r"http|flask|django|uvicorn|gunicorn|daphne|hypercorn|waitress|node|vite|next|nuxt|webpack|"
    r"angular|astro|hugo|mkdocs|rails|puma|php|jupyter|streamlit|dash|tensorboard|nginx|apache|"
    r"caddy|kibana|prometheus|elasticsearch|grafana|ollama|minio|couchdb|solr|rabbitmq management",
    re.IGNORECASE,
)
WEB_PORTS = {80, 443, 3000, 4200, 5000, 5173, 8000, 8080, 8443, 8501, 8888, 9000, 9090}


def labelled(label: str, message: str) -> str:
    """A field's error as a sentence that names the field: "Interval must be ..." rather than
    "must be ..." (or a bare `interval_s:`), so it reads right in the list above the form."""
    name = re.sub(r"\s*\(.*\)$", "", label).strip()
    if not name or message.lower().startswith(name.lower()):
        return message
    if re.match(r"(must|is|are|has|have|needs)\b", message):
        return f"{name} {message}"
    return f"{name}: {message}"


class LabelledErrors(forms.Form):
    """Every field error names its field, Django's own ("This field is required.") too."""

    def full_clean(self) -> None:
        super().full_clean()
        for name, errors in list(self.errors.items()):
            if name in self.fields:
                label = self._label(name)
                self.errors[name] = self.error_class(
                    [labelled(label, str(error)) for error in errors], renderer=self.renderer
                )

    def _label(self, name: str) -> str:
        return str(self.fields[name].label or pretty_name(name))

    def error_summary(self) -> list[str]:
        """Every error, the form's own first, each naming its field: the list above the form."""
        found = [str(error) for error in self.non_field_errors()]
        for name in self.fields:
            found += [str(error) for error in self.errors.get(name, [])]
        return found


def _says(message: str) -> dict[str, str]:
    """The same plain sentence for every way a number field can be wrong."""
    return {key: message for key in ("required", "invalid", "min_value", "max_value")}


class CheckForm(LabelledErrors):
    name = forms.CharField(
        max_length=200, error_messages={"required": "Name is required: what is checked"}
    )
    service = forms.CharField(max_length=100, required=False, help_text="groups checks on the page")
    type = forms.ChoiceField(choices=[(t, TYPE_LABELS[t]) for t in CHECK_TYPES])
    interval_s = forms.IntegerField(
        label="Interval (s)",
        initial=30,
        min_value=1,
        error_messages=_says("Interval must be a number of seconds, at least 1 (e.g. 30)"),
    )
    timeout_s = forms.FloatField(
        label="Timeout (s)",
        required=False,
        min_value=0.001,
        help_text="empty: 5 s, or 80% of a shorter interval",
        error_messages=_says("Timeout must be a number of seconds (e.g. 5 or 0.5)"),
    )
    warn_ms = forms.IntegerField(
        label="Degraded above (ms)",
        required=False,
        min_value=0,
        error_messages=_says("Degraded above must be a number of milliseconds"),
    )
    crit_ms = forms.IntegerField(
        label="Down above (ms)",
        required=False,
        min_value=0,
        error_messages=_says("Down above must be a number of milliseconds"),
    )
    failures_before_down = forms.IntegerField(
        initial=2,
        min_value=1,
        max_value=100,
        error_messages=_says("Failures before down must be a whole number from 1 to 100"),
    )
    successes_before_up = forms.IntegerField(
        initial=1,
        min_value=1,
        max_value=100,
        error_messages=_says("Successes before up must be a whole number from 1 to 100"),
    )
    channels = forms.ModelMultipleChoiceField(
        label="Alert channels",
        queryset=AlertChannel.objects.all(),
        required=False,
        to_field_name="name",
        widget=forms.CheckboxSelectMultiple,
        help_text="none chosen: every enabled channel",
    )
    # http
    url = forms.CharField(label="URL", required=False, max_length=2000)
    method = forms.ChoiceField(choices=[(m, m) for m in specs.METHODS], initial="GET")
    expected_status = forms.CharField(
        label="Expected status", required=False, initial="200", help_text="e.g. 200, 204"
    )
    body_contains = forms.CharField(label="Body contains", required=False, max_length=500)
    headers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="one 'Name: value' a line",
    )
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    verify_tls = forms.BooleanField(label="Verify TLS certificate", required=False, initial=True)
    follow_redirects = forms.BooleanField(required=False)
    # tcp / redis
    host = forms.CharField(required=False, initial="127.0.0.1", max_length=253)
    port = forms.IntegerField(
        required=False,
        min_value=PORT_MIN,
        max_value=PORT_MAX,
        error_messages=_says(f"Port must be a number from {PORT_MIN} to {PORT_MAX}"),
    )
    send = forms.CharField(label="Send", required=False, max_length=2000)
    expect = forms.CharField(label="Expect in reply", required=False, max_length=500)
    password = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False),
        help_text="Redis AUTH; left empty keeps the stored one",
    )
    # query (admins): a DSN, never the console's own database
    dsn = forms.CharField(
        label="DSN",
        required=False,
        max_length=2000,
        help_text="postgresql://user@127.0.0.1:5432/db, mysql://user@127.0.0.1/db or "
        "sqlite:////path; run read-only",
    )
    query = forms.CharField(required=False, initial="SELECT 1", max_length=2000)
    query_expect = forms.CharField(
        label="First value equals",
        required=False,
        max_length=500,
        help_text="optional; results say only whether it matched, never the rows",
    )
    # command
    argv = forms.CharField(
        label="Command",
        required=False,
        max_length=4000,
        help_text="run without a shell; quote arguments like a shell would",
    )
    expect_exit = forms.IntegerField(
        label="Expected exit code",
        required=False,
        initial=0,
        error_messages=_says("Expected exit code must be a whole number (0 is success)"),
    )
    expect_output = forms.CharField(label="Output contains", required=False, max_length=500)

    def __init__(self, *args, instance: Check | None = None, reveal: bool = False, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            # Secrets are shown to admins only; a redacted value posted back keeps the stored one.
            kwargs["initial"] = initial_from(instance, reveal)
        super().__init__(*args, **kwargs)

    def clean(self):
        """Every problem at once: the fields' own, then the shared validator's for the rest
        (a field that is already marked is not marked twice)."""
        data = super().clean()
        kind = data.get("type")
        if kind is None:
            return data
        problems = specs.Problems()
        target = self._target(kind, data, problems)
        # A field that could not be read is compared with nothing ("longer than the interval"
        # of an interval the user never gave would mislead).
        given = {**data, **{name: specs.UNREADABLE for name in self.errors if name in self.fields}}
        given["channels"] = [channel.name for channel in data.get("channels") or []]
        definition = problems.take(specs.validate, {**given, "target": target})
        for field, message in problems.found:
            self._mark(field, message)
        if definition is not None and not self.errors:
            self.definition = definition
        return data

    def mark_all(self, error: specs.InvalidCheck) -> None:
        """The problems a service function found (a duplicate name, an unknown channel)."""
        for field, message in error.errors:
            self._mark(field, message)

    def _mark(self, field: str, message: str) -> None:
        name = FIELD_FOR.get(field, field)
        if name in self.fields:
            if name not in self.errors:
                self.add_error(name, labelled(self._label(name), message))
        else:
            self.add_error(None, f"{field}: {message}")

    def _target(self, kind: str, data: dict, problems: specs.Problems) -> dict:
        """The target from the type's fields; a field that cannot be read is reported to
        `problems` and left out, so the validator still judges the others."""
        if kind == "http":
            try:
                statuses = [
                    int(s) for s in re.split(r"[\s,]+", data.get("expected_status") or "") if s
                ]
            except ValueError:
                problems.add("target.expected_status", "numbers such as 200, 204")
                statuses = []
            headers = {}
            for line in (data.get("headers") or "").splitlines():
                if line.strip():
                    name, colon, value = line.partition(":")
                    if not colon:
                        problems.add("target.headers", f"{line!r} has no ':' (Name: value)")
                        continue
                    headers[name.strip()] = value.strip()
            return {
                "url": data.get("url") or "",
                "method": data.get("method") or "GET",
                "expected_status": statuses or [200],
                "body_contains": data.get("body_contains") or "",
                "headers": headers,
                "body": data.get("body") or "",
                "verify_tls": data.get("verify_tls", True),
                "follow_redirects": data.get("follow_redirects", False),
            }
        if kind in {"tcp", "redis"}:
            target = {
                "host": data.get("host") or "",
                "port": data.get("port") or (6379 if kind == "redis" else None),
            }
            if "port" in self.errors:
                target.pop("port")
            if kind == "tcp":
                target.update(send=data.get("send") or "", expect=data.get("expect") or "")
            else:
                password = data.get("password") or ""
                if not password and self.instance is not None:
                    password = self.instance.target.get("password", "")
                target["password"] = password
            return target
        if kind == "query":
            return {
                "dsn": data.get("dsn") or "",
                "query": data.get("query") or "",
                "expect": data.get("query_expect") or "",
            }
        try:
            argv = shlex.split(data.get("argv") or "")
        except ValueError as error:
            problems.add("target.argv", f"cannot be read like a shell line: {error}")
            argv = ["?"]
        return {
            "argv": argv,
            "expect_exit": data.get("expect_exit") or 0,
            "expect_output": data.get("expect_output") or "",
        }


def initial_from(check: Check, reveal: bool = False) -> dict:
    target = check.target if reveal else redact_target(check.type, check.target)
    initial = {
        field: getattr(check, field)
        for field in (
            "name",
            "service",
            "type",
            "interval_s",
            "timeout_s",
            "warn_ms",
            "crit_ms",
            "failures_before_down",
            "successes_before_up",
        )
    }
    initial.update({key: value for key, value in target.items() if key in CheckForm.base_fields})
    initial.pop("password", None)
    initial["channels"] = [channel.name for channel in check.channels.all()]
    if check.type == "http":
        initial["expected_status"] = ", ".join(map(str, target.get("expected_status", [200])))
        initial["headers"] = "\n".join(f"{k}: {v}" for k, v in target.get("headers", {}).items())
    if check.type == "command":
        initial["argv"] = shlex.join(target.get("argv", []))
    if check.type == "query":
        initial["query_expect"] = target.get("expect", "")
        initial.pop("expect", None)
    return initial


def initial_for_port(params) -> dict:
    """ "Monitor this port": an HTTP check for what looks like a web server, else TCP (or Redis)."""
    try:
        port = int(params.get("port", ""))
    except ValueError:
        return {}
    if not PORT_MIN <= port <= PORT_MAX:
        return {}
    host = (params.get("host") or "127.0.0.1").strip("[]")
    # A wildcard bind is reached through loopback from here.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "*": "127.0.0.1", "": "127.0.0.1"}.get(host, host)
    service = (params.get("service") or "").strip()[:80]
    label = service or f"port {port}"
    initial = {
        "name": f"{label} :{port}",
        "service": service,
        "host": host,
        "port": port,
        "interval_s": 30,
    }
    if "redis" in service.lower() or "valkey" in service.lower():
        return {**initial, "type": "redis"}
    if (params.get("proto") or "tcp") == "tcp" and (
        WEB_SERVICES.search(service) or port in WEB_PORTS
    ):
        scheme = "https" if port in {443, 8443} or "https" in service.lower() else "http"
        shown = f"[{host}]" if ":" in host else host
        return {
            **initial,
            "type": "http",
            "url": f"{scheme}://{shown}:{port}/",
            "method": "GET",
            "expected_status": "200",
        }
    return {**initial, "type": "tcp"}


KIND_LABELS = {
    "webhook": "Webhook (JSON POST)",
    "slack": "Slack",
    "email": "E-mail",
    "pagerduty": "PagerDuty",
}
# Each kind's own fields, in the order the form shows them.
KIND_FIELDS = {
    "webhook": ("url",),
    "slack": ("slack_url", "slack_channel"),
    "email": ("recipients",),
    "pagerduty": ("routing_key", "events_url"),
}
# Which form field shows an error about which part of a channel definition.
CHANNEL_FIELD_FOR = {
    "config.url": "url",
    "config.webhook_url": "slack_url",
    "config.channel": "slack_channel",
    "config.recipients": "recipients",
    "config.routing_key": "routing_key",
    "config.events_url": "events_url",
}


class ChannelForm(LabelledErrors):
    """An alert channel. Every kind's fields are in the page (it works without JavaScript);
    the stylesheet shows only the chosen kind's."""

    name = forms.CharField(
        max_length=100, error_messages={"required": "Name is required, e.g. team-slack"}
    )
    kind = forms.ChoiceField(choices=[(k, KIND_LABELS[k]) for k in CHANNEL_KINDS])
    url = forms.CharField(
        label="Webhook URL",
        required=False,
        max_length=2000,
        help_text="receives a JSON POST for each alert",
    )
    slack_url = forms.CharField(
        label="Slack webhook URL",
        required=False,
        max_length=2000,
        help_text="https://hooks.slack.com/services/…",
    )
    slack_channel = forms.CharField(
        label="Slack channel", required=False, max_length=100, help_text="optional, e.g. #dev"
    )
    recipients = forms.CharField(
        label="E-mail recipients", required=False, max_length=2000, help_text="comma separated"
    )
    routing_key = forms.CharField(label="PagerDuty routing key", required=False, max_length=200)
    events_url = forms.CharField(
        label="PagerDuty events URL",
        required=False,
        max_length=2000,
        help_text="empty: PagerDuty's own",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    on_degraded = forms.BooleanField(label="Also alert on degraded", required=False)
    on_exposure = forms.BooleanField(
        label="Also alert on a dangerous exposure (a debugger or open database on all interfaces)",
        required=False,
    )
    remind_every_s = forms.IntegerField(
        label="Remind every (s, 0 = off)",
        required=False,
        min_value=0,
        initial=0,
        error_messages=_says("Remind every must be a number of seconds: 0 (off) or 60 and more"),
    )

    def __init__(self, *args, instance: AlertChannel | None = None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = channel_initial(instance)
        super().__init__(*args, **kwargs)
        if instance is not None:
            # A channel keeps its kind: its settings mean nothing to another kind.
            self.fields["kind"].disabled = True

    def kind_fields(self) -> list[tuple[str, str, list]]:
        """(kind, label, bound fields) for the template's one fieldset per kind."""
        return [
            (kind, KIND_LABELS[kind], [self[name] for name in KIND_FIELDS[kind]])
            for kind in CHANNEL_KINDS
        ]

    def definition(self) -> dict:
        data = self.cleaned_data
        kind = data["kind"]
        # Every setting of the kind, blank ones too: an edit that empties one removes it.
        config: dict = {
            "webhook": {"url": data["url"]},
            "slack": {"webhook_url": data["slack_url"], "channel": data["slack_channel"]},
            "email": {"recipients": data["recipients"]},
            "pagerduty": {"routing_key": data["routing_key"], "events_url": data["events_url"]},
        }[kind]
        return {
            "name": data["name"],
            "kind": kind,
            "config": config,
            "enabled": data["enabled"] if self.instance is not None else True,
            "on_degraded": data["on_degraded"],
            "on_exposure": data["on_exposure"],
            "remind_every_s": data["remind_every_s"] or 0,
        }

    def mark(self, error: specs.InvalidCheck) -> None:
        """Every problem the validator found, next to its field."""
        for field, message in error.errors:
            name = CHANNEL_FIELD_FOR.get(field, field)
            if name in self.fields and name not in self.errors:
                self.add_error(name, labelled(self._label(name), message))
            elif name not in self.fields:
                self.add_error(None, f"{field}: {message}")


def channel_initial(channel: AlertChannel) -> dict:
    """The edit form's values. Only admins edit channels, and admins see secrets."""
    config = channel.config
    recipients = config.get("recipients") or []
    return {
        "name": channel.name,
        "kind": channel.kind,
        "url": config.get("url", "") if channel.kind == "webhook" else "",
        "slack_url": config.get("webhook_url", ""),
        "slack_channel": config.get("channel", ""),
        "recipients": ", ".join(recipients) if isinstance(recipients, list) else recipients,
        "routing_key": config.get("routing_key", ""),
        "events_url": config.get("events_url", ""),
        "enabled": channel.enabled,
        "on_degraded": channel.on_degraded,
        "on_exposure": channel.on_exposure,
        "remind_every_s": channel.remind_every_s,
    }


class ImportForm(forms.Form):
    file = forms.FileField(required=False, label="healthcheck.yml")
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "class": "mono"}),
        required=False,
        label="or paste it",
    )
    replace = forms.BooleanField(required=False, label="Remove checks that are not in the file")
