"""Benchmark of the health scheduler, storage and dashboard.

    .venv/bin/python -m bench.health               # 2,000 checks for 60 s, then the dashboard
    .venv/bin/python -m bench.health --checks 200 --seconds 20   # a quick smoke run

1. Starts local servers in a child process (HTTP keep-alive servers and TCP accept servers on
   loopback), creates N checks (half HTTP, half TCP) at a 10-second interval in a fresh SQLite
   database (WAL, as the console uses), and runs the real scheduler, alert worker and live
   publisher in this one process for the given time. Reports start lag (p50/p99/max), missed and
   overlapped runs, results stored, and this process's CPU time as a share of one core.
2. Measures database growth: bytes per raw result and per hourly rollup (SQLite's dbstat),
   turned into bytes per check-day and the steady state of one check (48 h raw + 90 days of
   rollups).
3. Renders the Health page for 500 checks with 24 hours of rollups each (Django's test client,
   a signed-in admin) and reports the server time the page reports in its X-Response-Time.

The server child is ended by its pid on success, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import timedelta

SERVERS = textwrap.dedent(
    """
    import asyncio, ctypes, json, signal, sys
    # Die with the benchmark (Linux): PR_SET_PDEATHSIG.
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
    except OSError:
        pass
    ANSWER = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nContent-Type: text/plain\\r\\n\\r\\nok"

    async def http(reader, writer):
        try:
            while True:
                await reader.readuntil(b"\\r\\n\\r\\n")
                writer.write(ANSWER)
                await writer.drain()
        except Exception:
            pass
        finally:
            writer.close()

    async def tcp(reader, writer):
        writer.close()

    async def main(count):
        ports = {"http": [], "tcp": []}
        for kind, handler in (("http", http), ("tcp", tcp)):
            for _ in range(count):
                server = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=4096)
                ports[kind].append(server.sockets[0].getsockname()[1])
        print(json.dumps(ports), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main(int(sys.argv[1])))
    """
)


def _setup_django(data_dir: str) -> None:
    os.environ["CONSOLE_DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("CONSOLE_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _create_checks(count: int, ports: dict, interval: int) -> None:
    from health.models import Check

    rows = []
    for index in range(count):
        if index % 2 == 0:
            port = ports["http"][index % len(ports["http"])]
            rows.append(
                Check(
                    name=f"http-{index}",
                    service=f"svc-{index % 50}",
                    type="http",
                    target={
                        "url": f"http://127.0.0.1:{port}/health/{index}",
                        "method": "GET",
                        "expected_status": [200],
                    },
                    interval_s=interval,
                    timeout_s=5,
                )
            )
        else:
            port = ports["tcp"][index % len(ports["tcp"])]
            rows.append(
                Check(
                    name=f"tcp-{index}",
                    service=f"svc-{index % 50}",
                    type="tcp",
                    target={"host": "127.0.0.1", "port": port},
                    interval_s=interval,
                    timeout_s=5,
                )
            )
    Check.objects.bulk_create(rows, batch_size=500)


async def _run_scheduler(seconds: float):
    from django.conf import settings

    from health import alerts, live
    from health.scheduler import Scheduler

    # Warm what a running console has loaded long before: URL conf, templates, probe modules.
    await asyncio.to_thread(live.render_rows, [])
    scheduler = Scheduler(
        max_concurrency=settings.HEALTH_MAX_CONCURRENCY, publish=live.publish_results
    )
    stop = asyncio.Event()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    task = asyncio.gather(scheduler.run(stop), alerts.worker(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return scheduler, wall, cpu


def _table_bytes(prefix: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE %s OR name IN "
            "(SELECT name FROM sqlite_master WHERE tbl_name LIKE %s AND type = 'index')",
            [f"{prefix}%", f"{prefix}%"],
        )
        return int(cursor.fetchone()[0])


def _storage_figures(interval: int) -> dict:
    from health.models import Result, Rollup

    results, rollups = Result.objects.count(), Rollup.objects.count()
    per_result = _table_bytes("health_result") / max(1, results)
    per_rollup = _table_bytes("health_rollup") / max(1, rollups)
    per_day_raw = 86400 / interval * per_result
    return {
        "results": results,
        "rollups": rollups,
        "bytes_per_result": per_result,
        "bytes_per_rollup": per_rollup,
        "raw_per_check_day": per_day_raw,
        "rollups_per_check_day": 24 * per_rollup,
        "steady_state_per_check": 2 * per_day_raw + 90 * 24 * per_rollup,
    }


def _dashboard(checks: int, repeats: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from health import storage
    from health.models import Check, Rollup

    Check.objects.all().delete()
    now = timezone.now()
    hour = storage.hour_of(now)
    states = ["up"] * 8 + ["degraded", "down"]
    created = Check.objects.bulk_create(
        [
            Check(
                name=f"dash-{i}",
                service=f"service-{i % 25}",
                type="http",
                target={"url": f"http://127.0.0.1:8000/{i}"},
                interval_s=30,
                state=states[i % len(states)],
                last_checked_at=now,
                last_outcome="up",
                last_latency_ms=10 + i % 40,
                last_detail="HTTP 200",
            )
            for i in range(checks)
        ],
        batch_size=500,
    )
    Rollup.objects.bulk_create(
        [
            Rollup(
                check_ref=check,
                hour=hour - timedelta(hours=h),
                count=120,
                up=118 - h % 3,
                degraded=1,
                down=1 + h % 3,
                min_ms=5,
                max_ms=90,
                sum_ms=120 * (12 + h % 7),
                p95_ms=40,
                histogram={"10": 100, "14": 20},
            )
            for check in created
            for h in range(24)
        ],
        batch_size=2000,
    )
    user = get_user_model().objects.create_superuser("bench")
    client = Client()
    client.force_login(user)
    client.get("/checks/", HTTP_HOST="127.0.0.1")  # warm templates and caches
    server_ms, wall_ms = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get("/checks/", HTTP_HOST="127.0.0.1")
        wall_ms.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        server_ms.append(float(response["X-Response-Time"].removesuffix("ms")))
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/checks/", HTTP_HOST="127.0.0.1")
    return {
        "checks": checks,
        "rollups": checks * 24,
        "median_ms": statistics.median(server_ms),
        "p95_ms": _percentile(server_ms, 0.95),
        "max_ms": max(server_ms),
        "queries": len(queries),
        "bytes": len(response.content),
    }


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.health",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--dashboard-checks", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)

    data_dir = tempfile.mkdtemp(prefix="portside-bench-health-")
    _setup_django(data_dir)
    servers = subprocess.Popen(
        [sys.executable, "-c", SERVERS, "10"], stdout=subprocess.PIPE, text=True
    )
    try:
        ports = json.loads(servers.stdout.readline())
        _create_checks(args.checks, ports, args.interval)
        print(
            f"running {args.checks} checks every {args.interval}s for {args.seconds:.0f}s ...",
            file=sys.stderr,
        )
        scheduler, wall, cpu = asyncio.run(_run_scheduler(args.seconds))
    finally:
        if servers.poll() is None:
            os.kill(servers.pid, signal.SIGKILL)  # our own child, by pid
        servers.wait()
    stats = scheduler.stats
    lags = list(stats.lags_ms)
    expected = args.checks * args.seconds / args.interval
    from django.db.models import Count

    from health.models import Check, Result

    failed = Result.objects.exclude(outcome="up").count()
    states = dict(Check.objects.values_list("state").annotate(n=Count("id")))
    figures = _storage_figures(args.interval)
    print(f"dashboard: {args.dashboard_checks} checks ...", file=sys.stderr)
    dash = _dashboard(args.dashboard_checks, args.repeats)

    n_http = args.checks // 2
    lag = f"{_percentile(lags, 0.5):.1f} / {_percentile(lags, 0.99):.1f} / {max(lags or [0]):.1f}"
    scheduler_rows = [
        ("runs started / expected", f"{stats.started:,} / {expected:,.0f}", "all"),
        ("start lag p50 / p99 / max", f"{lag} ms", "p99 <= 250 ms"),
        ("missed slots / overlapped runs", f"{stats.missed} / {stats.overlapped}", "0"),
        ("results stored / store errors", f"{stats.stored:,} / {stats.store_errors}", ""),
        ("results not up", str(failed), "0"),
        (
            "peak probes in flight",
            f"{scheduler.peak_in_flight} (limit {scheduler.max_concurrency})",
            "",
        ),
        (
            "CPU of this process",
            f"{cpu:.1f} s in {wall:.1f} s = {100 * cpu / wall:.1f}% of one core",
            "<= 35%",
        ),
        ("final states", str(states), ""),
    ]
    storage_rows = [
        (
            "raw result (row + indexes)",
            f"{figures['bytes_per_result']:.0f} bytes ({figures['results']:,} rows)",
        ),
        (
            "hourly rollup (row + indexes)",
            f"{figures['bytes_per_rollup']:.0f} bytes ({figures['rollups']:,} rows, under 1 h of "
            "histogram)",
        ),
        (
            f"raw results per check-day at {args.interval} s",
            f"{figures['raw_per_check_day'] / 1e6:.2f} MB (kept 48 h)",
        ),
        ("rollups per check-day", f"{figures['rollups_per_check_day'] / 1e3:.1f} kB (kept 90 d)"),
        (
            "steady state per check (48 h raw + 90 d rollups)",
            f"{figures['steady_state_per_check'] / 1e6:.2f} MB",
        ),
        (
            f"steady state for {args.checks} checks",
            f"{args.checks * figures['steady_state_per_check'] / 1e9:.2f} GB",
        ),
    ]
    dashboard_rows = [
        (
            f"server time median / p95 / max ({args.repeats} renders)",
            f"{dash['median_ms']:.1f} / {dash['p95_ms']:.1f} / {dash['max_ms']:.1f} ms",
            "< 200 ms",
        ),
        ("SQL queries per render", str(dash["queries"]), ""),
        ("page size", f"{dash['bytes'] / 1024:.0f} KiB", ""),
    ]
    print(
        f"\n### Scheduler: {args.checks} checks ({n_http} HTTP + {args.checks - n_http} TCP), "
        f"every {args.interval} s, {wall:.0f} s\n"
    )
    print(
        f"Machine: {platform.system()} {platform.release()}, {os.cpu_count()} CPU(s), "
        f"Python {platform.python_version()}, SQLite (WAL).\n"
    )
    print(_table(("measure", "result", "target"), scheduler_rows))
    print("\n### Storage\n")
    print(_table(("measure", "result"), storage_rows))
    print(f"\n### Dashboard: {dash['checks']} checks, {dash['rollups']:,} rollups\n")
    print(_table(("measure", "result", "target"), dashboard_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
