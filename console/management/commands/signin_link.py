from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from console.security.first_run import sign_in_url


class Command(BaseCommand):
    help = "Print a one-time sign-in link (15 minutes, single use) for a user."

    def add_arguments(self, parser):
        parser.add_argument("--user", default="admin")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, user: str, base_url: str, **options):
        account = get_user_model().objects.filter(username=user, is_active=True).first()
        if account is None:
            raise CommandError(f"no active user named {user!r}")
        self.stdout.write(sign_in_url(base_url, account))
