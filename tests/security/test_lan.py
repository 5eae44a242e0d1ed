"""LAN mode: the network allowlist, and `serve` flags checked without traffic off loopback."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from console.foundation import runtime_settings
from console.foundation.models import AuditEntry
from ports import inventory
from ports.free_ports import find_free_port
from tests.console.test_serve import _read_until, _stop

ROOT = Path(__file__).resolve().parents[2]
ROOT_FLAG = ["--allow-root"] if os.geteuid() == 0 else []


@pytest.mark.django_db
def test_it_refuses_a_foreign_network(client, monkeypatch):
    monkeypatch.setenv("CONSOLE_ALLOWED_NETWORKS", "192.168.10.0/24")
    refused = client.get("/login/", REMOTE_ADDR="10.1.2.3")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Your network is not allowed to reach this console"}
    assert client.get("/login/", REMOTE_ADDR="192.168.10.7").status_code == 200
    assert client.get("/api/v1/ports", REMOTE_ADDR="10.1.2.3").status_code == 403
    entry = AuditEntry.objects.get(action="authz.denied", address="10.1.2.3", target="GET /login/")
    assert entry.detail["reason"] == "network not allowed"


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "127.0.0.5"])
def test_it_always_lets_loopback_in(client, address):
    runtime_settings.update({"allowed_networks": "192.168.10.0/24"})
    assert client.get("/login/", REMOTE_ADDR=address).status_code == 200


@pytest.mark.django_db
def test_it_prefers_the_security_page_allowlist_and_rejects_a_bad_one(client, monkeypatch):
    monkeypatch.setenv("CONSOLE_ALLOWED_NETWORKS", "10.0.0.0/8")
    runtime_settings.update({"allowed_networks": "172.16.0.0/12"})
    assert client.get("/login/", REMOTE_ADDR="10.1.2.3").status_code == 403
    assert client.get("/login/", REMOTE_ADDR="172.16.5.5").status_code == 200
    with pytest.raises(ValueError, match="allowed_networks"):
        runtime_settings.update({"allowed_networks": "not-a-network"})


def _serve(tmp_path, *args: str, root_flag: bool = True) -> subprocess.Popen:
    env = {**os.environ, "CONSOLE_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve", *(ROOT_FLAG if root_flag else []), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to see the refusal")
def test_it_refuses_root_without_allow_root(tmp_path):
    process = _serve(tmp_path, "--no-migrate", root_flag=False)
    output, _ = process.communicate(timeout=30)
    assert process.returncode != 0
    assert "Refusing to run as root" in output and "--allow-root" in output


def test_it_refuses_lan_mode_without_an_admin_password(tmp_path):
    process = _serve(tmp_path, "--lan", "--port", str(find_free_port(22000)[0]))
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0 and "LAN mode needs an admin with a password" in output


def _admin_with_password(tmp_path) -> None:
    env = {**os.environ, "CONSOLE_DATA_DIR": str(tmp_path), "DJANGO_SUPERUSER_PASSWORD": "x" * 20}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    for command in (
        ["migrate", "-v0"],
        ["createsuperuser", "--noinput", "--username", "boss", "--email", "b@example.com"],
    ):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True)


def test_it_serves_the_lan_over_tls_on_all_interfaces(tmp_path):
    """Binds 0.0.0.0 (and ::); checked through 127.0.0.1 only and by reading the socket table."""
    _admin_with_password(tmp_path)
    port = find_free_port(22100)[0]
    process = _serve(tmp_path, "--lan", "--tls", "--port", str(port))
    try:
        output = "".join(_read_until(process, r"Application startup complete", timeout=60))
        assert f"https://127.0.0.1:{port}/" in output and "SHA-256 fingerprint" in output
        assert (tmp_path / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600
        bound = {
            listener.address
            for listener in inventory.Inventory().snapshot().on_port(port)
            if listener.pid == process.pid
        }
        assert "0.0.0.0" in bound
        context = ssl.create_default_context(cafile=str(tmp_path / "tls" / "cert.pem"))
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}/health", context=context, timeout=10
        ) as response:
            assert response.status == 200
        lan_urls = re.findall(r"on the LAN: (https://\S+)", output)
        assert all(url.startswith("https://") for url in lan_urls)
    finally:
        assert _stop(process) == 0
