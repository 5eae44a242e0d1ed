"""URL paths that carry a secret, and their redaction for logs and the audit log.

The one-time sign-in link is `/login/link/<token>/`: whoever reads the token from a log file
within its 15 minutes signs in as the admin it was made for. So no log line, and no audit row,
ever holds it: request logs, Django's own `django.request` / `django.security.*` warnings
("Gone: /login/link/...", "Forbidden (CSRF token missing.): /login/link/...") and uvicorn's.
"""

from __future__ import annotations

import logging
import re

REDACTED = "…"
# Anything after /login/link/ up to the next slash, wherever it appears in a message.
_SIGN_IN_LINK = re.compile(r"(/login/link/)[^/\s\"'?#]+")


def redact_path(path: str) -> str:
    """`/login/link/<token>/` -> `/login/link/…/`; any other path unchanged."""
    return _SIGN_IN_LINK.sub(rf"\g<1>{REDACTED}", path)


class RedactSecretPaths(logging.Filter):
    """A logging filter that rewrites a record's message without the secrets of `redact_path`.

    Attached to the loggers that print request paths (settings.LOGGING, console.server), so it
    runs before any handler sees the record: a file, the terminal, or a test's capture.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed call: logging reports it itself
        redacted = redact_path(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            # A traceback's exception message may quote the path too (a 500 on the link).
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_path(record.exc_text)
        return True


_FORMATTER = logging.Formatter()
