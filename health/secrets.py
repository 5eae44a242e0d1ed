"""Secrets in checks and alert channels: which fields hold them, `${VAR}` placeholders, redaction.

Which fields are secret is written once, here, for the three things that need to know: the
placeholder rule (`${VAR}` is allowed only in a secret field, only in an admin's import, only for
a variable with the allowed prefix), resolution at use (the placeholder is what is stored, so the
value never sits in the database and an export writes `${SLACK_WEBHOOK}` back), and redaction
(only admins see secrets: every other reader gets `***` in their place).

Placeholders are resolved when a probe runs or an alert is sent, from the server's environment,
and the prefix is checked again then: a row edited behind the console's back cannot reach
`CONSOLE_JWT_KEY` either.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Query-string keys that carry a database password (libpq accepts `?password=`).
_SECRET_QUERY_KEYS = {"password", "sslpassword", "passfile"}

# Secret fields by check type: plain fields, and fields whose every value is secret (headers).
CHECK_SECRETS: dict[str, tuple[str, ...]] = {
    "http": ("url", "headers"),  # the URL's userinfo, every header value
    "tcp": ("send",),  # what is sent may be a credential (an AUTH line)
    "redis": ("password",),
    "query": ("dsn",),
    "command": (),
}
CHANNEL_SECRETS = ("url", "webhook_url", "events_url", "routing_key", "headers")
# Where a whole value is a secret, versus a URL whose userinfo alone is.
_URL_FIELDS = {"url"}


class PlaceholderError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def allowed_prefix() -> str:
    return os.environ.get("CONSOLE_IMPORT_ENV_PREFIX", "PORTSIDE_") or "PORTSIDE_"


def names_in(value: str) -> list[str]:
    return PLACEHOLDER.findall(value)


def _strings(value, path: str) -> Iterator[tuple[str, str]]:
    """(dotted path, string) for every string below `value`."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}")


def _secret_path(path: str, secret_fields: tuple[str, ...], root: str) -> bool:
    parts = path.split(".")
    # root.field (a plain secret) or root.headers.<name> (every header value).
    return len(parts) >= 2 and parts[0] == root and parts[1] in secret_fields


def stored_unchanged(stored: Mapping | None, root: str) -> Callable[[str, str], bool]:
    """`unchanged` for `check_placeholders`: whether the string at a dotted path ("target.url",
    "config.headers.X-Key") is the one already stored under `root`. Nothing is unchanged when
    nothing is stored yet (a new check or channel, or a check whose type changes)."""

    def unchanged(path: str, value: str) -> bool:
        if stored is None:
            return False
        node: object = {root: stored}
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        return node == value

    return unchanged


def check_placeholders(
    values: dict,
    *,
    root: str,
    secret_fields: tuple[str, ...],
    admin_import: bool,
    environ: Mapping[str, str] | None = None,
    unchanged: Callable[[str, str], bool] = lambda path, value: False,
) -> None:
    """Refuse every `${...}` that may not be stored; PlaceholderError names the field.

    `values` is {root: {...}} (a check's target, a channel's config). `unchanged(path, value)`
    says a string is what is stored already, so an operator's edit of other fields keeps an
    admin's placeholder without being allowed to add one.
    """
    environ = os.environ if environ is None else environ
    prefix = allowed_prefix()
    for path, text in _strings(values, ""):
        path = path.lstrip(".")
        found = names_in(text)
        if not found or unchanged(path, text):
            continue
        if not _secret_path(path, secret_fields, root):
            raise PlaceholderError(
                path,
                "${...} is only expanded in secret fields (passwords, keys, header values, "
                "DSNs, webhook URLs); write the value itself here",
            )
        if not admin_import:
            raise PlaceholderError(
                path, "${...} placeholders are accepted only in an admin's healthcheck.yml import"
            )
        for name in found:
            if not _NAME.match(name):
                raise PlaceholderError(path, f"${{{name}}} is not a variable name")
            if name.startswith("CONSOLE_") or not name.startswith(prefix):
                raise PlaceholderError(
                    path,
                    f"${{{name}}}: only variables starting with {prefix} can be used "
                    "(CONSOLE_IMPORT_ENV_PREFIX sets the prefix; CONSOLE_* never)",
                )
            if name not in environ:
                raise PlaceholderError(path, f"environment variable {name} is not set")


def resolve(value: str, environ: Mapping[str, str] | None = None) -> str:
    """A stored secret with its placeholders replaced, at the moment it is used."""
    if "${" not in value:
        return value
    environ = os.environ if environ is None else environ
    prefix = allowed_prefix()

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("CONSOLE_") or not name.startswith(prefix) or not _NAME.match(name):
            raise ValueError(f"${{{name}}} may not be used (only {prefix}* variables)")
        if name not in environ:
            raise ValueError(f"environment variable {name} is not set on the server")
        return environ[name]

    return PLACEHOLDER.sub(substitute, value)


def resolved_fields(data: dict, secret_fields: tuple[str, ...], environ=None) -> dict:
    """A copy of a target or channel config with its secret fields' placeholders resolved."""
    shown = dict(data)
    for name in secret_fields:
        value = shown.get(name)
        if isinstance(value, str):
            shown[name] = resolve(value, environ)
        elif isinstance(value, dict):
            shown[name] = {
                key: resolve(item, environ) if isinstance(item, str) else item
                for key, item in value.items()
            }
    return shown


# -- redaction ----------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL with a userinfo password and any password in the query string replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{host}" if colon else f"{REDACTED}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in _SECRET_QUERY_KEYS for key, _ in pairs):
            query = urlencode(
                [(k, REDACTED if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs],
                safe="*",
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_value(name: str, value):
    if not value:
        return value
    if isinstance(value, dict):
        return {key: REDACTED if item else item for key, item in value.items()}
    if name in _URL_FIELDS or name == "dsn":
        return redact_url(str(value))
    return REDACTED


def redact_target(kind: str, target: dict) -> dict:
    """What a non-admin sees of a check's target."""
    secret = CHECK_SECRETS.get(kind, ())
    return {
        key: (_redact_value(key, value) if key in secret else value)
        for key, value in target.items()
    }


def redact_channel_config(config: dict) -> dict:
    """What a non-admin sees of an alert channel's settings: the whole URL is the secret."""
    return {
        key: ({name: REDACTED for name in value} if isinstance(value, dict) else REDACTED)
        if key in CHANNEL_SECRETS and value
        else value
        for key, value in config.items()
    }


def keep_unchanged_secrets(kind: str, stored: dict, incoming: dict) -> dict:
    """An edit that sends a redacted value back unchanged keeps the stored secret.

    A non-admin's form or GET carries `***` where the secret was; writing that back must not
    replace the secret with asterisks, nor be a way to learn it.
    """
    merged = dict(incoming)
    for name in CHECK_SECRETS.get(kind, ()):
        old, new = stored.get(name), merged.get(name)
        if old is None or new is None:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            merged[name] = {
                key: old.get(key, value) if value == REDACTED else value
                for key, value in new.items()
            }
        elif new == _redact_value(name, old) or new == REDACTED:
            merged[name] = old
    return merged
