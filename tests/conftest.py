"""Shared fixtures: users of each role, bearer tokens, and child processes that hold real ports.

Every process a test starts is ended by its own pid in a finally block; nothing else is signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_configure(config) -> None:
    """Passwords are hashed with MD5 in this process's tests: the real hasher (PBKDF2, over a
    million rounds) cost about half a second per user made or password checked, which was most of
    the suite's time, and the hash algorithm is not what any test here is about. Consoles that
    tests start as subprocesses keep the real one."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", ""):
        # A mutant's pytest is forked from mutmut's fork server, which holds every test module
        # it collected: without this, each collection walks that whole inherited heap, and the
        # collections at the end of a session cost 0.5 of a mutant's 0.8 CPU-seconds.
        import gc

        gc.freeze()


def pytest_collection_modifyitems(config, items) -> None:
    """Under `make mutate`, a mutant's tests run fastest first, so a killed mutant dies at the
    first cheap test that notices (mutmut runs with `-x`). mutmut orders them so itself when it
    forks from its own process, but not from the fork server this project needs
    (pyproject.toml, `[tool.mutmut]`); the durations are those of its statistics run."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if "__mutmut_" not in mutant:  # not a mutant: the statistics run, the clean run, make test
        return
    import json
    from pathlib import Path

    try:
        durations = json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))


def skip_or_fail(reason: str) -> None:
    """A missing service or browser skips locally but fails under CI, where it must be there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


@dataclass
class Child:
    process: subprocess.Popen
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def create_time(self) -> float:
        import psutil

        return round(psutil.Process(self.pid).create_time(), 2)

    def stop(self) -> None:
        # Only ever our own child, by its pid.
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


LISTEN_SCRIPT = textwrap.dedent(
    """
    import signal, socket, sys, time
    if sys.argv[3] == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
    kind = socket.SOCK_DGRAM if sys.argv[4] == "udp" else socket.SOCK_STREAM
    s = socket.socket(family, kind)
    s.bind((sys.argv[1], int(sys.argv[2])))
    if kind == socket.SOCK_STREAM:
        s.listen(16)
    print(s.getsockname()[1], flush=True)
    while True:
        time.sleep(3600)
    """
)


def spawn_listener(
    host: str = "127.0.0.1", port: int = 0, *, ignore_term: bool = False, proto: str = "tcp"
) -> Child:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            LISTEN_SCRIPT,
            host,
            str(port),
            "ignore-term" if ignore_term else "-",
            proto,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        process.wait()
        raise RuntimeError(f"child failed to listen on {host}:{port}")
    return Child(process, int(line))


def jwt_claims(user, **override) -> dict:
    """A valid access token's claims for `user`; an override of None leaves that claim out."""
    from django.conf import settings

    now = int(time.time())
    claims = {
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "sub": str(user.pk),
        "iat": now,
        "exp": now + 60,
        "jti": "x" * 32,
        "typ": "access",
        "scope": "read",
    }
    claims.update(override)
    return {key: value for key, value in claims.items() if value is not None}


@pytest.fixture
def listening_child() -> Iterator:
    """Factory: listening_child(host=..., ignore_term=...) -> Child, all stopped at teardown."""
    children: list[Child] = []

    def start(**kwargs) -> Child:
        child = spawn_listener(**kwargs)
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            child.stop()


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(interval)
    return predicate()


async def wait_until_async(predicate, timeout: float = 5.0, interval: float = 0.05):
    """wait_until for a test on the event loop: polls without blocking the loop."""
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        await asyncio.sleep(interval)
    return predicate()


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    def make(username: str, role: str = "viewer", password: str = "correct-horse-battery-9"):
        user = get_user_model().objects.create_user(username=username, password=password)
        if role == "superuser":
            user.is_superuser = user.is_staff = True
            user.save()
        else:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    return make


@pytest.fixture
def admin_user(make_user):
    return make_user("ada", "admin")


@pytest.fixture
def operator_user(make_user):
    return make_user("olive", "operator")


@pytest.fixture
def viewer_user(make_user):
    return make_user("vic", "viewer")


@pytest.fixture
def personal_token():
    """personal_token(user, scopes=["read"], days=30) -> (record, raw JWT)."""
    from console.foundation import tokens

    def make(user, scopes=("read",), days: int = 30):
        return tokens.issue_personal(user, "test token", list(scopes), days)

    return make


@pytest.fixture
def bearer():
    """bearer(user) -> headers with a fresh access token for that user."""
    from console.foundation import tokens

    def headers(user) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.issue_pair(user)['access']}"}

    return headers


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 that keeps what alerts post to it (health, security)."""
    from tests.health.servers import WebhookReceiver

    server = WebhookReceiver()
    try:
        yield server
    finally:
        server.stop()
