"""`manage.py health import|export|run`: healthcheck.yml from the command line.

`run` executes every check once (from the database, or from a file without touching the
database) and exits 0 when all are up, 1 when any is degraded, 2 when any is down: for CI and
pre-commit hooks.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from console.foundation import safe_yaml
from console.foundation.roles import ADMIN, role_of
from health import config, states
from health.models import Check
from health.runner import CheckSpec, execute

EXIT_CODES: dict[str, int] = {states.UP: 0, states.DEGRADED: 1, states.DOWN: 2}


class Command(BaseCommand):
    help = "Import, export or run health checks (healthcheck.yml)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        importing = sub.add_parser("import", help="create or update checks from a file")
        importing.add_argument("file", help="path to healthcheck.yml, or - for stdin")
        importing.add_argument("--replace", action="store_true", help="remove checks not in it")
        importing.add_argument("--user", help="account recorded in the audit log (an admin)")
        exporting = sub.add_parser("export", help="write the current set-up as YAML")
        exporting.add_argument("file", nargs="?", default="-", help="path, or - for stdout")
        exporting.add_argument(
            "--user", help="account recorded in the audit log; secrets only for an admin"
        )
        running = sub.add_parser("run", help="run every check once; exit 0 up, 1 degraded, 2 down")
        running.add_argument("--file", help="run the checks of this file instead of the database")
        running.add_argument("--json", action="store_true", help="print results as JSON")

    def handle(self, *args, action: str, **options):
        if action == "import":
            return self._import(options)
        if action == "export":
            return self._export(options["file"], options.get("user"))
        return self._run(options)

    def _import(self, options) -> None:
        raw = sys.stdin.buffer.read() if options["file"] == "-" else _read(options["file"])
        user = _acting_user(options.get("user"))
        try:
            summary = config.import_yaml(raw, user, replace=options["replace"])
        except config.ConfigError as error:
            raise CommandError(f"{options['file']}: {error}") from None
        self.stdout.write(
            f"created {len(summary['created'])}, updated {len(summary['updated'])}, "
            f"removed {len(summary['removed'])}, alert channels {len(summary['channels'])}"
        )

    def _export(self, target: str, username: str | None) -> None:
        text = config.export_for(_acting_user(username))
        if target == "-":
            self.stdout.write(text, ending="")
        else:
            Path(target).write_text(text)
            self.stderr.write(f"wrote {target}")

    def _run(self, options) -> None:
        if options.get("file"):
            try:
                plan = config.parse(_read(options["file"]))
            except config.ConfigError as error:
                raise CommandError(f"{options['file']}: {error}") from None
            specs = [
                CheckSpec(
                    index,
                    d["name"],
                    d["type"],
                    d["target"],
                    d["interval_s"],
                    d["timeout_s"],
                    d["warn_ms"],
                    d["crit_ms"],
                )
                for index, (_line, d) in enumerate(plan.checks, start=1)
                if d["enabled"]
            ]
        else:
            specs = [CheckSpec.of(check) for check in Check.objects.filter(enabled=True)]
        results = async_to_sync(_run_all)(specs)
        worst = 0
        rows = []
        for spec, observation in zip(specs, results, strict=True):
            outcome = states.outcome_of(
                observation.ok, observation.latency_ms, spec.warn_ms, spec.crit_ms
            )
            worst = max(worst, EXIT_CODES[outcome])
            rows.append(
                {
                    "name": spec.name,
                    "type": spec.type,
                    "outcome": outcome,
                    "latency_ms": round(observation.latency_ms, 1),
                    "detail": observation.detail,
                }
            )
        if options["json"]:
            self.stdout.write(json.dumps({"checks": rows, "exit_code": worst}, indent=2))
        else:
            width = max([len(row["name"]) for row in rows] + [5])
            for row in rows:
                self.stdout.write(
                    f"{row['outcome'].upper():9} {row['name']:{width}} "
                    f"{row['latency_ms']:>8.1f} ms  {row['detail']}"
                )
            if not rows:
                self.stdout.write("no checks to run")
        raise SystemExit(worst)


async def _run_all(specs: list[CheckSpec]):
    semaphore = asyncio.Semaphore(64)

    async def one(spec: CheckSpec):
        async with semaphore:
            return await execute(spec)

    return await asyncio.gather(*(one(spec) for spec in specs))


def _read(path: str) -> bytes:
    try:
        file = Path(path)
        if too_large := safe_yaml.size_refusal(file.stat().st_size, config.max_bytes()):
            raise CommandError(f"{path}: {too_large}")
        return file.read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from None


def _acting_user(username: str | None):
    users = get_user_model().objects.filter(is_active=True).order_by("id")
    if username:
        user = users.filter(username=username).first()
    else:
        # The first admin: whoever runs manage.py already has this machine's data in hand.
        user = next((candidate for candidate in users if role_of(candidate) == ADMIN), None)
    if user is None:
        raise CommandError("no such active user: pass --user with an admin account")
    return user
