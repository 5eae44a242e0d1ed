"""`manage.py serve` as a user runs it: a real process, a real port, a clean stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from console.management.commands.serve import resolve_bind
from ports.free_ports import find_free_port

ROOT = Path(__file__).resolve().parents[2]
# These machines run everything as root; serve refuses root unless told (tests/security covers it).
ROOT_FLAG = ["--allow-root"] if os.geteuid() == 0 else []


def _serve(tmp_path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "CONSOLE_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve", *ROOT_FLAG, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until(process: subprocess.Popen, pattern: str, timeout: float = 30) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"never saw {pattern!r}; output was:\n{''.join(lines)}")


def _stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)  # our own child, by pid
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        raise


def test_it_resolves_flag_then_environment_then_file_then_default(monkeypatch, settings, tmp_path):
    settings.CONSOLE_CONFIG_FILE = tmp_path / "portside.toml"
    monkeypatch.delenv("CONSOLE_PORT", raising=False)
    monkeypatch.delenv("CONSOLE_HOST", raising=False)
    assert resolve_bind(None, None) == ("127.0.0.1", "8000", "default", False)
    settings.CONSOLE_CONFIG_FILE.write_text('port = 8100\nhost = "::1"\n')
    assert resolve_bind(None, None)[:2] == ("::1", "8100")
    monkeypatch.setenv("CONSOLE_PORT", "8200")
    assert resolve_bind(None, None)[1:] == ("8200", "CONSOLE_PORT", False)
    assert resolve_bind("127.0.0.1", "8300") == ("127.0.0.1", "8300", "--port", False)
    assert resolve_bind(None, "auto")[1:] == ("8200", "CONSOLE_PORT", True)


def test_it_serves_prints_a_sign_in_link_and_stops_cleanly(tmp_path):
    port = find_free_port(20000)[0]
    process = _serve(tmp_path, "--port", str(port))
    try:
        lines = _read_until(process, r"/login/link/")
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}/" in output and "created the account 'admin'" in output
        link = re.search(r"(http://\S+/login/link/\S+/)", output).group(1)
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200 and r.headers["Server-Timing"] and r.headers["Date"]
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with urllib.request.urlopen(link, timeout=5) as page:
            assert b"Sign in as admin" in page.read()
    finally:
        code = _stop(process)
    assert code == 0
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "jwt_key").exists()


def test_it_names_the_holder_of_a_taken_port_and_the_next_free_one(tmp_path, listening_child):
    holder = listening_child(host="127.0.0.1")
    process = _serve(tmp_path, "--port", str(holder.port), "--no-migrate")
    output, _ = process.communicate(timeout=30)
    assert process.returncode != 0
    assert f"port {holder.port} is held by python" in output
    assert f"(pid {holder.pid})" in output
    assert "--port auto" in output


def test_it_takes_the_next_free_port_with_auto(tmp_path, listening_child, monkeypatch):
    holder = listening_child(host="127.0.0.1")
    monkeypatch.setenv("CONSOLE_PORT", str(holder.port))
    process = _serve(tmp_path, "--port", "auto")
    try:
        output = "".join(_read_until(process, r"serving at"))
        served = int(re.search(r":(\d+)/", output).group(1))
        assert served > holder.port
        with socket.create_connection(("127.0.0.1", served), timeout=10):
            pass
    finally:
        assert _stop(process) == 0


def test_it_skips_ports_the_project_registry_reserves_with_auto(
    tmp_path, listening_child, monkeypatch
):
    holder = listening_child(host="127.0.0.1")
    reserved = find_free_port(holder.port + 1)[0]
    env = {
        **os.environ,
        "CONSOLE_DATA_DIR": str(tmp_path),
        "DJANGO_SUPERUSER_PASSWORD": "a-long-enough-passphrase",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    registry_file = tmp_path / ".devports.yml"
    registry_file.write_text(f"projects:\n  neighbour: {{preferred_port: {reserved}}}\n")
    for command in (
        ["migrate", "-v0"],
        ["createsuperuser", "--noinput", "--username", "admin", "--email", ""],
        ["devports", "import", str(registry_file)],
    ):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    monkeypatch.setenv("CONSOLE_PORT", str(holder.port))
    process = _serve(tmp_path, "--port", "auto")
    try:
        output = "".join(_read_until(process, r"serving at"))
        served = int(re.search(r":(\d+)/", output).group(1))
        assert served > holder.port and served != reserved
    finally:
        assert _stop(process) == 0


def test_it_refuses_a_port_that_is_not_a_number(tmp_path):
    process = _serve(tmp_path, "--port", "eighty", "--no-migrate")
    output, _ = process.communicate(timeout=30)
    assert process.returncode != 0 and "must be a number or 'auto'" in output


@pytest.mark.parametrize("port", ["0", "70000"])
def test_it_refuses_an_impossible_port(tmp_path, port):
    process = _serve(tmp_path, "--port", port, "--no-migrate")
    output, _ = process.communicate(timeout=30)
    assert process.returncode != 0 and "outside 1-65535" in output
