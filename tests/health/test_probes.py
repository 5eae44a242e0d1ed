"""Every probe against a real server on loopback (and the real Redis and PostgreSQL if present)."""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import sys
import time
import warnings

import httpx

from health.probes import run_probe


async def test_it_passes_an_http_check_and_records_latency(http_server):
    result = await run_probe("http", {"url": http_server.url, "body_contains": "all good"}, 5)
    assert result.ok and result.detail == "HTTP 200"
    assert result.latency_ms > 0


async def test_it_fails_on_an_unexpected_status_and_accepts_a_listed_one(http_server):
    http_server.status = 503
    failed = await run_probe("http", {"url": http_server.url}, 5)
    assert not failed.ok and "HTTP 503, expected 200" in failed.detail
    accepted = await run_probe("http", {"url": http_server.url, "expected_status": [200, 503]}, 5)
    assert accepted.ok


async def test_it_fails_when_the_body_lacks_the_text(http_server):
    result = await run_probe("http", {"url": http_server.url, "body_contains": "banana"}, 5)
    assert not result.ok and "did not contain 'banana'" in result.detail


async def test_it_enforces_the_timeout_on_a_slow_server(http_server):
    http_server.delay = 3
    started = time.monotonic()
    result = await run_probe("http", {"url": http_server.url}, 0.5)
    assert not result.ok and "timed out" in result.detail
    assert time.monotonic() - started < 2.5


async def test_it_times_out_on_a_server_that_never_answers(silent_server):
    url = f"http://127.0.0.1:{silent_server.port}/"
    result = await run_probe("http", {"url": url}, 0.5)
    assert not result.ok and "timed out" in result.detail


async def test_it_caps_a_huge_body(http_server):
    url = http_server.url.replace("/health", "/huge")
    result = await run_probe("http", {"url": url, "max_bytes": 65536}, 10)
    assert result.ok and "body cut at 65536 bytes" in result.detail


async def test_it_reports_redirects_unless_asked_to_follow(http_server):
    url = http_server.url.replace("/health", "/redirect")
    assert not (await run_probe("http", {"url": url}, 5)).ok
    assert (await run_probe("http", {"url": url, "follow_redirects": True}, 5)).ok


def test_an_ended_loops_http_clients_were_closed_in_it(http_server, monkeypatch):
    """Probes also run in short-lived loops (a check's "run now", the health command): their
    shared clients are closed in their loop as it ends, none left for the collector."""
    made: list[httpx.AsyncClient] = []

    class RecordingClient(httpx.AsyncClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(httpx, "AsyncClient", RecordingClient)
    gc.collect()  # what earlier tests left for the collector is not this test's
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # a loop each
            assert asyncio.run(run_probe("http", {"url": http_server.url}, 5)).ok
        gc.collect()
    assert len(made) == 2
    assert [client.is_closed for client in made] == [True, True]
    assert unraisable == []
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_it_verifies_tls_by_default(tls_server):
    refused = await run_probe("http", {"url": tls_server.url}, 5)
    assert not refused.ok and "CERTIFICATE_VERIFY_FAILED" in refused.detail
    accepted = await run_probe("http", {"url": tls_server.url, "verify_tls": False}, 5)
    assert accepted.ok


async def test_it_fails_to_connect_to_a_closed_port(closed_port):
    result = await run_probe("http", {"url": f"http://127.0.0.1:{closed_port}/"}, 5)
    assert not result.ok and "connection failed" in result.detail
    result = await run_probe("tcp", {"host": "127.0.0.1", "port": closed_port}, 5)
    assert not result.ok and "connect to 127.0.0.1" in result.detail


async def test_it_connects_over_tcp_and_checks_the_reply(echo_server):
    target = {"host": "127.0.0.1", "port": echo_server.port}
    assert (await run_probe("tcp", target, 5)).ok
    assert (await run_probe("tcp", {**target, "send": "hi\n", "expect": "echo:hi"}, 5)).ok
    wrong = await run_probe("tcp", {**target, "send": "hi\n", "expect": "nope"}, 5)
    assert not wrong.ok and "did not contain" in wrong.detail


async def test_it_times_out_waiting_for_a_reply(silent_server):
    target = {"host": "127.0.0.1", "port": silent_server.port, "send": "x", "expect": "y"}
    result = await run_probe("tcp", target, 0.3)
    assert not result.ok and "timed out" in result.detail


async def test_it_pings_the_real_redis(redis_port):
    result = await run_probe("redis", {"host": "127.0.0.1", "port": redis_port}, 5)
    assert result.ok and result.detail == "PONG"


async def test_it_reports_a_refused_redis_auth(redis_port):
    target = {"host": "127.0.0.1", "port": redis_port, "password": "not-the-password"}
    result = await run_probe("redis", target, 5)
    assert not result.ok and "AUTH refused" in result.detail


async def test_it_fails_redis_ping_against_a_non_redis_server(echo_server):
    result = await run_probe("redis", {"host": "127.0.0.1", "port": echo_server.port}, 5)
    assert not result.ok and "expected PONG" in result.detail


async def test_it_queries_sqlite_read_only(tmp_path):
    path = tmp_path / "app.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    ok = await run_probe("query", {"dsn": f"sqlite:///{path}", "query": "SELECT 1"}, 5)
    assert ok.ok and ok.detail == "1 row"  # never the row's contents
    bad = await run_probe("query", {"dsn": f"sqlite:///{path}", "query": "SELECT * FROM nope"}, 5)
    assert not bad.ok and "query failed" in bad.detail
    missing = await run_probe("query", {"dsn": f"sqlite:///{tmp_path}/missing.db"}, 5)
    assert not missing.ok and not (tmp_path / "missing.db").exists()


async def test_it_queries_the_real_postgres(postgres_dsn):
    result = await run_probe("query", {"dsn": postgres_dsn, "query": "SELECT 1"}, 5)
    assert result.ok and result.detail == "1 row"
    wrong = await run_probe("query", {"dsn": postgres_dsn.replace("/test", "/nope_db")}, 5)
    assert not wrong.ok and "connect failed" in wrong.detail


async def test_it_runs_a_command_without_a_shell():
    ok = await run_probe(
        "command", {"argv": [sys.executable, "-c", "print('ready')"], "expect_output": "ready"}, 5
    )
    assert ok.ok
    # No shell: the ';' is just an argument to echo.
    echoed = await run_probe("command", {"argv": ["echo", "a;", "exit", "3"]}, 5)
    assert echoed.ok
    failed = await run_probe("command", {"argv": ["false"]}, 5)
    assert not failed.ok and "exit code 1" in failed.detail
    missing = await run_probe("command", {"argv": ["/no/such/program"]}, 5)
    assert not missing.ok and "cannot start" in missing.detail


async def test_it_kills_the_whole_process_group_on_timeout(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    result = await run_probe("command", {"argv": [sys.executable, "-c", script]}, 1.0)
    assert not result.ok and "timed out" in result.detail
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(grandchild):
        time.sleep(0.05)
    assert not _alive(grandchild), "the grandchild outlived the timeout"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        return os.path.exists(f"/proc/{pid}")
