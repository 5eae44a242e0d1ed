"""The check and channel forms. Validation is `health.specs`, shared with the API and YAML."""

from __future__ import annotations

import re
import shlex

from django import forms

from console.foundation.limits import PORT_MAX, PORT_MIN
from health import specs
from health.models import CHANNEL_KINDS, CHECK_TYPES, Check
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


class CheckForm(forms.Form):
    name = forms.CharField(max_length=200)
    service = forms.CharField(max_length=100, required=False, help_text="groups checks on the page")
    type = forms.ChoiceField(choices=[(t, TYPE_LABELS[t]) for t in CHECK_TYPES])
    interval_s = forms.IntegerField(label="Interval (s)", initial=30, min_value=1)
    timeout_s = forms.FloatField(label="Timeout (s)", initial=5, min_value=0.001)
    warn_ms = forms.IntegerField(label="Degraded above (ms)", required=False, min_value=0)
    crit_ms = forms.IntegerField(label="Down above (ms)", required=False, min_value=0)
    failures_before_down = forms.IntegerField(initial=2, min_value=1, max_value=100)
    successes_before_up = forms.IntegerField(initial=1, min_value=1, max_value=100)
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
    port = forms.IntegerField(required=False, min_value=PORT_MIN, max_value=PORT_MAX)
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
    expect_exit = forms.IntegerField(label="Expected exit code", required=False, initial=0)
    expect_output = forms.CharField(label="Output contains", required=False, max_length=500)

    def __init__(self, *args, instance: Check | None = None, reveal: bool = False, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            # Secrets are shown to admins only; a redacted value posted back keeps the stored one.
            kwargs["initial"] = initial_from(instance, reveal)
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        kind = data["type"]
        try:
            target = self._target(kind, data)
            self.definition = specs.validate({**data, "target": target})
        except specs.InvalidCheck as error:
            field = FIELD_FOR.get(error.field, error.field)
            self.add_error(field if field in self.fields else None, error.message)
        return data

    def _target(self, kind: str, data: dict) -> dict:
        if kind == "http":
            try:
                statuses = [int(s) for s in re.split(r"[\s,]+", data["expected_status"]) if s]
            except ValueError:
                raise specs.InvalidCheck(
                    "target.expected_status", "numbers such as 200, 204"
                ) from None
            headers = {}
            for line in (data["headers"] or "").splitlines():
                if line.strip():
                    name, colon, value = line.partition(":")
                    if not colon:
                        raise specs.InvalidCheck("target.headers", f"{line!r} has no ':'")
                    headers[name.strip()] = value.strip()
            return {
                "url": data["url"],
                "method": data["method"],
                "expected_status": statuses or [200],
                "body_contains": data["body_contains"],
                "headers": headers,
                "body": data["body"],
                "verify_tls": data["verify_tls"],
                "follow_redirects": data["follow_redirects"],
            }
        if kind in {"tcp", "redis"}:
            target = {
                "host": data["host"],
                "port": data["port"] or (6379 if kind == "redis" else None),
            }
            if kind == "tcp":
                target.update(send=data["send"], expect=data["expect"])
            else:
                password = data["password"]
                if not password and self.instance is not None:
                    password = self.instance.target.get("password", "")
                target["password"] = password
            return target
        if kind == "query":
            return {"dsn": data["dsn"], "query": data["query"], "expect": data["query_expect"]}
        try:
            argv = shlex.split(data["argv"] or "")
        except ValueError as error:
            raise specs.InvalidCheck("target.argv", str(error)) from None
        return {
            "argv": argv,
            "expect_exit": data["expect_exit"] or 0,
            "expect_output": data["expect_output"],
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
        "timeout_s": 5,
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


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=[(k, k) for k in CHANNEL_KINDS])
    url = forms.CharField(label="Webhook / Slack URL", required=False, max_length=2000)
    slack_channel = forms.CharField(label="Slack channel", required=False, max_length=100)
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
    on_degraded = forms.BooleanField(label="Also alert on degraded", required=False)
    on_exposure = forms.BooleanField(
        label="Also alert on a dangerous exposure (a debugger or open database on all interfaces)",
        required=False,
    )
    remind_every_s = forms.IntegerField(
        label="Remind every (s, 0 = off)", required=False, min_value=0, initial=0
    )

    def definition(self) -> dict:
        data = self.cleaned_data
        kind = data["kind"]
        config: dict = {}
        if kind == "webhook":
            config = {"url": data["url"]}
        elif kind == "slack":
            config = {"webhook_url": data["url"]}
            if data["slack_channel"]:
                config["channel"] = data["slack_channel"]
        elif kind == "email":
            config = {"recipients": data["recipients"]}
        elif kind == "pagerduty":
            config = {"routing_key": data["routing_key"]}
            if data["events_url"]:
                config["events_url"] = data["events_url"]
        return {
            "name": data["name"],
            "kind": kind,
            "config": config,
            "on_degraded": data["on_degraded"],
            "on_exposure": data["on_exposure"],
            "remind_every_s": data["remind_every_s"] or 0,
        }


class ImportForm(forms.Form):
    file = forms.FileField(required=False, label="healthcheck.yml")
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "class": "mono"}),
        required=False,
        label="or paste it",
    )
    replace = forms.BooleanField(required=False, label="Remove checks that are not in the file")
