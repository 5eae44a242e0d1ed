"""`manage.py devports import|export|allocate`: the port registry from a terminal.

`allocate NAME` prints only the port, for `PORT=$(python manage.py devports allocate api)`;
the reason goes to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ports.models import Project
from ports.registry import devports
from ports.registry import operations as registry


class Command(BaseCommand):
    help = "Import, export or allocate from the project port registry (.devports.yml)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="import a .devports.yml (all or nothing)")
        imp.add_argument("file", help="path, or - for standard input")
        imp.add_argument(
            "--replace", action="store_true", help="also remove projects the file does not list"
        )
        exp = sub.add_parser("export", help="print the registry as .devports.yml")
        exp.add_argument("--output", "-o", help="write to this file instead")
        alloc = sub.add_parser("allocate", help="print the port NAME should use now")
        alloc.add_argument("name")

    def handle(self, *args, action: str, **options):
        if action == "import":
            self._import(options["file"], options["replace"])
        elif action == "export":
            text = registry.export_registry()
            if options.get("output"):
                Path(options["output"]).write_text(text)
            else:
                self.stdout.write(text, ending="")
        else:
            project = Project.objects.filter(name=options["name"]).first()
            if project is None:
                raise CommandError(f"no project named {options['name']!r} in the registry")
            allocation = registry.allocate(project)
            self.stderr.write(allocation.reason)
            self.stdout.write(str(allocation.port))

    def _import(self, path: str, replace: bool) -> None:
        try:
            text = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from error
        # The terminal is trusted as an admin: the command runs with the machine's rights. The
        # audit log still names an account.
        users = get_user_model().objects.filter(is_active=True)
        admin = (
            users.filter(is_superuser=True).first() or users.filter(groups__name="admin").first()
        )
        if admin is None:
            raise CommandError("no admin account yet: run `manage.py serve` once first")
        try:
            result = registry.import_registry(admin, text, replace=replace)
        except devports.RegistryError as error:
            problems = "\n  ".join(map(str, error.problems))
            raise CommandError(f"nothing imported:\n  {problems}") from None
        self.stdout.write(
            f"imported: {result['created']} new, {result['updated']} updated, "
            f"{len(result['removed'])} removed"
        )
        for warning in result["warnings"]:
            self.stdout.write(f"note: {warning}")
