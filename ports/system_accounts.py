"""Which uids are system accounts: root, daemons (postgres, mysql, rabbitmq, ...) and nobody.

People's accounts are the uids from UID_MIN to UID_MAX of /etc/login.defs, the range `useradd`
gives out (1000-60000 on Debian, Ubuntu and Fedora); every uid outside it is a system account.
macOS has no login.defs and starts people at 501.
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

LOGIN_DEFS = Path("/etc/login.defs")
_SETTING = re.compile(r"^\s*(UID_MIN|UID_MAX)\s+(\d+)\s*$", re.MULTILINE)


def people_uids(text: str | None, platform: str = sys.platform) -> range:
    """The uids of people's accounts, from login.defs' text (None: not there)."""
    found = dict(_SETTING.findall(text or ""))
    low = int(found.get("UID_MIN", 501 if platform == "darwin" else 1000))
    high = int(found.get("UID_MAX", 60000))
    return range(low, high + 1)


@functools.cache
def _people() -> range:
    try:
        text = LOGIN_DEFS.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = None
    return people_uids(text)


def is_system_uid(uid: int) -> bool:
    return uid not in _people()
