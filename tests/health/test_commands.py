"""`manage.py health import|export|run` and `manage.py monitor`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from health.models import Check

ROOT = Path(__file__).resolve().parents[2]


def _run(*args) -> tuple[int, str]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("health", "run", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    raise AssertionError("health run must exit with a status")


def _file(tmp_path, checks: str) -> str:
    path = tmp_path / "healthcheck.yml"
    path.write_text(f"services:\n  app:\n    checks:\n{checks}")
    return str(path)


@pytest.mark.django_db
def test_health_run_exits_0_when_all_are_up(tmp_path, http_server, echo_server):
    path = _file(
        tmp_path,
        f"      - {{type: http, url: '{http_server.url}'}}\n"
        f"      - {{type: tcp, port: {echo_server.port}}}\n",
    )
    code, out = _run("--file", path)
    assert code == 0 and out.count("UP") == 2
    assert not Check.objects.exists()  # --file never touches the database


@pytest.mark.django_db
def test_health_run_exits_1_when_one_is_degraded(tmp_path, http_server):
    http_server.delay = 0.2
    path = _file(
        tmp_path,
        f"      - {{type: http, url: '{http_server.url}', "
        "warning_threshold: 50ms, threshold: 2000ms}\n",
    )
    code, out = _run("--file", path, "--json")
    assert code == 1 and json.loads(out)["checks"][0]["outcome"] == "degraded"


@pytest.mark.django_db
def test_health_run_exits_2_when_one_is_down(tmp_path, http_server, closed_port):
    path = _file(
        tmp_path,
        f"      - {{type: http, url: '{http_server.url}'}}\n"
        f"      - {{type: tcp, port: {closed_port}}}\n",
    )
    code, out = _run("--file", path)
    assert code == 2 and "DOWN" in out


@pytest.mark.django_db
def test_health_run_uses_the_database_without_a_file(http_server):
    Check.objects.create(name="web", type="http", target={"url": http_server.url})
    code, out = _run()
    assert code == 0 and "web" in out


@pytest.mark.django_db
def test_health_import_and_export_round_trip(tmp_path, admin_user, http_server):
    path = _file(tmp_path, f"      - {{type: http, url: '{http_server.url}', name: web}}\n")
    call_command("health", "import", path)
    assert Check.objects.get().name == "web"
    exported = tmp_path / "out.yml"
    call_command("health", "export", str(exported))
    Check.objects.all().delete()
    call_command("health", "import", str(exported), "--user", admin_user.username)
    assert Check.objects.get().target["url"] == http_server.url


@pytest.mark.django_db
def test_health_import_reports_the_line(tmp_path, admin_user):
    path = _file(tmp_path, "      - {type: tcp}\n")
    with pytest.raises(CommandError, match=r"line 4: .*target.port"):
        call_command("health", "import", path)


def test_monitor_runs_the_services_and_stops_on_sigterm(tmp_path):
    env = {**os.environ, "CONSOLE_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "monitor"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while not any("monitor: running" in line for line in lines):
            lines.append(process.stdout.readline())
            assert lines[-1], "".join(lines)
        assert "health.scheduler.run" in lines[-1]
        started = time.monotonic()
        os.kill(process.pid, signal.SIGTERM)  # our own child, by pid
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
