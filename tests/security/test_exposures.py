"""The exposure audit against real servers started here on 0.0.0.0 and probed via 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys

import pytest

from console.security import exposures
from ports import inventory
from ports.free_ports import find_free_port
from ports.inventory.records import Listener
from tests.security.servers import WERKZEUG_APP, start_server, stop_server


@pytest.fixture
def dangerous_servers(tmp_path):
    """A Werkzeug debugger, `python -m http.server` and (when installed) a password-less Redis,
    all on 0.0.0.0: {kind: port}."""
    ports = iter(find_free_port(23000, count=3))
    started: list[subprocess.Popen] = []
    found = {}
    try:
        port = next(ports)
        started.append(start_server([sys.executable, "-c", WERKZEUG_APP, str(port)], port))
        found["werkzeug-debugger"] = port
        port = next(ports)
        (tmp_path / "secrets.txt").write_text("do not share")
        started.append(
            start_server(
                [
                    sys.executable,
                    "-m",
                    "http.server",
                    str(port),
                    "--bind",
                    "0.0.0.0",
                    "--directory",
                    str(tmp_path),
                ],
                port,
            )
        )
        found["directory-listing"] = port
        if redis := shutil.which("redis-server"):
            port = next(ports)
            started.append(
                start_server(
                    [
                        redis,
                        "--port",
                        str(port),
                        "--bind",
                        "0.0.0.0",
                        "--protected-mode",
                        "no",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    port,
                    cwd=tmp_path,
                )
            )
            found["open-redis"] = port
        yield found
    finally:
        for process in started:
            stop_server(process)


def _listeners_on(ports) -> list[Listener]:
    snapshot = inventory.Inventory().snapshot()
    return [listener for listener in snapshot.listeners if listener.port in set(ports)]


def test_it_finds_the_debugger_the_listing_and_an_open_cache(dangerous_servers):
    audit = exposures.run_audit(_listeners_on(dangerous_servers.values()))
    kinds = {finding.port: finding.kind for finding in audit.findings}
    for kind, port in dangerous_servers.items():
        assert kinds[port] == kind
    debugger = next(f for f in audit.findings if f.kind == "werkzeug-debugger")
    assert debugger.severity == "danger" and debugger.probed and debugger.exposure == "all"
    assert "bind it to 127.0.0.1" in debugger.fix and "debug" in debugger.fix


def test_it_calls_a_quiet_listener_reachable_only(listening_child):
    child = listening_child(host="0.0.0.0")
    audit = exposures.run_audit(_listeners_on([child.port]))
    assert [(f.kind, f.severity) for f in audit.findings] == [("reachable", "warn")]


def test_it_judges_a_network_bound_listener_without_probing(monkeypatch):
    probed = []

    async def refuse(*args, **kwargs):
        probed.append(args)
        raise AssertionError("a network-bound listener must not be probed")

    monkeypatch.setattr(exposures, "_exchange", refuse)
    listener = Listener("tcp", "ipv4", "192.0.2.10", 5000, inode=1, uid=0)
    audit = exposures.run_audit([listener])
    assert [(f.kind, f.probed) for f in audit.findings] == [("network-bind", False)]
    assert probed == []


def test_it_never_connects_beyond_loopback():
    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(exposures._exchange("192.0.2.10", 80, b""))


def test_it_recognises_a_django_debug_page():
    missing = "HTTP/1.1 404\r\n\r\n<p>Using the URLconf defined in <code>site.urls</code></p>"
    assert exposures.classify_http("HTTP/1.1 404\r\n\r\n", "HTTP/1.1 200\r\n\r\n", missing) == (
        "django-debug"
    )


@pytest.mark.django_db
def test_it_serves_the_audit_in_the_api_and_the_badge(api, admin_user, client, dangerous_servers):
    from console.foundation import tokens

    access = tokens.issue_pair(admin_user)["access"]
    body = api("get", "/api/v1/security/exposures?refresh=true", access).json()
    by_port = {item["port"]: item["kind"] for item in body["items"]}
    assert by_port[dangerous_servers["werkzeug-debugger"]] == "werkzeug-debugger"
    client.force_login(admin_user)
    badge = client.get("/security/exposure-badge/").content.decode()
    assert "dangerous listener" in badge and str(dangerous_servers["werkzeug-debugger"]) in badge
    from django.template import Context, Template

    rendered = Template("{% load security %}{% exposure_badge %}").render(Context({}))
    assert 'id="exposure-badge"' in rendered
