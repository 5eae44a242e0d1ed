from __future__ import annotations

import os

from console.foundation.limits import PORT_MAX, PORT_MIN
from console.foundation.roles import role_of
from console.security.role_words import role_powers, role_words
from ports.stopping import DEFAULT_GRACE_SECONDS


def console(request) -> dict:
    match = getattr(request, "resolver_match", None)
    nav = ""
    if match is not None:
        nav = "free" if match.view_name == "ports:free" else match.namespace
        if match.namespace == "console":
            nav = match.url_name or ""
        elif request.path.startswith("/api/"):
            nav = "api"  # ninja names its namespace after the API's version
    role = role_of(getattr(request, "user", None)) or ""
    return {
        "nav": nav,
        "console_role": role,
        # The user menu: "ada — admin (administrator)", with what the role may do as its title.
        "console_role_words": role_words(role),
        "console_role_powers": role_powers(role),
        "console_version": "0.1.0",
        "console_pid": os.getpid(),
        "console_bind": os.environ.get("CONSOLE_BOUND", "not serving"),
        # Templates state the limits the forms and the API enforce, from the same constants.
        "port_min": PORT_MIN,
        "port_max": PORT_MAX,
        "default_grace_seconds": DEFAULT_GRACE_SECONDS,
    }
