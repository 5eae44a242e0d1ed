"""The range of TCP and UDP port numbers, in one place for every layer.

No Django: the project, the apps and their Django-free helpers (free ports, stopping) all import
it. The pure engines (`ports.inventory`, `health.probes`) may not, and need not: they only report
ports the kernel gave them.
"""

from __future__ import annotations

# Port 0 asks the kernel to pick one: no listener ever holds it.
PORT_MIN = 1
# Port fields are 16 bits wide in TCP and UDP headers.
PORT_MAX = 65535


def is_port(value: object) -> bool:
    """True for an int that can name a port; a bool is an int to Python but never a port."""
    return not isinstance(value, bool) and isinstance(value, int) and PORT_MIN <= value <= PORT_MAX


def validate_port(name: str, value: object) -> None:
    """Raise ValueError naming the argument `name` unless `value` is a port number."""
    if not is_port(value):
        raise ValueError(
            f"{name} must be an integer between {PORT_MIN} and {PORT_MAX}, got {value!r}"
        )
