"""What a valid check is: one validator shared by the API, the forms and healthcheck.yml.

Errors name the field (`target.url`, `timeout_s`) so every caller can point at it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from django.conf import settings

from console.foundation.limits import PORT_MAX, PORT_MIN
from health import outbound
from health.models import CHECK_TYPES
from health.probes import query as query_probe
from health.probes.query import sqlite_path
from health.secrets import redact_url

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_INTERVAL_S = 86400
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class InvalidCheck(ValueError):
    """A definition's problems, each naming its field; `field` and `message` are the first.

    Validation goes on after a problem, so a form can mark every bad field at once.
    """

    def __init__(self, field: str, message: str, errors: list[tuple[str, str]] | None = None):
        self.errors = errors or [(field, message)]
        super().__init__("; ".join(f"{name}: {text}" for name, text in self.errors))
        self.field = field
        self.message = message

    @classmethod
    def of(cls, errors: list[tuple[str, str]]) -> InvalidCheck:
        return cls(errors[0][0], errors[0][1], errors)


class Problems:
    """Collects InvalidCheck problems across independent steps, then raises them together."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def take(self, step: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        try:
            return step(*args)
        except InvalidCheck as error:
            self.found.extend(error.errors)
            return default

    def add(self, field: str, message: str) -> None:
        self.found.append((field, message))

    def fields(self) -> set[str]:
        return {field for field, _ in self.found}

    def raise_any(self) -> None:
        if self.found:
            raise InvalidCheck.of(self.found)


COMMAND_CHECKS_OFF = (
    "command checks are off in LAN mode; an admin can allow them on the Security page "
    "(or start the console with CONSOLE_ALLOW_COMMAND_CHECKS=1)"
)
QUERY_SCHEMES = {"postgres", "postgresql", "mysql", "mariadb", "sqlite"}
# A check's one statement must read: the database enforces it, and this refuses the obvious
# rest (ATTACH, VACUUM INTO, COPY ... TO) with a clear message before anything connects.
READ_STATEMENTS = ("select", "with", "values", "table", "show", "explain")


def command_checks_allowed() -> bool:
    """Off in LAN mode unless an admin allows them: the one switch, the Security page's."""
    from console.foundation import runtime_settings

    return runtime_settings.command_checks_allowed()


# A timeout nobody chose: 5 s, or 80% of a shorter interval so that a run ends before the next.
DEFAULT_TIMEOUT_S = 5.0
TIMEOUT_SHARE = 0.8


def default_timeout(interval_s: float) -> float:
    return min(DEFAULT_TIMEOUT_S, round(interval_s * TIMEOUT_SHARE, 3))


def validate(data: dict) -> dict:
    """A normalised copy of a check definition, or InvalidCheck naming every bad field.

    Independent fields are judged independently, so one answer lists all of their problems;
    a comparison (timeout against interval) is made once both sides are valid.
    """
    problems = Problems()
    kind = data.get("type")
    if kind not in CHECK_TYPES:
        problems.add("type", f"unknown type {kind!r}; one of {', '.join(CHECK_TYPES)}")
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 200:
        problems.add("name", "a name of 1-200 characters is required")
    service = str(data.get("service") or "").strip()
    if len(service) > 100:
        problems.add("service", "at most 100 characters")
    interval = problems.take(_interval, data)
    timeout = problems.take(_timeout, data, interval)
    warn = problems.take(_optional_ms, data, "warn_ms")
    crit = problems.take(_optional_ms, data, "crit_ms")
    if warn and crit and warn > crit:
        problems.add("warn_ms", "the degraded threshold must not exceed the down threshold")
    if crit and timeout and crit > timeout * 1000:
        problems.add("crit_ms", "is longer than the timeout, so it could never apply")
    counts = {}
    for field, default in (("failures_before_down", 2), ("successes_before_up", 1)):
        counts[field] = problems.take(_count, data, field, default)
    target = data.get("target") or {}
    if not isinstance(target, dict):
        problems.add("target", "must be an object")
    elif kind in TARGETS:
        target = problems.take(TARGETS[kind], target)
    channels = problems.take(_channel_names, data)
    problems.raise_any()
    definition = {
        "name": name,
        "service": service,
        "type": kind,
        "target": target,
        "interval_s": interval,
        "timeout_s": timeout,
        "warn_ms": warn,
        "crit_ms": crit,
        **counts,
        "enabled": bool(data.get("enabled", True)),
    }
    if channels is not None:
        definition["channels"] = channels
    return definition


def _channel_names(data: dict) -> list[str] | None:
    """The alert channels a check names (absent: not given; empty: every enabled channel)."""
    names = data.get("channels")
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, list | tuple):
        raise InvalidCheck("channels", "a list of alert channel names")
    if not all(isinstance(name, str) and 0 < len(name.strip()) <= 100 for name in names):
        raise InvalidCheck("channels", "a list of alert channel names")
    return sorted({name.strip() for name in names})


# A field its form could not read (it says so itself): judged no further, compared with nothing.
UNREADABLE = object()


def _interval(data: dict) -> int | None:
    if data.get("interval_s") is UNREADABLE:
        return None
    interval = _number(data, "interval_s", 30, integer=True, what="a number of seconds")
    if not 1 <= interval <= MAX_INTERVAL_S:
        raise InvalidCheck("interval_s", f"must be between 1 and {MAX_INTERVAL_S} seconds")
    return interval


def _timeout(data: dict, interval: int | None) -> float | None:
    if data.get("timeout_s") is UNREADABLE:
        return None
    timeout = _number(data, "timeout_s", None, what="a number of seconds")
    if timeout is None:
        return default_timeout(interval or 30)
    if timeout <= 0:
        raise InvalidCheck("timeout_s", "must be more than 0 seconds")
    if interval is not None and timeout > interval:
        raise InvalidCheck("timeout_s", f"{timeout:g} s is longer than the interval ({interval} s)")
    return timeout


def _count(data: dict, field: str, default: int) -> int | None:
    if data.get(field) is UNREADABLE:
        return None
    value = _number(data, field, default, integer=True, what="a whole number")
    if not 1 <= value <= 100:
        raise InvalidCheck(field, "must be between 1 and 100")
    return value


def _number(data: dict, field: str, default, *, integer: bool = False, what: str = "a number"):
    value = data.get(field)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InvalidCheck(field, f"must be {what}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidCheck(field, f"must be {what}, not {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidCheck(field, f"must be {what}")
    if integer:
        if number != int(number):
            raise InvalidCheck(field, "must be a whole number")
        return int(number)
    return number


def _optional_ms(data: dict, field: str) -> int | None:
    if data.get(field) is UNREADABLE:
        return None
    value = _number(data, field, None, integer=True, what="a number of milliseconds")
    if value is None or value == 0:
        return None
    if value < 0 or value > 3_600_000:
        raise InvalidCheck(field, "must be between 1 and 3600000 ms")
    return value


def _host(target: dict, default: str = "127.0.0.1") -> str:
    """The target's host, judged by the outbound policy (for every type that connects to one)."""
    host = str(target.get("host") or default).strip()
    if len(host) > 253 or not re.fullmatch(r"[A-Za-z0-9._:\-\[\]]+", host):
        raise InvalidCheck("target.host", f"{host!r} is not a host name or address")
    host = host.strip("[]")
    _judge_host("target.host", host)
    return host


def _judge_host(field: str, host: str) -> None:
    """Refuse a host the outbound policy refuses now, naming the address and the setting.

    A name that does not resolve now is saved: every run judges what it connects to anyway."""
    if "${" in host:
        return  # a placeholder: judged at each run, once it is resolved
    if reason := outbound.refusal_for_host(host):
        raise InvalidCheck(field, reason)


def _port(target: dict, default: int | None = None) -> int:
    value: Any = target.get("port", default)  # anything: int() refusals are answered below
    if value is None or value == "":
        raise InvalidCheck("target.port", f"is required: a number from {PORT_MIN} to {PORT_MAX}")
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise InvalidCheck("target.port", f"{value!r} is not a port number") from None
    if not PORT_MIN <= port <= PORT_MAX:
        raise InvalidCheck("target.port", f"must be between {PORT_MIN} and {PORT_MAX}")
    return port


def _text(target: dict, field: str, limit: int = 2000) -> str:
    value = target.get(field) or ""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidCheck(f"target.{field}", f"must be text of at most {limit} characters")
    return value


def _http(target: dict) -> dict:
    problems = Problems()
    url = problems.take(_url, target, default="")
    method = str(target.get("method") or "GET").upper()
    if method not in METHODS:
        problems.add("target.method", f"one of {', '.join(METHODS)}")
    statuses = problems.take(_statuses, target)
    headers = target.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and _HEADER_NAME.match(k) and isinstance(v, str) and "\n" not in v
        for k, v in headers.items()
    ):
        problems.add("target.headers", "an object of header names to text values")
    max_bytes = problems.take(_max_bytes, target)
    body = problems.take(_text, target, "body", 100_000)
    body_contains = problems.take(_text, target, "body_contains", 500)
    problems.raise_any()
    return {
        "url": url,
        "method": method,
        "headers": headers,
        "body": body,
        "expected_status": statuses,
        "body_contains": body_contains,
        "verify_tls": bool(target.get("verify_tls", True)),
        "follow_redirects": bool(target.get("follow_redirects", False)),
        "max_bytes": max_bytes,
    }


def _url(target: dict) -> str:
    url = str(target.get("url") or "").strip()
    if not url:
        raise InvalidCheck("target.url", "is required: an http:// or https:// URL")
    parsed = urlparse(url)
    try:
        parsed.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        raise InvalidCheck("target.url", f"{url!r} has an invalid port") from None
    if parsed.scheme not in {"http", "https"} or not parsed.hostname or " " in url:
        raise InvalidCheck(
            "target.url",
            f"{url!r} is not an http:// or https:// URL (e.g. http://127.0.0.1:5000/health)",
        )
    _judge_host("target.url", parsed.hostname)
    return url


def _statuses(target: dict) -> list[int]:
    statuses = target.get("expected_status") or [200]
    if isinstance(statuses, int | str):
        statuses = [statuses]
    try:
        statuses = sorted({int(code) for code in statuses})
    except (TypeError, ValueError):
        raise InvalidCheck("target.expected_status", "a list of HTTP status codes") from None
    if not all(100 <= code <= 599 for code in statuses):
        raise InvalidCheck("target.expected_status", "status codes are between 100 and 599")
    return statuses


def _max_bytes(target: dict) -> int:
    try:
        max_bytes = int(target.get("max_bytes") or 1024 * 1024)
    except (TypeError, ValueError):
        raise InvalidCheck("target.max_bytes", "a number of bytes") from None
    if not 1024 <= max_bytes <= 50 * 1024 * 1024:
        raise InvalidCheck("target.max_bytes", "between 1 KiB and 50 MiB")
    return max_bytes


def _tcp(target: dict) -> dict:
    problems = Problems()
    checked = {
        "host": problems.take(_host, target),
        "port": problems.take(_port, target),
        "send": problems.take(_text, target, "send", 2000),
        "expect": problems.take(_text, target, "expect", 500),
    }
    problems.raise_any()
    return checked


def _redis(target: dict) -> dict:
    problems = Problems()
    checked = {
        "host": problems.take(_host, target),
        "port": problems.take(_port, target, 6379),
        "username": problems.take(_text, target, "username", 200),
        "password": problems.take(_text, target, "password", 500),
    }
    problems.raise_any()
    return checked


def _query(target: dict) -> dict:
    if target.get("database"):
        raise InvalidCheck(
            "target.database",
            "query checks no longer take a Django database alias; give a dsn "
            "(postgresql://user@127.0.0.1:5432/db, mysql://user@127.0.0.1/db or sqlite:////path)",
        )
    dsn = str(target.get("dsn") or "").strip()
    if not dsn:
        raise InvalidCheck(
            "target.dsn", "add dsn: postgresql://..., mysql://... or sqlite:////path"
        )
    if len(dsn) > 2000:
        raise InvalidCheck("target.dsn", "at most 2000 characters")
    # A DSN that is a ${VAR} placeholder is judged when it is resolved, at each run.
    if not dsn.startswith("${"):
        if urlparse(dsn).scheme not in QUERY_SCHEMES:
            raise InvalidCheck(
                "target.dsn", "a postgresql://, mysql:// (or mariadb://) or sqlite:////abs/path URL"
            )
        if reason := own_database_refusal(dsn):
            raise InvalidCheck("target.dsn", reason)
        _judge_dsn_hosts(dsn)
    query = _text(target, "query", 2000).strip() or "SELECT 1"
    if reason := statement_refusal(query):
        raise InvalidCheck("target.query", reason)
    expect = target.get("expect")
    if (expect is not None and not isinstance(expect, str | int | float)) or isinstance(
        expect, bool
    ):
        raise InvalidCheck("target.expect", "a value to compare the first column with")
    checked = {"dsn": dsn, "query": query}
    if expect not in (None, ""):
        checked["expect"] = str(expect)
    return checked


def _judge_dsn_hosts(dsn: str) -> None:
    """Every host a DSN connects to (libpq: each of a list, or its hostaddr), judged like a
    tcp check's host; Unix sockets are this machine."""
    try:
        hosts = query_probe.network_hosts(dsn)
    except query_probe.InvalidDsn as error:
        if "${" in dsn:
            return  # a placeholder may be what makes it readable: judged at each run
        raise InvalidCheck("target.dsn", str(error)) from None
    for host in hosts:
        _judge_host("target.dsn", host)


def statement_refusal(query: str) -> str | None:
    """Why a query check's statement is refused before it runs, or None."""
    body = query.strip().rstrip(";").strip()
    if ";" in body:
        return "one statement per check (no ';' inside it)"
    first = body.split(None, 1)[0].lower() if body else ""
    if first not in READ_STATEMENTS:
        return f"a query check reads: start with {', '.join(s.upper() for s in READ_STATEMENTS)}"
    return None


def own_database_refusal(dsn: str) -> str | None:
    """Refuse a DSN that reaches the console's own database: its sessions and password hashes
    are not for reading through a check, whoever made it."""
    parsed = urlparse(dsn)
    for alias, config in settings.DATABASES.items():
        engine = config["ENGINE"]
        if parsed.scheme == "sqlite" and engine.endswith("sqlite3"):
            same = _same_file(sqlite_path(dsn), str(config["NAME"]))
        elif parsed.scheme in {"postgres", "postgresql"} and engine.endswith("postgresql"):
            same = _same_postgres(dsn, config)
        else:
            same = False
        if same:
            return _OWN_DATABASE.format(alias=alias)
    return None


_OWN_DATABASE = (
    "this DSN reaches the console's own database ({alias}); a query check never reads the "
    "console's data: point it at your application's database"
)


def _same_file(path: str, own: str) -> bool:
    if own in {"", ":memory:"} or own.startswith("file:"):
        return False
    try:
        # samefile follows symlinks and sees hard links: the same inode is the same database.
        return os.path.samefile(path, own)
    except OSError:
        return os.path.realpath(path) == os.path.realpath(own)


def _same_postgres(dsn: str, config: dict) -> bool:
    """Whether any host libpq would try (each of a list, a hostaddr before its name) is the
    console's server, on its port, with its database name."""
    try:
        params = query_probe.postgres_params(dsn)
        hosts = query_probe.postgres_hosts(params)
    except query_probe.InvalidDsn:
        return False  # libpq cannot read it either: it connects nowhere
    name = params.get("dbname") or params.get("user") or ""
    if name != str(config.get("NAME") or ""):
        return False
    own_port = _postgres_port(config.get("PORT"))
    own_local = _is_local(str(config.get("HOST") or ""))
    return any(
        _postgres_port(entry.port) == own_port
        and (entry.is_socket or _is_local(entry.judged)) == own_local
        for entry in hosts
    )


def _postgres_port(value) -> int:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else 5432


def _is_local(host: str) -> bool:
    """Loopback, a Unix socket directory, or one of this machine's own addresses."""
    if not host or host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback or host in _own_addresses()
    except ValueError:
        try:
            return any(
                ipaddress.ip_address(info[4][0]).is_loopback or info[4][0] in _own_addresses()
                for info in socket.getaddrinfo(host, None)
            )
        except OSError:
            return False


def _own_addresses() -> set[str]:
    import psutil

    return {
        address.address.split("%", 1)[0]
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family in (socket.AF_INET, socket.AF_INET6)
    }


def _command(target: dict) -> dict:
    argv = target.get("argv")
    if isinstance(argv, str) or not argv or not all(isinstance(arg, str) for arg in argv):
        raise InvalidCheck("target.argv", "a non-empty list of arguments (no shell is used)")
    if len(argv) > 100 or sum(len(arg) for arg in argv) > 4000:
        raise InvalidCheck("target.argv", "too long")
    try:
        expect_exit = int(target.get("expect_exit", 0))
    except (TypeError, ValueError):
        raise InvalidCheck("target.expect_exit", "an exit code") from None
    return {
        "argv": list(argv),
        "expect_exit": expect_exit,
        "expect_output": _text(target, "expect_output", 500),
    }


TARGETS = {"http": _http, "tcp": _tcp, "redis": _redis, "query": _query, "command": _command}


def describe_target(kind: str, target: dict) -> str:
    """One line for tables: the URL, host:port, database or command."""
    if kind == "http":
        return f"{target.get('method', 'GET')} {redact_url(target.get('url', ''))}"
    if kind in {"tcp", "redis"}:
        host = target.get("host", "")
        shown = f"[{host}]" if _is_v6(host) else host
        return f"{shown}:{target.get('port', '')}"
    if kind == "query":
        where = target.get("database") or redact_url(target.get("dsn", ""))
        return f"{where}: {target.get('query', '')}"
    if kind == "command":
        return " ".join(target.get("argv") or [])
    return ""


def _is_v6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False
