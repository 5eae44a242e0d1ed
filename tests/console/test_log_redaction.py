"""No log line and no audit row holds a sign-in link's token: used, unused or refused."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.test import Client

from console.foundation.models import AuditEntry
from console.foundation.secret_paths import redact_path
from console.security.first_run import account_needing_link
from console.security.models import SignInLink
from ports.free_ports import find_free_port

ROOT = Path(__file__).resolve().parents[2]
ROOT_FLAG = ["--allow-root"] if os.geteuid() == 0 else []


def test_it_redacts_the_token_and_nothing_else():
    assert redact_path("/login/link/abc-DEF_123/") == "/login/link/…/"
    assert redact_path("Gone: /login/link/abc/") == "Gone: /login/link/…/"
    assert redact_path("/ports/5000/") == "/ports/5000/"


@pytest.mark.django_db
def test_request_logs_never_hold_the_token(client, caplog):
    user, _ = account_needing_link()
    token = SignInLink.issue(user)
    path = f"/login/link/{token}/"
    caplog.set_level(logging.DEBUG)
    # django.request is at ERROR in settings; an operator may lower it, and then its 410
    # warning ("Gone: /login/link/...") must still be redacted.
    caplog.set_level(logging.DEBUG, logger="django.request")

    assert client.get(path).status_code == 200  # unused: the button
    refused = Client(enforce_csrf_checks=True)
    assert refused.post(path).status_code == 403  # CSRF's own warning names the path
    assert client.post(path).status_code == 302  # used
    assert client.post(path).status_code == 410  # used up

    messages = [record.getMessage() for record in caplog.records]
    assert not [message for message in messages if token in message]
    assert token not in caplog.text
    requests = [m for m in messages if "/login/link/" in m and m.startswith(("GET", "POST"))]
    assert len(requests) == 4
    assert all("/login/link/…/" in message for message in requests)
    assert any(m.startswith("Gone: /login/link/…/") for m in messages)
    assert any(m.startswith("Forbidden (CSRF") for m in messages)
    # The CSRF refusal is audited, with the path redacted there too.
    assert not AuditEntry.objects.filter(target__contains=token).exists()
    assert AuditEntry.objects.filter(target="POST /login/link/…/").exists()


def test_a_real_server_logs_no_token(tmp_path):
    """`manage.py serve` with debug logging everywhere: uvicorn's lines and ours alike."""
    port = find_free_port(21000)[0]
    env = {
        **os.environ,
        "CONSOLE_DATA_DIR": str(tmp_path),
        "CONSOLE_LOG_LEVEL": "DEBUG",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serve",
            *ROOT_FLAG,
            "--port",
            str(port),
            "--log-level",
            "debug",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        from tests.conftest import wait_until

        assert wait_until(lambda: "/login/link/" in _read(log), timeout=60, interval=0.2)
        link = re.search(r"http://\S+/login/link/[^/\s]+/", _read(log)).group(0)
        token = link.rstrip("/").rsplit("/", 1)[1]
        assert wait_until(lambda: _status(link) == 200, timeout=30, interval=0.2)
        assert _status(link, post=True) == 403  # no CSRF cookie: Django's CSRF warning
        assert _status(link.replace(token, token[:-2] + "xx")) == 410  # a wrong token: Gone
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)  # our own child, by pid
        process.wait(timeout=20)
    lines = _read(log).splitlines()
    # The one line that must show the link is the first-run message on stdout.
    leaking = [line for line in lines if token in line and not line.lstrip().startswith("http")]
    assert leaking == []
    assert any("/login/link/…/" in line for line in lines)


def _read(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()


def _status(url: str, *, post: bool = False) -> int:
    request = urllib.request.Request(url, data=b"" if post else None)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0
